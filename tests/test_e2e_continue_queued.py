"""A continued run in a workspace of DVC's own (`dvc exp run --temp`, as `--queue` runs): the
checkpoint in init/ reaches it only when git sees it; untracked, the door says what to do."""
import shutil

import pytest

from dvc_project import dvc_bin, make_repo

pytestmark = pytest.mark.e2e


def test_an_init_checkpoint_reaches_a_temp_experiment_once_dvc_added(tmp_path):
    path, sh = make_repo(tmp_path, {"method": "ddpm", "data": {"nsamples": 512}, "training": {"epochs": 2, "batch_size": 256}})
    dvc = dvc_bin()
    sh(dvc, "exp", "run", "train", "-n", "first")
    shutil.copytree(path / "data" / "model", path / "init" / "first")
    run = [dvc, "exp", "run", "--temp", "train", "-S", "training.init_from=init/first"]
    out = sh(*run, "-n", "untracked", check=False)
    assert "init/first is not there (a queued or --temp experiment sees only what git tracks: " \
           "dvc add the checkpoint's folder and git add its .dvc file, or git add the folder)" in out, out
    sh(dvc, "add", "-q", "init/first")
    sh("git", "add", "init/first.dvc", "init/.gitignore")
    out = sh(*run, "-n", "tracked")
    assert "training continues from init/first at step 4, to step 8" in out, out
