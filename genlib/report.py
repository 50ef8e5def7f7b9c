"""The offline report of one run: metric table, samples against data, training curves.

Written as Markdown with PNG figures beside it, and as one self-contained HTML file (images
inlined) that any browser opens without a network.
"""
from __future__ import annotations

import base64
import csv
import html
import math
import re
from pathlib import Path

import numpy as np

from genlib import io


def read_curve(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A dvclive TSV (``step``, ``name``) as two arrays."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return np.array([float(r["step"]) for r in rows]), np.array([float(r[name]) for r in rows])


def metric_docs(kind: str = "points", num_classes: int = 0) -> dict[str, str]:
    """One line per metric key. The two kinds share names (``precision``, ``recall``) with
    different meanings: k-NN on 2D points, or on Inception features for images."""
    from genlib.metrics.image_docs import image_metric_docs
    from genlib.metrics.sample_metrics import METRIC_DOCS

    return {
        **(image_metric_docs(num_classes) if kind == "images" else METRIC_DOCS),
        "n_reference": "reference items the samples are compared with (eval.reference: the test or the training set)",
        "sampling_time_s": "wall time of the generate stage's sampling loop, seconds",
        "network_evals": "network evaluations per sample (the sampler's cost beside its wall time)",
        "train_time_s": "wall time of the training loop, seconds",
        "train_steps": "optimiser steps taken",
        "nan_restores": "times a non-finite loss restored the last good state",
        "final_loss": "training loss averaged over the last logging interval",
        "stopped_early": "whether early stopping (training.patience) ended training before its last step",
    }


# The metrics a reader looks at first, by the kind of data, in this order; then the likelihood
# families' (vae, hvae); then every other metric alphabetically (:func:`metric_order`).
HEADLINE = {
    "points": ("w1_sliced", "w1_exact", "mmd", "tail_error", "mode_weight_l1", "precision", "recall"),
    "images": ("fid_clf", "kid_clf", "precision_clf", "recall_clf", "fid", "kid", "precision", "recall"),
}
LIKELIHOOD_HEADLINE = ("elbo", "nll_iwae", "bits_per_dim")


def metric_order(keys, kind: str) -> list[str]:
    """``keys`` with the headline metrics of ``kind`` first, in their fixed order, then the rest
    alphabetically."""
    headline = [k for k in (*HEADLINE.get(kind, ()), *LIKELIHOOD_HEADLINE) if k in keys]
    return headline + sorted(set(keys) - set(headline))


def param_text(value, nested: bool = False) -> str:
    """A param as a researcher writes it, YAML-like: ``true``, ``null``, a list as ``0.9, 0.999``
    (in brackets inside another list or a mapping), a mapping as ``{name: top, z: 2}``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {param_text(v, True)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        items = ", ".join(param_text(v, True) for v in value)
        return f"[{items}]" if nested or not value else items
    return str(value)


def params_text(params: dict) -> str:
    """``beta=1.0; betas=0.9, 0.999; model_file=null``: one section's params, for the setup line."""
    return "; ".join(f"{k}={param_text(v)}" for k, v in params.items())


def fmt(value) -> str:
    """A table cell: floats to 4 significant digits, None as an empty cell."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def markdown_table(rows: list[list[str]], header: list[str]) -> list[str]:
    """The table's lines; a ``|`` in a cell (``KL(q || p)``) is escaped, so it stays in its cell."""
    line = lambda cells: "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return [line(header), "|" + "---|" * len(header)] + [line(r) for r in rows]


def table_cells(line: str) -> list[str]:
    """The cells of one line of :func:`markdown_table`, as they were given."""
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]


def write_report(out: Path, title: str, header: str, setup: str, rows: list[list[str]],
                 figures: list[tuple[str, str]], warnings: list[str] = ()) -> Path:
    """``report.md`` (the figures are PNG files in ``out``) and a self-contained ``report.html``;
    ``header`` is the line under the title (the run: seed, experiment, revision, date), and
    ``warnings`` are paragraphs before the metrics."""
    table = markdown_table(rows, ["metric", "value", "meaning"])
    md = [f"# {title}", "", header, "", setup, ""]
    if warnings:
        md += ["## Warnings", ""] + [line for w in warnings for line in (f"**Warning:** {w}", "")]
    md += ["## Metrics", "", *table, ""]
    for caption, name in figures:
        md += [f"## {caption}", "", f"![{caption}]({name})", ""]
    io.write_text(out / "report.md", "\n".join(md))
    io.write_text(out / "report.html", to_html(md, out))
    return out / "report.md"


def to_html(md_lines: list[str], folder: Path) -> str:
    """A small Markdown-to-HTML for what this report uses: headings, tables, images, text."""
    body, table = [], []

    def flush_table():
        if table:
            head, rows = table[0], table[2:]
            cells = lambda r, tag: "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in table_cells(r))
            body.append("<table><tr>" + cells(head, "th") + "</tr>" + "".join("<tr>" + cells(r, "td") + "</tr>" for r in rows) + "</table>")
            table.clear()

    for line in md_lines:
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("!["):
            alt, src = line[2:].split("](")
            data = base64.b64encode(io.latest(folder / src.rstrip(")")).read_bytes()).decode()  # a copy written by this stage
            body.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        elif line:
            body.append("<p>" + html.escape(line).replace("**", "") + "</p>")
    flush_table()
    style = "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}img{max-width:100%}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>genlib report</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
