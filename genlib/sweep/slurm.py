"""The job script, its submission as one array, and what the scheduler says of each task.

One array task per cell: ``sbatch --array=0-(N-1)`` (or the cells of a resubmission). The task
clones the origin at the sweep's commit into its cell's folder (or reuses the clone a killed
attempt left), puts the sweep's Python environment first on PATH and that clone first on
PYTHONPATH, and runs :mod:`genlib.sweep.task` from the clone's own genlib. A cell with
``run.nproc_per_node > 1`` trains with that many processes on each of the job's nodes
(``--nodes``): its torchrun spans them (:func:`genlib.pipeline.worker.torchrun_command`).
"""
from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass

from genlib.sweep import SweepError
from genlib.sweep.plan import Plan


@dataclass(frozen=True)
class Resources:
    """What each task asks SLURM for (None: the cluster's default) and extra script lines: one
    that starts with ``-`` is an ``#SBATCH`` option (``--account=abc``), any other a shell line
    run before the cell (``module load cuda``)."""

    partition: str | None = None
    time: str | None = None
    cpus_per_task: int | None = None
    gpus: str | None = None
    mem: str | None = None
    requeue: bool = False
    extra: tuple[str, ...] = ()
    nodes: int | None = None

    def directives(self) -> list[str]:
        options = [("partition", self.partition), ("time", self.time), ("nodes", self.nodes),
                   ("ntasks-per-node", 1 if self.nodes else None), ("cpus-per-task", self.cpus_per_task),
                   ("gpus", self.gpus), ("mem", self.mem)]
        lines = [f"--{key}={value}" for key, value in options if value is not None]
        if self.requeue:
            lines.append("--requeue")  # a preempted or failed node's task runs again, resuming
        lines += [line for line in self.extra if line.startswith("-")]
        return [f"#SBATCH {line}" for line in lines]

    def shell_lines(self) -> list[str]:
        return [line for line in self.extra if not line.startswith("-")]


def script(plan: Plan, resources: Resources) -> str:
    """The job script of ``plan``'s array."""
    q = shlex.quote
    cells = q(str(plan.work / "cells"))
    head = ["#!/bin/bash",
            f"#SBATCH --job-name=genlib-{plan.name}",
            f"#SBATCH --output={plan.work / 'logs'}/%a.log",  # one log per cell, every attempt
            "#SBATCH --open-mode=append",
            *resources.directives()]
    body = [
        "set -euo pipefail",
        f"# genlib sweep {plan.name}: one array task per cell, at commit {plan.commit}",
        *resources.shell_lines(),
        f'cell={cells}/"$SLURM_ARRAY_TASK_ID"',
        'if [ ! -d "$cell/.git" ]; then',
        '  rm -rf "$cell.partial"',
        f'  git clone -q --no-checkout {q(plan.origin)} "$cell.partial" '
        f'|| {{ echo "error: cannot clone {plan.origin} into $cell" >&2; exit 2; }}',
        '  mv "$cell.partial" "$cell"',
        "fi",
        'cd "$cell"',
        f"git cat-file -e {plan.commit}^{{commit}} 2>/dev/null || git fetch -q origin",
        f"git checkout -q --force --detach {plan.commit} "
        f'|| {{ echo "error: commit {plan.commit[:12]} is not in {plan.origin}: push it there (git push origin HEAD) and resubmit" >&2; exit 2; }}',
        # GENLIB_SPAN_NODES: a cell's torchrun spans the job's nodes (genlib.pipeline.worker)
        f'export PATH={q(plan.python_bin)}:"$PATH" PYTHONPATH="$cell" DVC_NO_ANALYTICS=1 GENLIB_SPAN_NODES=1',
        f'exec python -m genlib.sweep.task {q(str(plan.task_plan))} "$SLURM_ARRAY_TASK_ID"',
    ]
    return "\n".join(head + [""] + body) + "\n"


def _run(args: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True)
    except FileNotFoundError:
        raise SweepError(f"{args[0]} not found: genlib sweep runs where SLURM's commands are (a login node)") from None


def submit(plan: Plan, cells: list[int]) -> str:
    """Submit ``plan.script`` as one array of ``cells``; returns the job id."""
    array = f"0-{len(plan.cells) - 1}" if cells == list(range(len(plan.cells))) else ",".join(map(str, cells))
    out = _run(["sbatch", "--parsable", f"--array={array}", str(plan.script)])
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines() or ["no message"]
        raise SweepError(f"sbatch refused the job: {lines[-1]}")
    return out.stdout.strip().split(";")[0]  # "<id>[;<cluster>]"


def _answered(out: subprocess.CompletedProcess) -> None:
    """Refuse when the controller did not answer: a job it has forgotten ("Invalid job id") is
    an answer, but no answer at all ("Unable to contact slurm controller") must not read as
    every task ended, which ``--resubmit`` would submit a second time while they still run."""
    if out.returncode == 0 or "invalid job id" in (out.stderr + out.stdout).lower():
        return
    lines = (out.stderr or out.stdout).strip().splitlines() or [f"exit status {out.returncode}"]
    raise SweepError(f"{out.args[0]} got no answer from the scheduler ({lines[-1].strip()}): the cells' states "
                     "are unknown, so nothing is reported or submitted; try again once `squeue` answers")


def states(job: str) -> dict[int, str]:
    """``{array task: state}`` of the array ``job`` as the scheduler knows it: the queue first,
    then the accounting database (when there is one), then the controller's memory of recently
    ended jobs (``MinJobAge``). A task none of them knows is missing."""
    found: dict[int, str] = {}
    out = _run(["scontrol", "-o", "show", "job", job])
    _answered(out)
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("ArrayTaskId", "").isdigit():
            found[int(fields["ArrayTaskId"])] = fields.get("JobState", "UNKNOWN")
    out = _run(["sacct", "-n", "-P", "-X", "-j", job, "--format=JobID,State"])
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        jobid, _, state = line.partition("|")
        task = jobid.rpartition("_")[2]
        if jobid.startswith(f"{job}_") and task.isdigit():
            found[int(task)] = state.split()[0] if state else "UNKNOWN"  # "CANCELLED by 0"
    out = _run(["squeue", "-h", "-r", "-j", job, "-o", "%K|%T"])
    _answered(out)
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        task, _, state = line.partition("|")
        if task.isdigit():
            found[int(task)] = state
    return found
