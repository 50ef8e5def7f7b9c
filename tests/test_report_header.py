"""The report's header (the run that wrote it), its metric order and its params line."""
import subprocess

import pytest

from genlib.provenance import NO_GIT, experiment_name, git_revision, written_at
from genlib.report import metric_order, param_text, params_text


def test_headline_metrics_come_first_in_their_order_then_the_rest_alphabetically():
    points = ["coverage", "mmd", "n_nonfinite", "w1_exact", "train_steps", "tail_error", "w1_sliced", "density"]
    assert metric_order(points, "points") == [
        "w1_sliced", "w1_exact", "mmd", "tail_error", "coverage", "density", "n_nonfinite", "train_steps"]
    images = ["class_tv", "recall_clf", "fid_clf", "kid_clf_std", "kid_clf", "precision_clf"]
    assert metric_order(images, "images") == ["fid_clf", "kid_clf", "precision_clf", "recall_clf", "class_tv", "kid_clf_std"]
    vae = ["kl", "w1_sliced", "nll_iwae", "elbo", "active_units", "mmd"]  # a likelihood family on points
    assert metric_order(vae, "points") == ["w1_sliced", "mmd", "elbo", "nll_iwae", "active_units", "kl"]
    assert metric_order(["b", "a"], "a plugin's kind") == ["a", "b"]


@pytest.mark.parametrize("value,text", [
    ((0.9, 0.999), "0.9, 0.999"), (True, "true"), (False, "false"), (None, "null"), ((), "[]"),
    ("linear", "linear"), (1e-05, "1e-05"), (1000, "1000"),
    (({"name": "x", "type": "input", "skip": None}, {"name": "top", "z": 2, "sizes": [4, 8]}),
     "{name: x, type: input, skip: null}, {name: top, z: 2, sizes: [4, 8]}"),
])
def test_a_param_reads_as_yaml_not_as_a_python_repr(value, text):
    assert param_text(value) == text


def test_the_params_line_of_a_section():
    assert params_text({"betas": (0.5, 0.9), "spectral_norm": True, "clamp": None}) == \
        "betas=0.5, 0.9; spectral_norm=true; clamp=null"


def git(path, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=path, check=True,
                   capture_output=True)


def short(path, rev="HEAD") -> str:
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=path, capture_output=True, text=True).stdout.strip()


def test_the_git_revision_is_the_commit_and_whether_the_files_differ_from_it(tmp_path):
    assert git_revision(tmp_path, {}) == NO_GIT
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / ".gitignore").write_text("/data\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  evaluate:\n    cmd: x\n    outs:\n      - metrics/eval.json:\n          cache: false\n      - plots/analysis\n")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text("{}")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "one")
    first = short(tmp_path)
    assert git_revision(tmp_path, {}) == first
    # what a run writes itself is no change: dvc.lock, an output in git (cache: false), a new one
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (tmp_path / "metrics" / "eval.json").write_text('{"mmd": 0.1}')
    (tmp_path / "plots" / "analysis").mkdir(parents=True)
    (tmp_path / "plots" / "analysis" / "fig.png").write_text("")
    (tmp_path / "plots" / ".gitignore").write_text("/analysis\n")  # as DVC writes it
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "out.npy").write_text("ignored by git")
    assert git_revision(tmp_path, {}) == first
    (tmp_path / "new_plugin.py").write_text("")  # untracked, not ignored
    assert git_revision(tmp_path, {}) == f"{first}+changes"
    (tmp_path / "new_plugin.py").unlink()
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    assert git_revision(tmp_path, {}) == f"{first}+changes"
    git(tmp_path, "commit", "-qam", "two")
    assert git_revision(tmp_path, {}) == short(tmp_path) != first
    baseline = subprocess.run(["git", "rev-parse", "HEAD~1"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    # an experiment names the commit it started from; the workspace differs from that one
    assert git_revision(tmp_path, {"DVC_EXP_BASELINE_REV": baseline}) == f"{first}+changes"


def test_the_experiment_name_and_the_date():
    assert experiment_name({"DVC_EXP_NAME": "warm-lynx"}) == "warm-lynx"
    assert experiment_name({}) == "workspace"
    assert written_at({"SOURCE_DATE_EPOCH": "86460"}) == "1970-01-02 00:01 UTC"
    assert written_at({}).endswith(" UTC") and len(written_at({})) == len("1970-01-02 00:01 UTC")
