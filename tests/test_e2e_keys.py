"""The cache key is the experiment, with the real dvc: each of the ways it used to break.

1. Code a stage runs but dvc.yaml did not list (seeding, config, the stage bodies) left
   `dvc repro` "up to date" after an edit.
2. Another method's section, or an evaluation setting, retrained the model.
3. A plugin's params and source did not key `train`.
4. A resume checkpoint outlived the code that wrote it.
Each test asserts what DVC ran, from its own output.
"""
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from dvc_project import dvc_bin, env_for, make_repo

pytestmark = pytest.mark.e2e

PLUGIN = '''
"""A user's own DDPM with its own params section: one file in plugin_modules/."""
from dataclasses import dataclass

from genlib.methods.ddpm import DDPM
from genlib.registry import METHODS


@dataclass(frozen=True)
class MyParams:
    diffusion_steps: int = 20


@METHODS.register("my_ddpm")
class MyDDPM(DDPM):
    name = "my_ddpm"
    Params = MyParams
'''


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path, sh = make_repo(tmp_path_factory.mktemp("keys"), {"method": "ddpm"})
    out = sh(dvc_bin(), "repro")
    assert "Running stage 'train'" in out
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "baseline")
    return path, sh


def ran(out: str) -> set[str]:
    """The stages DVC ran, from its output."""
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")}


def edit(path: Path, text: str = "\n# edited by the test\n") -> None:
    with open(path, "a") as fh:
        fh.write(text)


def test_code_every_stage_runs_reruns_it(repo):
    """1: seeding.py (every random stream) and config.py (defaults) key every stage that runs them."""
    path, sh = repo
    for module in ("genlib/seeding.py", "genlib/config.py", "genlib/params.py"):
        edit(path / module)
        status = sh(dvc_bin(), "status")
        assert f"modified:           {module}" in status or module in status, status
        out = sh(dvc_bin(), "repro")
        importing = {"prepare_data", "train", "generate", "evaluate"} | ({"config", "report"} if module != "genlib/seeding.py" else set())
        assert importing <= ran(out), (module, ran(out))
        sh("git", "checkout", "-q", module)
        sh(dvc_bin(), "repro")


def test_a_stage_module_reruns_its_stage_only(repo):
    path, sh = repo
    edit(path / "genlib/pipeline/prepare.py")
    out = sh(dvc_bin(), "repro")
    assert ran(out) == {"prepare_data"}  # same data: the later stages are skipped
    sh("git", "checkout", "-q", "genlib/pipeline/prepare.py")
    sh(dvc_bin(), "repro")


def test_other_sections_and_eval_settings_never_retrain(repo):
    """2: with method ddpm, lim.alpha keys nothing that ran; eval.classifier_epochs and
    eval.reverse_steps rerun only what reads them."""
    path, sh = repo
    out = sh(dvc_bin(), "exp", "run", "-S", "lim.alpha=1.5", "-n", "lim-alpha")
    assert ran(out) <= {"config"}, ran(out)
    out = sh(dvc_bin(), "exp", "run", "-S", "eval.classifier_epochs=3", "-n", "clf-epochs")
    assert ran(out) <= {"config", "prepare_data"}, ran(out)
    out = sh(dvc_bin(), "exp", "run", "-S", "eval.reverse_steps=10", "-n", "steps10")
    assert "train" not in ran(out) and {"generate", "evaluate", "report"} <= ran(out), ran(out)
    sh("git", "checkout", "-q", "params.yaml")


def test_a_plugin_method_keys_train_by_its_params_and_source(repo):
    """3: a plugin in plugin_modules/ imports with no environment variable and keys the stages."""
    path, sh = repo
    (path / "plugin_modules" / "my_ddpm.py").write_text(textwrap.dedent(PLUGIN))
    params = yaml.safe_load((path / "params.yaml").read_text())
    params.update(plugins=["my_ddpm"], method="my_ddpm", my_ddpm={"diffusion_steps": 20})
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in env_for(path).items()}
    assert str(path / "plugin_modules") not in env["PYTHONPATH"]
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "a plugin method")
    out = sh(dvc_bin(), "repro")
    assert "train" in ran(out)
    out = sh(dvc_bin(), "exp", "run", "-S", "my_ddpm.diffusion_steps=10", "-S", "eval.reverse_steps=10", "-n", "plug10")
    assert "train" in ran(out), out
    sh("git", "checkout", "-q", "params.yaml")
    out = sh(dvc_bin(), "exp", "run", "-S", "lim.alpha=1.6", "-n", "plug-lim")
    assert "train" not in ran(out), out
    sh("git", "checkout", "-q", "params.yaml")
    edit(path / "plugin_modules" / "my_ddpm.py")
    out = sh(dvc_bin(), "repro")
    assert {"config", "train"} <= ran(out), out
    key = yaml.safe_load((path / "data/keys/train.json").read_text())
    assert set(key["plugins"]) == {"plugin_modules/my_ddpm.py"} and key["params"]["my_ddpm"] == {"diffusion_steps": 20}
    sh("git", "reset", "-q", "--hard", "HEAD~1")
    sh(dvc_bin(), "repro")


