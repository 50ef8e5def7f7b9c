"""Plan a sweep and submit it, or submit again the cells that have not reached the origin."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from genlib.sweep import SweepError
from genlib.sweep import grid, slurm
from genlib.sweep.plan import Plan, check_name, plan_file, read, save
from genlib.sweep.status import ACTIVE, cell_states


def git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or ["no message"]
        raise SweepError(f"git {' '.join(args)}: {lines[-1]}")
    return out.stdout.rstrip()  # not lstrip: `git status --porcelain` lines start with a space


def plan_sweep(root: Path, name: str, set_params: list[str], cache_dir: str | None = None,
               cache_type: str | None = None, work_dir: str | None = None, remote: str = "origin", nodes: int = 1) -> Plan:
    """The plan of a new sweep of ``HEAD``: every cell's params checked, the commit on ``remote``."""
    check_name(name)
    if plan_file(root, name).exists():
        raise SweepError(f"a sweep named {name} exists ({plan_file(root, name)}): `genlib sweep --status {name}`, "
                         f"`genlib sweep --resubmit {name}`, or another name")
    commit = git(root, "rev-parse", "HEAD")
    # dvc.lock only says what a run may skip, never what a cell computes: the last `dvc exp run`
    # leaves it changed, and the tasks use the commit's
    changed = [line[3:] for line in git(root, "status", "--porcelain", "--untracked-files=no").splitlines()
               if line[3:] != "dvc.lock"]
    if changed:
        files = ", ".join(changed[:3])
        raise SweepError(f"uncommitted changes ({files}): the tasks run commit {commit[:12]} as it is; commit them first")
    origin = origin_url(root, remote)
    check_on_origin(root, commit, origin, remote)
    cells = grid.cells(name, set_params, root, nodes)
    cache = Path(cache_dir) if cache_dir else Path(subprocess.run(["dvc", "cache", "dir"], cwd=root, capture_output=True,
                                                                   text=True, check=True).stdout.strip())
    work = Path(work_dir) if work_dir else root / ".genlib" / "sweeps" / name
    return Plan(name, commit, origin, str(_absolute(root, cache)), str(_absolute(root, work)),
                str(Path(sys.executable).parent.resolve()), cells, cache_type)


def _absolute(root: Path, path: Path) -> Path:
    return (path if path.is_absolute() else root / path).resolve()


def origin_url(root: Path, remote: str) -> str:
    """``remote``'s URL; a local path made absolute, as each task clones it from its own folder."""
    url = git(root, "remote", "get-url", remote)
    local = Path(url) if "://" not in url and ":" not in url.split("/")[0] else None
    return str(_absolute(root, local)) if local is not None and _absolute(root, local).exists() else url


def check_on_origin(root: Path, commit: str, origin: str, remote: str) -> None:
    """Refuse a commit that no branch or tag of the origin holds: the tasks clone it from there."""
    for line in git(root, "ls-remote", origin).splitlines():
        sha = line.split("\t")[0]
        known = subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=root, capture_output=True).returncode == 0
        if known and subprocess.run(["git", "merge-base", "--is-ancestor", commit, sha], cwd=root).returncode == 0:
            return
    raise SweepError(f"commit {commit[:12]} is not in {remote} ({origin}): the tasks clone it from there; "
                     f"push it first (git push {remote} HEAD)")


def start(root: Path, plan: Plan, resources: slurm.Resources, dry_run: bool = False) -> Plan:
    """Write the job script and the plan, and submit every cell as one array (unless ``dry_run``)."""
    plan.log(0).parent.mkdir(parents=True, exist_ok=True)  # sbatch writes no log into a missing folder
    plan.script.write_text(slurm.script(plan, resources))
    save(plan, root)
    if not dry_run:
        cells = [c.index for c in plan.cells]
        plan.jobs.append({"id": slurm.submit(plan, cells), "cells": cells})
        save(plan, root)
    return plan


def resubmit(root: Path, name: str) -> tuple[Plan, list[int]]:
    """Submit again, as one array with the same script, the cells that are not in the origin and
    not queued or running; each resumes in its clone. Returns the plan and those cells."""
    plan = read(plan_file(root, name))
    cells = [r["index"] for r in cell_states(plan) if not r["in_origin"] and r["state"] not in ACTIVE]
    if cells:
        plan.jobs.append({"id": slurm.submit(plan, cells), "cells": cells})
        save(plan, root)
    return plan, cells
