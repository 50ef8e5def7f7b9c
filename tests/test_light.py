"""`genlib check` and `genlib list` read YAML and the registries' specs without importing torch,
and say what they said when everything was imported; every built-in entry's implementation
inherits its spec and is in the stages' code deps."""
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import genlib.implementations  # noqa: F401  (every implementation imported here)
from genlib.registry import DATASETS, METHODS, NETS
from genlib.cli import main
from genlib.pipeline.code import closure

from test_config import ROOT

LIGHT = """
import contextlib, io, json, sys
from genlib.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    main({argv!r})
print(json.dumps({{"out": out.getvalue(), "torch": "torch" in sys.modules}}))
"""


def run_light(argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", LIGHT.format(argv=argv)], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("argv", [["list"], ["check"], ["check", "configs/mnist.yaml"]], ids=" ".join)
def test_check_and_list_import_no_torch_and_print_what_the_full_import_prints(argv, capsys, monkeypatch):
    light = run_light(argv)
    assert light["torch"] is False
    monkeypatch.chdir(ROOT)
    main(argv)  # here torch and every implementation are imported
    assert light["out"] == capsys.readouterr().out
    if argv[0] == "check":
        assert json.loads(light["out"])["method"] in METHODS


def test_a_plugin_may_import_torch(tmp_path):
    (tmp_path / "plugin_modules").mkdir()
    (tmp_path / "plugin_modules" / "torch_plugin.py").write_text("import torch  # noqa: F401\n")
    params = (ROOT / "params.yaml").read_text().replace("plugins: []", "plugins: [torch_plugin]")
    assert "torch_plugin" in params
    (tmp_path / "params.yaml").write_text(params)
    light = run_light(["check", str(tmp_path / "params.yaml")])
    assert light["torch"] is True and json.loads(light["out"])["plugins"] == ["torch_plugin"]


@pytest.mark.parametrize("registry", [METHODS, DATASETS, NETS], ids=lambda r: r.kind)
def test_every_builtin_implementation_inherits_its_spec_and_is_a_code_dep(registry):
    deps = closure(ROOT / "genlib" / "implementations.py", root=ROOT)
    for name in registry.names():
        impl, spec = registry.get(name), registry.spec(name)
        assert issubclass(impl, spec) and impl.Params is spec.Params, name
        module = importlib.import_module(impl.__module__)
        assert Path(module.__file__).resolve() in deps, f"{impl.__module__} is not in genlib.implementations"


def test_list_of_one_method_shows_its_settings_without_torch():
    light = run_light(["list", "edm"])
    assert light["torch"] is False
    lines = light["out"].splitlines()
    assert lines[0] == "method edm" and lines[1] == "samplers (eval.sampler): heun, stochastic (default: heun)"
    assert "  sigma_min: 0.002  (a positive number; sampling only: keys generate, not train)" in lines
    assert "  p_std: 1.2  (a positive number)" in lines
    assert any(line.startswith("  g_units: 256") and "points only" in line for line in run_light(["list", "scoregan"])["out"].splitlines())


def test_list_of_an_unknown_name_is_one_line(capsys):
    with pytest.raises(SystemExit):
        main(["list", "edn"])
    err = capsys.readouterr().err
    assert err.startswith("error: list: 'edn' is no registered method, dataset or network; known: celeba,") and err.count("\n") == 1
