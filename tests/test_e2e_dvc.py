"""End to end with the real dvc: a copy of the project in a temporary git repository, a tiny
config, then the commands a researcher types."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dvc_project import dvc_bin, make_repo

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_repo(tmp_path_factory.mktemp("project"))


def test_repro_then_noop(repo):
    path, sh = repo
    out = sh(dvc_bin(), "repro")
    assert "Running stage 'train'" in out
    metrics = json.loads((path / "metrics" / "eval.json").read_text())
    assert {"w1_exact", "w1_sliced", "mmd", "tail_error", "mode_weight_l1", "sampling_time_s"} <= set(metrics)
    for name in ("plots/samples.png", "plots/report/report.md", "plots/report/report.html", "plots/train/plots/metrics/loss.tsv", "data/model/checkpoint.pt"):
        assert (path / name).is_file(), name
    again = sh(dvc_bin(), "repro")
    assert "Running stage" not in again
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "baseline results")


def test_experiments_table_eval_only_change_and_run_cache(repo):
    path, sh = repo
    out = sh(dvc_bin(), "exp", "run", "-S", "method=ddpm", "-n", "ddpm")
    assert "Running stage 'train'" in out
    # Only eval changes: generation and evaluation rerun, training does not.
    out = sh(dvc_bin(), "exp", "run", "-S", "eval.reverse_steps=10", "-n", "ddpm10")
    assert "Running stage 'train'" not in out and "Running stage 'generate'" in out
    # The baseline's param set (dlpm, 20 steps) comes back from the run cache: nothing runs.
    out = sh(dvc_bin(), "exp", "run", "-S", "method=dlpm", "-S", "eval.reverse_steps=20", "-n", "dlpm")
    assert "Running stage" not in out and "Stage 'train' is cached" in out
    table = experiment_metrics(sh)
    assert set(table) == {"ddpm", "ddpm10", "dlpm"}
    assert table["ddpm"]["params"]["method"] == "ddpm" and table["ddpm10"]["params"]["eval"]["reverse_steps"] == 10
    for row in table.values():
        assert {"w1_exact", "tail_error", "mode_ratio_worst"} <= set(row["metrics"])
    # The same params give the same numbers: the cached dlpm row equals a fresh baseline run.
    base = json.loads((path / "metrics" / "eval.json").read_text())
    assert table["dlpm"]["metrics"]["w1_exact"] == base["w1_exact"]
    plots = json.loads(sh(dvc_bin(), "plots", "diff", "ddpm", "dlpm", "--json"))
    loss = plots["data"]["plots/train/plots/metrics/loss.tsv"][0]
    assert loss["revisions"] == ["ddpm", "dlpm"]
    assert "plots/samples.png" in plots["data"]


def experiment_metrics(sh) -> dict:
    """``dvc exp show --json`` as {experiment name: {"params": ..., "metrics": ...}}."""
    rows = {}
    for commit in json.loads(sh(dvc_bin(), "exp", "show", "--json")):
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                data = rev["data"]
                rows[rev["name"]] = {
                    "params": data["params"]["params.yaml"]["data"],
                    "metrics": data["metrics"]["metrics/eval.json"]["data"],
                }
    return rows



def test_genlib_compare_on_real_experiments(repo):
    path, sh = repo
    genlib = str(Path(sys.executable).parent / "genlib")
    out = sh(genlib, "compare", "--out", "compare")
    assert "| experiment |" in out and "| ddpm10 |" in out
    md = (path / "compare" / "compare.md").read_text()
    assert "![Samples](samples.png)" in md and "![Training curves](training_curves.png)" in md  # from DVC's cache
    assert "metrics_vs_eval_reverse_steps.png" in md
    older = sh(genlib, "compare", "--all-commits", "--out", "compare_all")
    rows = lambda text: [l for l in text.splitlines() if l.startswith(("| ", "- "))]
    assert len(rows(older)) > len(rows(out))  # the first commit is listed too

def test_queue_of_four_with_two_workers(repo):
    path, sh = repo
    before = set(experiment_metrics(sh))
    sh(dvc_bin(), "exp", "run", "--queue", "-S", "method=ddpm,lim", "-S", "seed=3,4")
    sh(dvc_bin(), "queue", "start", "-j", "2")
    deadline = time.time() + 600
    while time.time() < deadline:
        status = sh(dvc_bin(), "queue", "status")
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(3)
    assert status.count("Success") >= 4 and "Failed" not in status, status
    table = experiment_metrics(sh)
    new = {name: row for name, row in table.items() if name not in before}
    assert len(new) == 4
    combos = {(row["params"]["method"], row["params"]["seed"]) for row in new.values()}
    assert combos == {("ddpm", 3), ("ddpm", 4), ("lim", 3), ("lim", 4)}
    assert len({row["metrics"]["w1_exact"] for row in new.values()}) == 4  # distinct results
    # The cache is intact: any of them applies and checks out cleanly, with its own metrics.
    name, row = next(iter(new.items()))
    sh(dvc_bin(), "exp", "apply", name)
    assert "up to date" in sh(dvc_bin(), "status")
    assert json.loads((path / "metrics" / "eval.json").read_text())["w1_exact"] == row["metrics"]["w1_exact"]


def test_dvc_repro_killed_mid_training_resumes(repo):
    path, sh = repo
    sh("git", "checkout", "-f", "params.yaml")
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["training"]["epochs"] = 40
    params["run"].update(checkpoint_freq=10, log_every=5)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(path))
    proc = subprocess.Popen([dvc_bin(), "repro"], cwd=path, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((path / ".genlib" / "resume").glob("*.pt")):
        assert proc.poll() is None and time.time() < deadline, "no resume checkpoint before the end"
        time.sleep(0.05)
    os.killpg(proc.pid, 9)  # dvc and its stage, as a machine being preempted would
    proc.wait()
    out = sh(dvc_bin(), "repro")
    assert "resuming training from" in out and "Running stage 'evaluate'" in out
    assert json.loads((path / "metrics" / "train.json").read_text())["train_steps"] == 40 * 8
    assert not list((path / ".genlib" / "resume").glob("*.pt"))