def start_long_training(path: Path) -> subprocess.Popen:
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["training"]["epochs"] = 60
    params["run"].update(checkpoint_freq=10, log_every=5)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = subprocess.Popen([dvc_bin(), "repro"], cwd=path, env=env_for(path), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((path / ".genlib" / "resume").glob("*.pt")):
        assert proc.poll() is None and time.time() < deadline, "no resume checkpoint before the end"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc


def test_a_resume_checkpoint_of_other_code_is_set_aside(repo):
    """4: kill train, change a module train runs, repro: the old state is not resumed."""
    path, sh = repo
    start_long_training(path)
    edit(path / "genlib/methods/losses.py")
    out = sh(dvc_bin(), "repro")
    assert "resuming training" not in out
    assert "set aside" in out and "the code changed (genlib/methods/losses.py)" in out
    assert list((path / ".genlib" / "resume" / "stale").glob("train-*.pt"))
    assert "train" in ran(out)
    sh("git", "checkout", "-q", "genlib/methods/losses.py", "params.yaml")


def test_an_environment_variable_in_params_through_dvc_exp_run(repo):
    """`$env{VAR}` passes DVC's templating (which owns `${...}`) and reaches the stages expanded."""
    path, sh = repo
    env = {**env_for(path), "GENLIB_TEST_SAMPLER": "ddim"}
    out = subprocess.run([dvc_bin(), "exp", "run", "-S", 'eval.sampler="$env{GENLIB_TEST_SAMPLER}"', "-n", "env-sampler"],
                         cwd=path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "train" not in ran(out.stdout + out.stderr)
    assert yaml.safe_load((path / "data/samples/info.json").read_text())["sampler"] == "ddim"
    assert yaml.safe_load((path / "data/keys/generate.json").read_text())["params"]["eval"]["sampler"] == "ddim"
    sh("git", "checkout", "-q", "params.yaml")


def test_scoregan_trains_its_teacher_first_and_once(repo):
    """ScoreGAN's data score model is a DVC dependency of train: the first run trains it (the
    train_teacher stage), a generator setting reuses it, a teacher setting retrains it."""
    path, sh = repo
    # "++" adds a key params.yaml does not have yet (DVC's override syntax, from Hydra), or sets it.
    tiny = ["-S", "method=scoregan", "-S", "++scoregan.teacher.training.epochs=1", "-S", "scoregan.n_score=1"]
    out = sh(dvc_bin(), "exp", "run", *tiny, "-n", "scoregan")
    assert {"train_teacher", "train"} <= ran(out), ran(out)
    assert (path / "data" / "teacher" / "checkpoint.pt").is_file()
    out = sh(dvc_bin(), "exp", "run", *tiny, "-S", "scoregan.lr_g=0.0005", "-n", "scoregan-lr")
    assert "train" in ran(out) and "train_teacher" not in ran(out), ran(out)
    out = sh(dvc_bin(), "exp", "run", *tiny, "-S", "++scoregan.teacher.edm.p_std=1.0", "-n", "scoregan-teacher")
    assert {"train_teacher", "train"} <= ran(out), ran(out)
    sh("git", "checkout", "-q", "params.yaml")
    out = sh(dvc_bin(), "exp", "run", "-S", "eval.reverse_steps=12", "-n", "ddpm-again")
    assert "train_teacher" not in ran(out) and "train" not in ran(out), ran(out)  # back on ddpm: "no teacher" again
    sh("git", "checkout", "-q", "params.yaml")
