"""``genlib sweep --status NAME``: each cell's state, whether its experiment reached the origin,
and for a cell that ended without it, the one-line error of its log.

The state is the scheduler's (:func:`genlib.sweep.slurm.states`) while it remembers the task,
else what the task's last attempt recorded (``<work>/state/<i>.json``). A genlib stage ends a
failure with one ``error: ...`` line; the last such line of the log is the cell's error, or
else DVC's last ``ERROR:`` line, or else the scheduler's (``*** JOB 12 ... CANCELLED ***``).
"""
from __future__ import annotations

import json
import re
import subprocess

from genlib.sweep.plan import Plan

ACTIVE = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
          "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING")
ERRORS = (re.compile(r"^error: (.*)$"), re.compile(r"^ERROR: (.*)$"), re.compile(r"error: (\*\*\* .* \*\*\*)"))


def in_origin(origin: str, commit: str) -> set[str]:
    """The names of the experiments of ``commit`` in the git repository ``origin``."""
    out = subprocess.run(["git", "ls-remote", origin, f"refs/exps/{commit[:2]}/{commit[2:]}/*"],
                         capture_output=True, text=True)
    prefix = f"refs/exps/{commit[:2]}/{commit[2:]}/"
    return {ref.removeprefix(prefix) for _, _, ref in (line.partition("\t") for line in out.stdout.splitlines())
            if ref.startswith(prefix)}


def last_error(log_text: str) -> str:
    """The one-line error of a job log (the last attempt's, as attempts are appended)."""
    lines = log_text.splitlines()
    for pattern in ERRORS:
        found = [m.group(1) for m in map(pattern.search, lines) if m]
        if found:
            return found[-1]
    return ""


def recorded(plan: Plan, i: int) -> dict:
    try:
        return json.loads(plan.state_file(i).read_text())
    except (OSError, ValueError):
        return {}


def cell_states(plan: Plan) -> list[dict]:
    """For each cell: its experiment, its state, whether it is in the origin, its error."""
    from genlib.sweep.slurm import states

    scheduler = {job["id"]: states(job["id"]) for job in plan.jobs}
    pushed = in_origin(plan.origin, plan.commit)
    rows = []
    for cell in plan.cells:
        job = plan.job_of(cell.index)
        state = scheduler.get(job, {}).get(cell.index) if job else "NOT SUBMITTED"
        if state is None:
            state = _recorded_state(recorded(plan, cell.index))
        row = {"index": cell.index, "exp": cell.exp, "overrides": " ".join(cell.overrides), "job": job,
               "state": state, "in_origin": cell.exp in pushed, "error": ""}
        if not row["in_origin"] and state not in ACTIVE and job:
            log = plan.log(cell.index)
            row["error"] = last_error(log.read_text(errors="replace")) if log.is_file() else f"no log at {log}"
        rows.append(row)
    return rows


def _recorded_state(own: dict) -> str:
    """A state from the task's own record, for a task the scheduler no longer knows."""
    state = own.get("state")
    if state is None:
        return "NOT STARTED"
    if state == "running":  # it never recorded its end: killed (SIGKILL, a node lost)
        return "ENDED"
    return state.upper()


def lines(plan: Plan) -> list[str]:
    rows = cell_states(plan)
    jobs = ", ".join(job["id"] for job in plan.jobs) or "none"
    out = [f"sweep {plan.name}: {cells(len(rows))} at commit {plan.commit[:12]}, job {jobs}; cache {plan.cache_dir}"]
    width = max(len(r["exp"]) for r in rows)
    for r in rows:
        origin = "in origin" if r["in_origin"] else "not in origin"
        line = f"  {r['exp']:<{width}}  {r['state']:<15} {origin:<13}  {r['overrides']}"
        out.append(line + (f"\n    error: {r['error']}" if r["error"] else ""))
    done = sum(r["in_origin"] for r in rows)
    out.append(f"{done} of {len(rows)} in the origin" + (": `dvc exp pull origin`, then `genlib compare`" if done else ""))
    ended = sum(not r["in_origin"] and r["state"] not in ACTIVE for r in rows)
    if ended:
        out.append(f"`genlib sweep --resubmit {plan.name}` submits the {cells(ended)} that ended out of origin again; "
                   "each resumes from its checkpoint")
    return out


def cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"
