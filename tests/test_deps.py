"""dvc.yaml's code dependencies are exactly the modules each stage imports.

The closure is read from the source (:mod:`genlib.pipeline.code`): every import statement of
``stages/<stage>.py`` and of the genlib modules it reaches, lazy imports inside functions too.
A module a stage imports that dvc.yaml does not list would leave DVC's results stale when it
changes; a module listed that the stage never imports would rerun the stage for nothing.
"""
import textwrap
from pathlib import Path

import pytest
import yaml

from genlib.pipeline.code import as_deps, closure, expand

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def code_deps(stage: str) -> set[Path]:
    deps = [d for d in STAGES[stage]["deps"] if d.startswith(("genlib", "stages/"))]
    return expand(deps, ROOT)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_dvc_yaml_lists_exactly_the_modules_the_stage_imports(stage):
    imported = closure(ROOT / "stages" / f"{stage}.py", root=ROOT)
    listed = code_deps(stage)
    missing = sorted(str(p.relative_to(ROOT)) for p in imported - listed)
    extra = sorted(str(p.relative_to(ROOT)) for p in listed - imported)
    hint = f"\nthe stage's deps should be: {as_deps(imported, ROOT)}"
    assert not missing, f"stage {stage} imports {', '.join(missing)}, which dvc.yaml does not list{hint}"
    assert not extra, f"stage {stage} lists {', '.join(extra)} in dvc.yaml but never imports it{hint}"


def test_every_stage_script_is_a_stage():
    assert {p.stem for p in (ROOT / "stages").glob("*.py")} == set(STAGES)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))


def test_closure_follows_lazy_relative_and_package_imports(tmp_path):
    write(tmp_path, {
        "entry.py": "import pkg.a\n",
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\ndef f():\n    from pkg.sub import c  # lazy\n",
        "pkg/b.py": "import os\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "from pkg.sub.d import thing\n",
        "pkg/sub/d.py": "thing = 1\n",
        "pkg/unused.py": "",
    })
    got = {p.relative_to(tmp_path).as_posix() for p in closure(tmp_path / "entry.py", "pkg", tmp_path)}
    assert got == {"entry.py", "pkg/__init__.py", "pkg/a.py", "pkg/b.py", "pkg/sub/__init__.py", "pkg/sub/c.py", "pkg/sub/d.py"}
    assert as_deps(closure(tmp_path / "entry.py", "pkg", tmp_path), tmp_path) == [
        "pkg/__init__.py", "pkg/a.py", "pkg/b.py", "pkg/sub", "entry.py"]


def test_the_check_would_catch_a_dropped_module(tmp_path):
    """The test above fails, naming the module and the stage, when dvc.yaml misses one."""
    listed = [d for d in STAGES["train"]["deps"] if d != "genlib/seeding.py"]
    assert len(listed) == len(STAGES["train"]["deps"]) - 1
    imported = closure(ROOT / "stages" / "train.py", root=ROOT)
    assert ROOT / "genlib" / "seeding.py" in imported - expand(listed, ROOT)
