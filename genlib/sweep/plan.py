"""A sweep's plan: what was submitted, where each cell works, and the jobs that ran it.

It is written to ``.genlib/sweeps/<name>.json`` in the project (``genlib sweep --status`` reads it)
and copied to the sweep's work folder, ``plan.json``, which the array tasks read. The work folder
and the cache must be on a filesystem every node mounts:

    <work>/plan.json        the cells, the commit, the origin, the cache
    <work>/sweep.sbatch     the job script (one array task per cell)
    <work>/cells/<i>/       cell i's clone; a requeued or resubmitted task reuses it, so the
                            training's resume checkpoint (.genlib/resume/) survives
    <work>/logs/<i>.log     cell i's output, every attempt appended
    <work>/state/<i>.json   what cell i's last attempt recorded (running, done, failed)
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from genlib.sweep import SweepError
from genlib.sweep.grid import Cell

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SWEEPS = Path(".genlib") / "sweeps"


@dataclass
class Plan:
    """The sweep ``name``: its cells at ``commit``, cloned from ``origin`` (a URL or absolute
    path) and pushed back to it, sharing the DVC cache ``cache_dir``; the tasks put the Python
    environment's ``bin`` first on PATH. ``jobs`` are the SLURM arrays submitted, each with its cells."""

    name: str
    commit: str
    origin: str
    cache_dir: str
    work_dir: str
    python_bin: str
    cells: list[Cell]
    cache_type: str | None = None
    jobs: list[dict] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return Path(self.work_dir)

    def cell_dir(self, i: int) -> Path:
        return self.work / "cells" / str(i)

    def log(self, i: int) -> Path:
        return self.work / "logs" / f"{i}.log"

    def state_file(self, i: int) -> Path:
        return self.work / "state" / f"{i}.json"

    @property
    def script(self) -> Path:
        return self.work / "sweep.sbatch"

    @property
    def task_plan(self) -> Path:
        return self.work / "plan.json"

    def job_of(self, i: int) -> str | None:
        """The id of the last array that ran cell ``i``."""
        ids = [job["id"] for job in self.jobs if i in job["cells"]]
        return ids[-1] if ids else None

    def to_dict(self) -> dict:
        return {"name": self.name, "commit": self.commit, "origin": self.origin, "cache_dir": self.cache_dir,
                "cache_type": self.cache_type, "work_dir": self.work_dir, "python_bin": self.python_bin,
                "cells": [c.to_dict() for c in self.cells], "jobs": self.jobs}

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        return cls(d["name"], d["commit"], d["origin"], d["cache_dir"], d["work_dir"], d["python_bin"],
                   [Cell.from_dict(c) for c in d["cells"]], d.get("cache_type"), d.get("jobs", []))


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise SweepError(f"sweep name {name!r}: letters, digits, '.', '_' and '-' only (it names experiments, git refs)")
    return name


def plan_file(root: Path, name: str) -> Path:
    return root / SWEEPS / f"{check_name(name)}.json"


def save(plan: Plan, root: Path) -> None:
    """Write the plan to the project and to the work folder."""
    text = json.dumps(plan.to_dict(), indent=2) + "\n"
    for path in (plan_file(root, plan.name), plan.task_plan):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)


def read(path: Path) -> Plan:
    try:
        return Plan.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise SweepError(f"{path}: no such sweep here (the sweeps of this project are in {SWEEPS}/)") from None
    except (ValueError, KeyError, TypeError) as err:
        raise SweepError(f"{path}: not a sweep plan ({type(err).__name__}: {err})") from None
