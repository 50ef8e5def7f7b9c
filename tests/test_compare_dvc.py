"""``genlib compare`` on real tiny DVC experiments: files read back from git and the DVC cache,
a failed queued run's own error, and the hint where there is nothing to compare."""
import json
import sys
import time
from pathlib import Path

import pytest

from dvc_project import dvc_bin, make_repo

pytestmark = pytest.mark.e2e
GENLIB = str(Path(sys.executable).parent / "genlib")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A baseline (dlpm, seed 0), one experiment with seed 1, and a queued run that fails."""
    path, sh = make_repo(tmp_path_factory.mktemp("compare"))
    hint = sh(GENLIB, "compare", check=False)  # before anything ran
    sh(dvc_bin(), "repro")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "baseline")
    sh(dvc_bin(), "exp", "run", "-n", "seed1", "-S", "seed=1")
    sh("git", "checkout", "-f", "--", "params.yaml", "dvc.lock")  # the workspace back to the baseline
    sh(dvc_bin(), "checkout", "-f")
    sh(dvc_bin(), "exp", "run", "--queue", "-n", "typo", "-S", "eval.sampler=bogus")
    sh(dvc_bin(), "queue", "start", "-j", "1")
    deadline = time.time() + 120
    while "Failed" not in sh(dvc_bin(), "queue", "status"):
        assert time.time() < deadline, "the queued run did not finish"
        time.sleep(2)
    return path, sh, hint


def shown(sh) -> dict:
    """Experiment name -> (rev, metrics of dvc exp show --json)."""
    out = {}
    for commit in json.loads(sh(dvc_bin(), "exp", "show", "--json")):
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                metrics = ((rev.get("data") or {}).get("metrics") or {}).get("metrics/eval.json", {}).get("data")
                out[rev["name"] or exp["name"]] = (rev["rev"], metrics)
    return out


def test_no_experiments_is_a_hint_not_a_report(repo):
    path, sh, hint = repo
    assert "error: compare: no experiments yet: run some with `dvc exp run" in hint
    assert "Traceback" not in hint


def test_files_of_an_experiment_come_from_git_and_the_cache(repo):
    from genlib.compare.files import ExperimentFiles

    path, sh, _ = repo
    rev, metrics = shown(sh)["seed1"]
    files = ExperimentFiles(path)
    # The experiment is not checked out: the workspace holds the baseline's outputs.
    workspace = json.loads((path / "metrics" / "eval.json").read_text())
    assert json.loads(files.read(rev, "metrics/eval.json")) == metrics != workspace
    assert json.loads(files.read(rev, "data/samples/info.json"))["sampler"] == "dlpm"  # inside a dir output
    assert files.listdir(rev, "plots/train/plots/metrics") == ["grad_norm.tsv", "loss.tsv", "lr.tsv"]
    assert files.read(rev, "plots/train/plots/metrics/loss.tsv").startswith(b"step\tloss\n")
    assert files.read(rev, "no/such/file") is None and files.listdir(rev, "no/such") == []
    # A damaged cache entry reads as missing, not as wrong bytes.
    md5, _ = files.outs(rev)["metrics/eval.json"]
    blob = files.cache / "files" / "md5" / md5[:2] / md5[2:]
    blob.chmod(0o644)
    good = blob.read_bytes()
    blob.write_bytes(good.replace(b"0", b"1", 1))
    assert ExperimentFiles(path).read(rev, "metrics/eval.json") is None
    blob.write_bytes(good)


def test_report_explains_the_failure_and_reads_the_cache(repo):
    path, sh, _ = repo
    out = sh(GENLIB, "compare", "--out", "compare")
    assert "- typo: failed: params.yaml: eval.sampler = 'bogus' is not allowed; expected 'default' or one of" in out
    assert "Experiment run failed" not in out
    md = (path / "compare" / "compare.md").read_text()
    assert "![Training curves](training_curves.png)" in md and "![Samples](samples.png)" in md
    # The two seeds are one configuration (nothing else differs): n = 2, the sampler as run.
    summary = md.split("## Configurations (seeds aggregated)")[1].split("## Experiments")[0]
    assert "| configuration | n | sampler |" in summary and "| all experiments | 2 | dlpm |" in summary
    html = (path / "compare" / "compare.html").read_text()
    assert "<table class=\"sortable\">" in html and "addEventListener(\"click\"" in html and "://" not in html  # offline: no link, no CDN
