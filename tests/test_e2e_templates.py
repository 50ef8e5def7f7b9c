"""`genlib new method|model|dataset NAME` writes plugin files that run through the real `dvc exp
run` unchanged: one tiny experiment uses all three (the method trains the network on the
dataset); a second `genlib new` of a name is refused in one line and leaves the file as it was."""
import json
import math
import sys

import pytest
import yaml

from dvc_project import dvc_bin, make_repo

pytestmark = pytest.mark.e2e

TINY = {"data": {"nsamples": 512, "ntest": 256}, "training": {"epochs": 2, "batch_size": 256},
        "eval": {"nsamples": 256, "batch_size": 256, "reverse_steps": 5, "n_exact": 100, "n_mmd": 100, "n_projections": 10}}


def test_each_template_runs_through_dvc_exp_run(tmp_path):
    path, sh = make_repo(tmp_path, TINY)
    genlib = [sys.executable, "-c", "from genlib.cli import main; main()"]
    for kind, name in (("method", "flowy"), ("model", "tinynet"), ("dataset", "ringy")):
        assert f"written to plugin_modules/{name}.py" in sh(*genlib, "new", kind, name)
    before = (path / "plugin_modules" / "flowy.py").read_text()
    out = sh(*genlib, "new", "method", "flowy", check=False)
    assert out.strip() == "error: new: plugin_modules/flowy.py exists; not overwritten (remove it or pick another name)"
    assert (path / "plugin_modules" / "flowy.py").read_text() == before
    assert "already registered" in sh(*genlib, "new", "dataset", "rose", check=False)
    params = yaml.safe_load((path / "params.yaml").read_text())
    params.update(plugins=["flowy", "tinynet", "ringy"], method="flowy", flowy={"noise_scale": 1.0})
    params["model"].update(net="tinynet", width=32)
    params["data"].update(dataset="ringy", std=0.05)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "three plugins from the templates")
    out = sh(dvc_bin(), "exp", "run", "-n", "templates", "-S", "flowy.noise_scale=0.8", "-S", "model.width=24")
    assert "Running stage 'report'" in out, out
    metrics = json.loads((path / "metrics" / "eval.json").read_text())
    assert metrics["n_nonfinite"] == 0 and math.isfinite(metrics["w1_sliced"])  # scored like any method's samples
    key = json.loads((path / "data" / "keys" / "train.json").read_text())
    assert set(key["plugins"]) == {f"plugin_modules/{n}.py" for n in ("flowy", "tinynet", "ringy")}
