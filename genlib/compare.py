"""``genlib compare``: one offline report across DVC experiments.

Reads ``dvc exp show --json`` (run here, or a saved file) and writes a Markdown and a
self-contained HTML report:
- a table of every metric per experiment, with the params that differ between experiments;
- each metric plotted against the reverse steps per method and sampler, and against alpha when
  alpha varies;
- the experiments' sample plots side by side.
It prints the table as Markdown on the terminal. Experiments without metrics (failed, queued or
running) are listed with their state instead of crashing the report.
"""
from __future__ import annotations

import json
import math
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlib import io

METRICS_FILE = "metrics/eval.json"
TRAIN_FILE = "metrics/train.json"
SAMPLES_PLOT = "plots/samples.png"
HEADLINE = (
    "w1_exact", "w1_sliced", "mmd", "tail_error", "mode_weight_l1", "mode_ratio_worst", "precision", "recall",
    # image runs
    "fid", "kid", "fid_clf", "kid_clf", "precision_clf", "recall_clf", "class_tv", "class_worst_coverage",
    "rare_share_gen",
    # likelihood families (vae, hvae)
    "elbo", "nll_iwae", "bits_per_dim",
    "sampling_time_s",
)


@dataclass
class Experiment:
    name: str
    rev: str
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    problem: str | None = None  # why there are no metrics (failed, running, ...)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"eval": {"reverse_steps": 5}}`` -> ``{"eval.reverse_steps": 5}`` (lists stay values)."""
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


def _file_data(data: dict, section: str, path: str) -> dict:
    entry = (data.get(section) or {}).get(path) or {}
    return entry.get("data") or {}


def _experiment(rev: dict, executor: dict | None) -> Experiment:
    data = rev.get("data") or {}
    name = rev.get("name") or str(rev.get("rev", "?"))[:7]
    exp = Experiment(name=name, rev=rev.get("rev", ""), params=flatten(_file_data(data, "params", "params.yaml")))
    state = (executor or {}).get("state")
    if rev.get("error"):
        exp.problem = f"{state or 'failed'}: {rev['error'].get('msg', 'error')}"
    elif state in ("queued", "running", "failed"):
        exp.problem = state
    else:
        metrics = {**_file_data(data, "metrics", TRAIN_FILE), **_file_data(data, "metrics", METRICS_FILE)}
        exp.metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        if not exp.metrics:
            exp.problem = f"no {METRICS_FILE}"
    return exp


def parse_exp_show(rows: list[dict], include_workspace: bool = False) -> list[Experiment]:
    """Experiments (and their baseline commits) from ``dvc exp show --json``."""
    out = []
    for commit in rows:
        if commit.get("rev") != "workspace" or include_workspace:
            out.append(_experiment(commit, None))
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                out.append(_experiment(rev, exp.get("executor")))
    return out


def read_exp_show(repo: Path, all_commits: bool = False) -> list[dict]:
    """Run ``dvc exp show --json`` in ``repo`` (fixed arguments, no shell)."""
    cmd = ["dvc", "exp", "show", "--json"] + (["--all-commits"] if all_commits else [])
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dvc exp show failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return json.loads(done.stdout)


def differing_params(exps: list[Experiment]) -> list[str]:
    """Param keys whose values are not the same in every experiment that reports params."""
    exps = [e for e in exps if e.params]
    keys = sorted({k for e in exps for k in e.params})
    return [k for k in keys if len({json.dumps(e.params.get(k), sort_keys=True) for e in exps}) > 1]


def table(exps: list[Experiment], params: list[str], metrics: list[str]) -> list[str]:
    from genlib.report import fmt, markdown_table

    rows = [[e.name, *(fmt(e.params.get(p)) for p in params), *(fmt(e.metrics.get(m)) for m in metrics)] for e in exps]
    return markdown_table(rows, ["experiment", *params, *metrics])


def x_value(e: Experiment, x_key: str):
    """The experiment's value of ``x_key``; ``alpha`` means its own method's ``<method>.alpha``."""
    if x_key == "alpha":
        return e.params.get(f"{e.params.get('method')}.alpha")
    return e.params.get(x_key)


def series_by(exps: list[Experiment], x_key: str, metric: str) -> dict[str, tuple[list, list]]:
    """Metric against ``x_key``, one series per method and sampler."""
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for e in exps:
        x = x_value(e, x_key)
        if metric in e.metrics and isinstance(x, (int, float)) and not isinstance(x, bool):
            label = f"{e.params.get('method')} ({e.params.get('eval.sampler', 'default')})"
            groups[label].append((x, e.metrics[metric]))
    return {k: ([x for x, _ in sorted(v)], [y for _, y in sorted(v)]) for k, v in groups.items()}


def metric_plots(out: Path, exps: list[Experiment], metrics: list[str]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    for x_key, label in (("eval.reverse_steps", "reverse steps"), ("alpha", "alpha (of each method)")):
        if len({x_value(e, x_key) for e in exps if e.metrics} - {None}) < 2:
            continue
        cols = min(3, len(metrics))
        rows = math.ceil(len(metrics) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
        for ax, metric in zip(axes.flat, metrics):
            for name, (xs, ys) in series_by(exps, x_key, metric).items():
                ax.plot(xs, ys, marker="o", label=name)
            ax.set_title(metric)
            ax.set_xlabel(label)
            if x_key == "eval.reverse_steps":
                ax.set_xscale("log")
            ax.grid(True, alpha=0.3)
        for ax in list(axes.flat)[len(metrics):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        name = f"metrics_vs_{x_key.split('.')[-1]}.png"
        with io.atomic_path(out / name) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        figures.append((f"Metrics against {label}", name))
    return figures


def sample_plots(out: Path, exps: list[Experiment], repo: Path) -> list[tuple[str, str]]:
    """Each experiment's ``plots/samples.png`` from DVC (cache or workspace), copied beside the report."""
    import dvc.api

    figures = []
    for e in exps:
        if e.problem or not e.rev:
            continue
        try:
            with dvc.api.open(SAMPLES_PLOT, repo=str(repo), rev=e.rev, mode="rb") as fh:
                content = fh.read()
        except Exception:  # not in the cache here (pulled elsewhere, or never produced)
            continue
        name = f"samples_{len(figures):02d}.png"
        io.write_bytes(out / name, content)
        figures.append((f"Samples: {e.name}", name))
    return figures


def compare(exps: list[Experiment], out: Path, repo: Path | None = None, metrics: list[str] | None = None) -> list[str]:
    """Write the report into ``out``; return the Markdown table lines (also in the report)."""
    from genlib.report import to_html

    out.mkdir(parents=True, exist_ok=True)
    ok = [e for e in exps if not e.problem]
    metrics = metrics or [m for m in HEADLINE if any(m in e.metrics for e in ok)]
    params = differing_params(ok)
    lines = table(ok, params, metrics)
    md = ["# genlib comparison", "", f"{len(ok)} experiments with metrics, {len(exps) - len(ok)} without.", "", "## Metrics", "", *lines, ""]
    missing = [f"- {e.name}: {e.problem}" for e in exps if e.problem]
    if missing:
        md += ["## Without metrics", "", *missing, ""]
    figures = metric_plots(out, ok, metrics) if ok else []
    if repo is not None:
        figures += sample_plots(out, ok, repo)
    for caption, name in figures:
        md += [f"## {caption}", "", f"![{caption}]({name})", ""]
    io.write_text(out / "compare.md", "\n".join(md))
    io.write_text(out / "compare.html", to_html(md, out))
    return lines + ([""] + ["Without metrics:"] + missing if missing else [])
