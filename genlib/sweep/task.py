"""One array task: run one cell of a sweep in its clone and push its experiment to the origin.

``python -m genlib.sweep.task <work>/plan.json <index>``, started by the job script in the cell's
clone at the sweep's commit (:func:`genlib.sweep.slurm.script`). It

1. points the clone at the shared cache (``dvc cache dir``, ``cache.shared group`` so that every
   member of the group may write what another's task cached, and ``cache.type`` when the sweep
   sets one), in the clone's local config so that it is in no experiment's commit;
2. does nothing more when the cell's experiment is in the origin already (a requeued task that
   had finished);
3. takes the lock of its training params' key, a file in the shared cache, so that of twin
   cells (the same training, other ``eval.*``) one trains and the other waits, then finds the
   training in the shared run cache and restores it; a training done by any earlier task that
   shares the cache is restored the same way, without the lock ever waiting;
4. runs ``dvc exp run -n <cell> -S ...``; a killed training left its resume checkpoint in
   ``.genlib/resume/`` of this clone, which the next attempt reuses, so training continues
   from it (:mod:`genlib.pipeline.resume`);
5. pushes the experiment (``dvc exp push origin <cell>``; its outputs are in the shared cache
   already, so the cache is pushed only to a DVC remote the project names as its default).

Each attempt records its state in ``<work>/state/<index>.json``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from genlib.sweep import SweepError
from genlib.sweep.grid import Cell
from genlib.sweep.plan import Plan, read
from genlib.sweep.status import in_origin


def main(argv: list[str]) -> int:
    try:
        return attempt(read(Path(argv[0])), int(argv[1]))
    except (SweepError, subprocess.CalledProcessError, OSError) as err:
        print(f"error: sweep task: {err}", file=sys.stderr)
        return 2


def attempt(plan: Plan, index: int) -> int:
    """Run cell ``index`` once, recording its state before and after."""
    cell = plan.cells[index]
    print(f"genlib sweep {plan.name}: cell {cell.index} ({cell.exp}: {' '.join(cell.overrides) or 'no overrides'}), "
          f"job {os.environ.get('SLURM_JOB_ID', '?')}, attempt {int(os.environ.get('SLURM_RESTART_COUNT', 0)) + 1}",
          file=sys.stderr, flush=True)
    stopped: list[int] = []  # the scheduler's SIGTERM reaches dvc and the stage too: wait for them
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))
    record(plan, cell, "running")
    rc = run_cell(plan, cell)
    state = "stopped" if stopped else "done" if rc == 0 else "failed"
    record(plan, cell, state, rc)
    return rc


def run_cell(plan: Plan, cell: Cell) -> int:
    use_shared_cache(plan)
    if cell.exp in in_origin(plan.origin, plan.commit):
        print(f"{cell.exp} is in the origin already", file=sys.stderr, flush=True)
        return 0
    if not has_experiment(plan.commit, cell.exp):  # a requeued task may have run it, not pushed it
        with training_lock(plan, cell):
            rc = dvc(["exp", "run", "-n", cell.exp, *[a for o in cell.overrides for a in ("-S", o)]])
        if rc != 0:
            return rc
    push = ["exp", "push", "origin", cell.exp]
    return dvc(push if default_remote() else push + ["--no-cache"])


def dvc(args: list[str]) -> int:
    print(f"$ dvc {' '.join(args)}", file=sys.stderr, flush=True)
    return subprocess.run(["dvc", *args]).returncode


def use_shared_cache(plan: Plan) -> None:
    settings = [["cache", "dir", "--local", plan.cache_dir], ["config", "--local", "cache.shared", "group"]]
    if plan.cache_type:
        settings.append(["config", "--local", "cache.type", plan.cache_type])
    for args in settings:
        subprocess.run(["dvc", *args], check=True)


def default_remote() -> str:
    out = subprocess.run(["dvc", "remote", "default"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def has_experiment(commit: str, exp: str) -> bool:
    ref = f"refs/exps/{commit[:2]}/{commit[2:]}/{exp}"
    return subprocess.run(["git", "show-ref", "-q", "--verify", ref]).returncode == 0


@contextlib.contextmanager
def training_lock(plan: Plan, cell: Cell):
    """Hold ``<cache>/genlib/locks/train-<key>.lock`` (``flock``: released by the kernel when the
    task dies, so a killed holder never blocks its twins; on NFS, Linux maps it to NFS locks)."""
    path = Path(plan.cache_dir) / "genlib" / "locks" / f"train-{cell.train_key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        with contextlib.suppress(PermissionError):  # the group's tasks take it too (cache.shared group)
            os.chmod(path, 0o664)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another task"
            print(f"waiting for the training of key {cell.train_key}: {holder} holds it", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
            print("the lock is free: the training is in the shared run cache if it finished", file=sys.stderr, flush=True)
        f.seek(0)
        f.truncate()
        f.write(f"sweep {plan.name}, cell {cell.exp}, job {os.environ.get('SLURM_JOB_ID', '?')}\n")
        f.flush()
        yield


def record(plan: Plan, cell: Cell, state: str, rc: int | None = None) -> None:
    path = plan.state_file(cell.index)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"state": state, "exp": cell.exp, "rc": rc, "job": os.environ.get("SLURM_JOB_ID"),
            "attempt": int(os.environ.get("SLURM_RESTART_COUNT", 0)) + 1, "time": time.time()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(body) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
