"""The code a stage runs: the genlib modules it imports, followed through the source.

A stage's DVC code dependencies must be every module it can execute, so the closure is read from
the source, not from ``sys.modules`` after a run: every ``import`` statement counts wherever it
stands (inside a function too, so lazy imports are included), and importing ``a.b.c`` runs the
``__init__`` of ``a`` and ``a.b`` as well. The registries import the built-in implementations by
name on first use; every stage imports them all through :mod:`genlib.implementations`, which this
closure follows. Plugins are imported by name at run time (``plugins:``); they are keyed by their
digests in the stage keys (:mod:`genlib.pipeline.keys`).
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the genlib package that is running
SOURCE_ROOT = PACKAGE_DIR.parent


def module_file(name: str, root: Path = SOURCE_ROOT) -> Path | None:
    """The file of module ``name`` (dotted) under ``root``, or None when it is not there."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(tree: ast.AST, package: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in ``tree`` may load (submodules too)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # kept if a submodule
    return names


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def closure(entry: Path, prefix: str | set[str] = "genlib", root: Path = SOURCE_ROOT) -> set[Path]:
    """The files under ``root`` of the modules (whose top-level names are ``prefix``) that
    ``entry`` (a script or module file) imports, directly or through each other; ``entry``
    itself is included."""
    prefixes = {prefix} if isinstance(prefix, str) else set(prefix)
    seen: set[Path] = set()
    todo: list[tuple[Path, str]] = [(Path(entry).resolve(), "")]
    while todo:
        path, package = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported(ast.parse(path.read_text(), str(path)), package):
            for module in _with_parents(name):
                if module.split(".")[0] not in prefixes:
                    continue
                file = module_file(module, root)
                if file is not None:
                    pkg = module if file.name == "__init__.py" else module.rpartition(".")[0]
                    todo.append((file.resolve(), pkg))
    return seen


def module_closure(module: str, prefix: str | set[str] = "genlib", root: Path = SOURCE_ROOT) -> set[Path]:
    """:func:`closure` from module ``module`` (dotted), with the ``__init__`` files above it."""
    files = set()
    for name in _with_parents(module):
        file = module_file(name, root)
        if file is not None:
            files |= closure(file, prefix, root)
    return files


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes, in chunks (a prepared data set may be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digests(files: set[Path], root: Path = SOURCE_ROOT) -> dict[str, str]:
    """``{path relative to root: sha256}`` for the files, sorted by path."""
    return {str(f.relative_to(root)): digest(f) for f in sorted(files)}


def as_deps(files: set[Path], root: Path = SOURCE_ROOT) -> list[str]:
    """The files as ``dvc.yaml`` lists them: a folder whose every ``.py`` file is among them
    stands for all of them, the others are listed one by one."""
    rel = {f.resolve().relative_to(root) for f in files}
    out: list[str] = []

    def walk(folder: Path) -> None:
        mine = {p.relative_to(root) for p in (root / folder).rglob("*.py")}
        if mine and mine <= rel:
            out.append(folder.as_posix())
            return
        out.extend(p.as_posix() for p in sorted(rel) if p.parent == folder)
        for sub in sorted(d for d in (root / folder).iterdir() if d.is_dir() and d.name != "__pycache__"):
            walk(sub.relative_to(root))

    for top in sorted({p.parts[0] for p in rel if len(p.parts) > 1}):
        walk(Path(top))
    out.extend(p.as_posix() for p in sorted(rel) if len(p.parts) == 1)
    return out


def expand(deps: list[str], root: Path = SOURCE_ROOT) -> set[Path]:
    """The ``.py`` files that ``dvc.yaml`` deps name (folders stand for every ``.py`` in them)."""
    files: set[Path] = set()
    for dep in deps:
        path = root / dep
        if path.is_dir():
            files |= {p.resolve() for p in path.rglob("*.py")}
        elif path.suffix == ".py":
            files.add(path.resolve())
    return files
