"""Why a queued experiment failed, in one line, from its queue log.

A genlib stage that stops on something a user can fix prints one ``error: ...`` line on stderr
(:func:`genlib.pipeline.runner.fail`); DVC adds ``ERROR: failed to reproduce ...`` after it. The
log is the file ``dvc exp show --json`` names for the run, or else ``dvc queue logs <name>``.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from genlib.compare.experiments import Experiment


def reason(log: str) -> str | None:
    """The last genlib ``error:`` line of a log, else DVC's last ``ERROR:`` line, else None."""
    lines = [line.strip() for line in log.splitlines()]
    for prefix in ("error: ", "ERROR: "):
        found = [line[len(prefix):] for line in lines if line.startswith(prefix)]
        if found:
            return found[-1]
    return None


def queue_log(exp: Experiment, repo: Path | None) -> str:
    """The run's log: the file DVC recorded, else ``dvc queue logs``; empty when neither is there."""
    if exp.log:
        try:
            return Path(exp.log).read_text(errors="replace")
        except OSError:
            pass
    if repo is None:
        return ""
    try:
        done = subprocess.run(["dvc", "queue", "logs", exp.name], cwd=repo, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def explain_failures(exps: list[Experiment], repo: Path | None) -> None:
    """Replace a failed run's ``failed: Experiment run failed`` by the error its log names."""
    for exp in exps:
        if exp.problem and exp.problem.startswith("failed"):
            why = reason(queue_log(exp, repo))
            if why:
                exp.problem = f"failed: {why}"
