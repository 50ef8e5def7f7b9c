"""The comparison report: tables, metric plots, training curves and samples, in ``compare.md``
and a self-contained ``compare.html``."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from genlib import io
from genlib.compare import figures
from genlib.compare.directions import HEADLINE, direction, ordered
from genlib.compare.experiments import CompareError, Experiment, differing_params
from genlib.compare.failures import explain_failures
from genlib.compare.files import ExperimentFiles
from genlib.compare.groups import ALPHA, SEED, Group, applies, distinct_runs, methods_of, series, x_value
from genlib.compare.page import Page
from genlib.compare.tables import Column, experiment_table, summary_table

CURVES = "plots/train/plots/metrics"
FIRST_CURVES = ("loss", "grad_norm", "lr")
MAX_AXES = 4  # metric figures, one per swept param
MAX_PANELS = 24  # sample panels
LEGEND = ("Direction of each metric in its header: ↓ lower is better, ↑ higher, →0 nearest 0, →1 nearest 1 "
          "(ratios in log scale, so 0.5 and 2 are equally far); the best value is in bold (green in the HTML page). "
          "A configuration is the params that differ between experiments, the seed left out: its metrics are "
          "the mean [min, max] over its n runs. Click a header of the HTML tables to sort.")


def x_axes(exps: list[Experiment], varying: list[str]) -> list[str]:
    """The swept numeric params to plot against: reverse steps first, each method's own alpha as
    one axis, then the others; each needs two values or more."""
    methods = methods_of(exps)
    own_alpha = {f"{m}.alpha" for m in methods}  # plotted together, as "alpha"
    candidates = ["eval.reverse_steps", ALPHA] + [k for k in varying if k not in {"eval.reverse_steps", SEED} | own_alpha]
    out = []
    for key in candidates:
        values = {x_value(e, key) for e in exps if applies(e, key, methods)}
        numeric = {v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if (key in varying or key == ALPHA) and len(numeric) >= 2:
            out.append(key)
    return out[:MAX_AXES]


def metric_figures(page: Page, exps: list[Experiment], varying: list[str], metrics: list[str]) -> None:
    for x_key in x_axes(exps, varying):
        panels = {Column(m, direction(m)).title: s for m in metrics[:9] if (s := series(exps, varying, x_key, m))}
        if not panels:
            continue
        labels = list(dict.fromkeys(name for s in panels.values() for name in s))
        xs = [p.x for s in panels.values() for points in s.values() for p in points]
        log_x = x_key == "eval.reverse_steps" or (min(xs) > 0 and max(xs) / min(xs) >= 20)
        xlabel = {"eval.reverse_steps": "reverse steps", ALPHA: "alpha (of each method)"}.get(x_key, x_key)
        name = f"metrics_vs_{x_key.replace('.', '_')}.png"
        figures.metric_panels(page.folder / name, xlabel, panels, {n: i for i, n in enumerate(labels)}, log_x)
        page.heading(f"Metrics against {xlabel}")
        page.text(f"One line per configuration (every differing param but {xlabel} and the seed); "
                  "a point is the mean over seeds, its bar runs from min to max, n = runs per point.", note=True)
        page.figure(f"Metrics against {xlabel}", name)


def read_tsv(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """A dvclive TSV (``step`` and ``name`` columns) as two arrays; None if it is not one."""
    try:
        rows = list(csv.DictReader(data.decode().splitlines(), delimiter="\t"))
        points = [(float(r["step"]), float(r[name])) for r in rows]
    except (UnicodeDecodeError, KeyError, TypeError, ValueError):
        return None
    return (np.array([p[0] for p in points]), np.array([p[1] for p in points])) if points else None


def curve_figure(page: Page, files: ExperimentFiles, groups: list[Group]) -> None:
    curves: dict[str, list] = {}
    for g in groups:
        for e in g.exps:
            for file in files.listdir(e.rev, CURVES):
                stem = file.removesuffix(".tsv")
                data = files.read(e.rev, f"{CURVES}/{file}") if file.endswith(".tsv") else None
                curve = read_tsv(data, stem) if data else None
                if curve is not None:
                    curves.setdefault(stem, []).append((g.label, *curve))
    if not curves:
        return
    curves = {k: curves[k] for k in ordered(list(curves), list(FIRST_CURVES))}
    figures.curve_panels(page.folder / "training_curves.png", curves, {g.label: i for i, g in enumerate(groups)})
    page.heading("Training curves")
    page.text(f"Every experiment's {CURVES}/*.tsv, read from the DVC cache; one colour per configuration, "
              "one line per run (its seeds share the colour).", note=True)
    page.figure("Training curves", "training_curves.png")


def _seed(e: Experiment) -> tuple:
    seed = e.params.get(SEED)
    return (0, seed, "") if isinstance(seed, int) else (1, 0, str(seed))


def sample_figure(page: Page, files: ExperimentFiles, groups: list[Group], varying: list[str]) -> None:
    runs = [(g, e) for g in groups for e in sorted(g.exps, key=_seed)]
    panels = []
    for g, e in runs[:MAX_PANELS]:
        title = g.label + (f", seed={e.params.get(SEED)}" if SEED in varying else "")
        samples, data = (files.read(e.rev, p) for p in ("data/samples/samples.npy", "data/prepared/test.npy"))
        samples = figures.load_array(samples) if samples else None
        png = files.read(e.rev, "plots/samples.png") if samples is None else None  # the run's own figure instead
        panels.append((title, samples, figures.load_array(data) if data else None, png))
    if not any(s is not None or png is not None for _, s, _, png in panels):
        return
    points = all(s is not None and s.ndim == 2 and s.shape[1] == 2 for _, s, _, _ in panels)
    shared = points and not any(k.startswith("data.") for k in varying)
    figures.sample_grid(page.folder / "samples.png", panels, shared)
    page.heading("Samples")
    note = f"the first {MAX_PANELS} of {len(runs)} runs; " if len(runs) > MAX_PANELS else ""
    what = "generated points in red over held-out data in grey" if points else "each run's generated samples"
    page.text(f"{note}{what}" + (", on shared axes" if shared else ""), note=True)
    page.figure("Samples", "samples.png")


def read_samplers(exps: list[Experiment], files: ExperimentFiles) -> None:
    for e in exps:
        data = files.read(e.rev, "data/samples/info.json")
        try:
            info = json.loads(data) if data else {}
        except ValueError:
            info = {}
        if isinstance(info, dict) and isinstance(info.get("sampler"), str):
            e.sampler = info["sampler"]


def compare(exps: list[Experiment], out: Path, repo: Path | None = None, metrics: list[str] | None = None) -> list[str]:
    """Write the report into ``out``; return its tables (and the runs without metrics) as
    Markdown lines. With ``repo`` (the project), failures are explained from the queue logs, and
    the sampler used, the training curves and the samples are read from the DVC cache."""
    if repo is not None:
        explain_failures(exps, repo)
    ok = [e for e in exps if not e.problem]
    files = ExperimentFiles(repo) if repo is not None else None
    if files is not None:
        read_samplers(ok, files)
    present = sorted({m for e in ok for m in e.metrics})
    unknown = [m for m in metrics or [] if m not in present]
    if unknown and ok:
        raise CompareError(f"--metrics: no experiment has {', '.join(unknown)}; they have {', '.join(present)}")
    headline = [m for m in (metrics or HEADLINE) if m in present]
    every = ordered(present, metrics)  # the HTML tables: all metrics, the headline ones first
    varying = differing_params(ok)
    runs = distinct_runs(ok)
    summary, groups = summary_table(runs, varying, headline)
    missing = [f"{e.name}: {e.problem}" for e in exps if e.problem]

    out.mkdir(parents=True, exist_ok=True)
    page = Page(out, "genlib comparison")
    k = len(ok) - len(runs)
    repeats = f" ({k} {'repeats' if k == 1 else 'repeat'} another's params, counted once)" if k else ""
    page.text(f"{len(ok)} experiments with metrics{repeats} in {len(groups)} configurations, {len(exps) - len(ok)} without.")
    page.text(LEGEND, note=True)
    page.heading("Configurations (seeds aggregated)")
    lines = page.table(summary, summary_table(runs, varying, every)[0])
    if missing:
        page.heading("Without metrics")
        page.items(missing)
    if ok:
        metric_figures(page, runs, varying, headline)
    if files is not None and ok:
        curve_figure(page, files, groups)
        sample_figure(page, files, groups, varying)
    elif ok:
        page.text("Training curves and samples come from the DVC cache: run `genlib compare` in the project, "
                  "not on a saved JSON, to see them.", note=True)
    page.heading("Experiments")
    lines += [""] + page.table(experiment_table(ok, varying, headline), experiment_table(ok, varying, every))
    io.write_text(out / "compare.md", page.markdown())
    io.write_text(out / "compare.html", page.page())
    return lines + (["", "Without metrics:"] + [f"- {m}" for m in missing] if missing else [])
