"""Watching a run with the real dvc: the validation curves of two experiments side by side."""
import json

import pytest

from dvc_project import dvc_bin, make_repo

pytestmark = pytest.mark.e2e


def test_validation_curves_reach_dvc_plots_diff_and_turning_them_on_reruns_train_alone(tmp_path):
    path, sh = make_repo(tmp_path, {"method": "ddpm", "data": {"nval": 256}, "training": {"epochs": 2}})
    sh(dvc_bin(), "repro")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "baseline results")
    out = sh(dvc_bin(), "exp", "run", "-S", "training.eval_every=5", "-n", "watched")
    assert "Running stage 'train'" in out and "Running stage 'generate'" not in out, out  # the same checkpoint
    sh(dvc_bin(), "exp", "run", "-S", "training.eval_every=5", "-S", "optim.lr=0.001", "-n", "watched_lr")
    plots = json.loads(sh(dvc_bin(), "plots", "diff", "watched", "watched_lr", "--json"))
    curve = plots["data"]["plots/train/plots/metrics/val_w1_sliced.tsv"][0]
    assert curve["revisions"] == ["watched", "watched_lr"]
