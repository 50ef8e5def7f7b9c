"""Which run wrote a result, and when: the experiment's name, the git revision and the date, for
the report's header.

None of them is a dependency of a stage, so none keys one (README, "The cache key"). DVC may
restore a report from its run-cache that an earlier run with the same dependencies wrote; its
header then names that run, which is where those results were computed.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Mapping

import yaml

NO_GIT = "none (not a git repository)"


def experiment_name(env: Mapping[str, str]) -> str:
    """The name ``dvc exp run`` gives the experiment (``DVC_EXP_NAME``), else ``workspace``."""
    return env.get("DVC_EXP_NAME") or "workspace"


def git_revision(root: Path, env: Mapping[str, str]) -> str:
    """The short sha of the commit the run started from (``DVC_EXP_BASELINE_REV`` in an
    experiment, else ``HEAD``), with ``+changes`` when a file of the project differs from it (or
    is new and not ignored), leaving out what the run writes itself (:func:`run_outputs`);
    :data:`NO_GIT` outside a repository."""
    rev = env.get("DVC_EXP_BASELINE_REV") or _git(root, "rev-parse", "HEAD")
    short = rev and _git(root, "rev-parse", "--short", rev)
    if not short:
        return NO_GIT
    listed = (_git(root, "diff", "--name-only", "--relative", rev) or "") + "\n" + (
        _git(root, "ls-files", "--others", "--exclude-standard") or "")
    outputs = run_outputs(root)
    changed = [f for f in listed.splitlines() if f and not any(f == o or f.startswith(o + "/") for o in outputs)]
    return f"{short}+changes" if changed else short


def run_outputs(root: Path) -> set[str]:
    """``dvc.lock``, the outputs, metrics and plots of the stages in ``dvc.yaml`` and the
    ``.gitignore`` beside each: DVC and the stages write them during a run (the outputs in git
    too, with ``cache: false``; DVC adds each cached one to the ``.gitignore`` of its folder)."""
    try:
        stages = yaml.safe_load((root / "dvc.yaml").read_text()).get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        stages = {}
    outputs = {"dvc.lock"}
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in (stage.get(kind) or []) if isinstance(stage, dict) else []:
                out = str(next(iter(entry)) if isinstance(entry, dict) else entry).rstrip("/")
                outputs |= {out, str(Path(out).parent / ".gitignore")}
    return outputs


def written_at(env: Mapping[str, str]) -> str:
    """Now in UTC, to the minute; ``SOURCE_DATE_EPOCH`` (reproducible builds) fixes it."""
    epoch = env.get("SOURCE_DATE_EPOCH", "")
    seconds = int(epoch) if epoch.isdigit() else time.time()
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def _git(root: Path, *args: str) -> str | None:
    """git's output in ``root``, stripped; ``None`` where git is missing or fails."""
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
