"""genlib reads in one direction: no module imports one of a layer above it, and no two parts
import each other. Read from the source, lazy imports included (:mod:`genlib.pipeline.code`)."""
import ast
from pathlib import Path

from genlib.pipeline.code import _imported, module_file

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top. A part may import its own layer and those below.
LAYERS = [
    {"__init__", "errors", "registry", "seeding", "io", "params", "compat", "progress", "device", "stable", "optim", "weights",
     "provenance", "sizes", "schedules"},
    {"data", "nets"},
    {"methods", "metrics", "plots", "implementations"},
    {"training", "config"},
    {"report", "compare"},
    {"pipeline"},
    {"sweep", "migrate"},
    {"cli", "api", "templates"},
]
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def part(path: Path) -> str:
    rel = path.relative_to(ROOT / "genlib")
    return rel.parts[0].removesuffix(".py") if len(rel.parts) == 1 else rel.parts[0]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def edges() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) -> the files where it happens."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted((ROOT / "genlib").rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in _imported(ast.parse(path.read_text()), package):
            if not imported.startswith("genlib."):
                continue
            target = module_file(imported, ROOT)
            if target is not None and part(target) != part(path):
                out.setdefault((part(path), part(target)), []).append(str(path.relative_to(ROOT)))
    return out


def test_every_part_has_a_layer():
    parts = {part(p) for p in (ROOT / "genlib").rglob("*.py")}
    assert parts <= set(LAYER), f"parts without a layer in this test: {sorted(parts - set(LAYER))}"


def test_no_module_imports_a_layer_above_it():
    upward = [f"{src} -> {dst} ({', '.join(sorted(set(files)))})" for (src, dst), files in edges().items()
              if LAYER[dst] > LAYER[src]]
    assert not upward, "upward imports: " + "; ".join(upward)


def test_no_two_parts_import_each_other():
    graph: dict[str, set[str]] = {}
    for src, dst in edges():
        graph.setdefault(src, set()).add(dst)

    def reaches(a: str, b: str, seen: set[str]) -> bool:
        for nxt in graph.get(a, ()):
            if nxt == b or (nxt not in seen and reaches(nxt, b, seen | {nxt})):
                return True
        return False

    circles = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if reaches(b, a, {b})})
    assert not circles, f"import circles between parts: {circles}"


def test_the_stage_package_imports_nothing_in_its_init():
    """Each stage's code deps are the modules it imports: an __init__ that imported the stage
    modules would make every stage depend on every other."""
    tree = ast.parse((ROOT / "genlib" / "pipeline" / "__init__.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
