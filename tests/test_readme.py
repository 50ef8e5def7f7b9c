"""The README's "Daily use" and "Sweeps and comparisons" blocks, pasted in order into a fresh
copy of the project with tiny settings, as a new user would run them."""
import subprocess
import time

import pytest

from dvc_project import block, env_for, make_repo

pytestmark = pytest.mark.e2e


def run(path, command: str) -> str:
    out = subprocess.run(["bash", "-c", command], cwd=path, env=env_for(path), capture_output=True, text=True)
    assert out.returncode == 0, f"`{command}` failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def wait_for_queue(path) -> str:
    deadline = time.time() + 900
    while time.time() < deadline:
        status = run(path, "dvc queue status")
        if "Running" not in status and "Queued" not in status:
            return status
        time.sleep(3)
    raise AssertionError(f"the queue did not finish:\n{status}")


def test_daily_use_then_sweeps_as_written(tmp_path):
    path, sh = make_repo(tmp_path)
    outputs = {}
    for command in block("Daily use") + block("Sweeps and comparisons"):
        if command == "source .venv/bin/activate":
            continue  # the test's PATH has the environment's bin first already
        if command == "dvc queue status":
            outputs[command] = wait_for_queue(path)
            continue
        outputs[command] = run(path, command)
    train_ran = lambda out: "Running stage 'train'" in out
    eval_only = next(c for c in outputs if "eval.reverse_steps=10" in c and "--queue" not in c)
    assert not train_ran(outputs[eval_only]) and "Running stage 'generate'" in outputs[eval_only]
    show = next(c for c in outputs if c.startswith("dvc exp show"))
    assert "ddpm-10" in outputs[show] and max(len(line) for line in outputs[show].splitlines()) < 400
    status = outputs["dvc queue status"]
    assert status.count("Success") == 8 and "Failed" not in status, status
    compare = (path / "compare" / "compare.md").read_text()
    assert "lim-ode" in compare and "dlim" in compare
