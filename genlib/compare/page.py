"""The report as Markdown and as one self-contained HTML page, written side by side.

The HTML page works offline: figures are inlined, and the tables sort on a click of a header by
a few lines of inline script (no library, no network). A table sits in a scrollable box, so a
wide one does not push the page out.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

from genlib.compare.tables import Table
from genlib.report import markdown_table

STYLE = """
body{font-family:sans-serif;max-width:80em;margin:2em auto;padding:0 1em;color:#222}
.scroll{overflow:auto;max-height:40em;max-width:100%;border:1px solid #ddd;margin-bottom:1em}
table{border-collapse:collapse;font-size:90%}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.best{background:#d9f2d9;font-weight:bold}
img{max-width:100%}.note{color:#555}
"""

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("asc");
      table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(asc ? "asc" : "desc");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var key = function (row) { var c = row.cells[col]; return c.dataset.sort === undefined ? c.textContent : c.dataset.sort; };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var d = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def table_markdown(table: Table) -> list[str]:
    """Best values in bold; the direction is an arrow in the header (see the legend)."""
    rows = [[f"**{c.text}**" if c.best else c.text for c in row] for row in table.rows]
    return markdown_table(rows, [c.title for c in table.columns])


def table_html(table: Table) -> str:
    head = "".join(
        f'<th title="{html.escape(c.direction + " is better") if c.direction else ""}">{html.escape(c.title)}</th>'
        for c in table.columns
    )

    def cell(c) -> str:
        sort = "" if c.sort is None else f' data-sort="{html.escape(str(c.sort))}"'
        return f'<td{sort}{" class=best" if c.best else ""}>{html.escape(c.text)}</td>'

    body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in table.rows)
    return f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


class Page:
    """Markdown lines and HTML parts of the same content, figures read from ``folder``."""

    def __init__(self, folder: Path, title: str) -> None:
        self.folder = folder
        self.md = [f"# {title}", ""]
        self.html = [f"<h1>{html.escape(title)}</h1>"]
        self.title = title

    def heading(self, text: str) -> None:
        self.md += [f"## {text}", ""]
        self.html.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, note: bool = False) -> None:
        self.md += [text, ""]
        self.html.append(f'<p{" class=note" if note else ""}>{html.escape(text)}</p>')

    def items(self, lines: list[str]) -> None:
        self.md += [f"- {line}" for line in lines] + [""]
        self.html.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")

    def table(self, table: Table, wide: Table | None = None) -> list[str]:
        """``table`` in Markdown, ``wide`` (default: the same) in HTML; returns the Markdown lines."""
        lines = table_markdown(table)
        self.md += lines + [""]
        self.html.append(table_html(wide or table))
        return lines

    def figure(self, caption: str, name: str) -> None:
        self.md += [f"![{caption}]({name})", ""]
        data = base64.b64encode((self.folder / name).read_bytes()).decode()
        self.html.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"></figure>')

    def markdown(self) -> str:
        return "\n".join(self.md)

    def page(self) -> str:
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{STYLE}</style></head><body>{''.join(self.html)}<script>{SORT_SCRIPT}</script></body></html>\n")
