"""The experiments of ``dvc exp show --json``: their params (flattened), metrics and state."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics/eval.json"
TRAIN_FILE = "metrics/train.json"


class CompareError(ValueError):
    """Input ``genlib compare`` cannot use (a malformed JSON, a failed ``dvc``): one line."""


@dataclass
class Experiment:
    name: str
    rev: str
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    problem: str | None = None  # why there are no metrics (failed, running, ...)
    log: str | None = None  # the queue's log file of a queued run, where dvc names one
    sampler: str | None = None  # the sampler its generate stage used (data/samples/info.json)
    baseline: bool = False  # a commit's row, not an experiment of it


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"eval": {"reverse_steps": 5}}`` -> ``{"eval.reverse_steps": 5}`` (lists stay values)."""
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CompareError(f"{what} is a {type(value).__name__}, expected a list")
    return value


def _file_data(data: dict, section: str, path: str) -> dict:
    return _dict(_dict(_dict(_dict(data.get(section)).get(path)).get("data")))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _experiment(rev: dict, executor: dict, fallback_name: str | None) -> Experiment:
    data = _dict(rev.get("data"))
    name = rev.get("name") or fallback_name or str(rev.get("rev", "?"))[:7]
    exp = Experiment(name=str(name), rev=str(rev.get("rev", "")), params=flatten(_file_data(data, "params", "params.yaml")))
    state = executor.get("state")
    log = _dict(executor.get("local")).get("log")
    exp.log = log if isinstance(log, str) else None
    error = _dict(rev.get("error"))
    if rev.get("error"):
        exp.problem = f"{state or 'failed'}: {error.get('msg') or 'error'}"
    elif state in ("queued", "running", "failed"):
        exp.problem = state
    else:
        metrics = {**_file_data(data, "metrics", TRAIN_FILE), **_file_data(data, "metrics", METRICS_FILE)}
        exp.metrics = {k: float(v) for k, v in metrics.items() if _number(v)}
        if not exp.metrics:
            exp.problem = f"no {METRICS_FILE}"
    return exp


def parse_exp_show(rows: Any, include_workspace: bool | None = None) -> list[Experiment]:
    """Experiments (and their baseline commits) from ``dvc exp show --json``; a shape that is not
    that output is a :class:`CompareError`. The workspace row is listed when asked, and by default
    (``None``) when it holds results no other row has: a run made here that no commit or
    experiment records, as the default run after ``dvc repro`` on a fresh clone (README, "The
    committed baseline on another machine")."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "rev" in r for r in rows):
        raise CompareError("not the output of `dvc exp show --json` (expected a list of commits, each with a \"rev\")")
    out, workspace = [], None
    for commit in rows:
        if commit.get("rev") == "workspace":
            workspace = _experiment(commit, {}, "workspace")
            workspace.baseline = True
            if include_workspace:
                out.append(workspace)
        else:
            out.append(_experiment(commit, {}, None))
            out[-1].baseline = True
        for exp in _list(commit.get("experiments"), f"commit {commit['rev']}: experiments"):
            if not isinstance(exp, dict):
                raise CompareError(f"commit {commit['rev']}: an experiment entry is not an object")
            for rev in _list(exp.get("revs"), f"commit {commit['rev']}: revs"):
                out.append(_experiment(_dict(rev), _dict(exp.get("executor")), exp.get("name")))
    if include_workspace is None and workspace is not None and workspace.metrics \
            and all(e.metrics != workspace.metrics for e in out):
        out.insert(0, workspace)
    return out


def read_exp_show(repo: Path, all_commits: bool = False) -> list[dict]:
    """Run ``dvc exp show --json`` in ``repo`` (fixed arguments, no shell)."""
    cmd = ["dvc", "exp", "show", "--json"] + (["--all-commits"] if all_commits else [])
    try:
        done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    except OSError as err:
        raise CompareError(f"cannot run dvc ({err.strerror or err})") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise CompareError(f"dvc exp show failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return load_json(done.stdout, "dvc exp show --json")


def read_saved(path: Path) -> Any:
    """A saved ``dvc exp show --json``."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise CompareError(f"cannot read {path} ({getattr(err, 'strerror', None) or err})") from None
    return load_json(text, str(path))


def load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise CompareError(f"{what}: not JSON ({err})") from None


def differing_params(exps: list[Experiment]) -> list[str]:
    """Param keys whose values are not the same in every experiment that reports params,
    ``method`` first (it reads first in a label), then by name."""
    exps = [e for e in exps if e.params]
    keys = sorted({k for e in exps for k in e.params}, key=lambda k: (k != "method", k))
    return [k for k in keys if len({json.dumps(e.params.get(k), sort_keys=True) for e in exps}) > 1]
