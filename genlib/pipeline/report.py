"""The ``report`` stage: one run's offline report in ``plots/report/`` (Markdown and HTML)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from genlib import io, plots
from genlib.config import Config, build_method
from genlib.errors import DataError
from genlib.metrics.image_docs import image_warnings
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepared import read_meta
from genlib.progress import say
from genlib.provenance import experiment_name, git_revision, written_at
from genlib.report import fmt, metric_docs, metric_order, params_text, read_curve, write_report
from genlib.training.validation_metrics import VALIDATION_PREFIX


def report_stage(cfg: Config, paths: Paths = Paths()) -> Path:
    """The metric table with each metric's meaning, the samples, the loss curve and the method's
    analysis figures; returns the Markdown file's path. Every input is read and checked before
    anything is written."""
    method = build_method(cfg)
    metrics = io.read_record(paths.metrics)
    meta = read_meta(paths.prepared)
    train_info = io.read_record(paths.train_metrics)
    sampling = io.read_record(paths.samples / "info.json", ("sampler", "reverse_steps"))
    index = paths.analysis_index
    analysis = read_figures(index) if index.is_file() else []  # the method's own analysis figures
    kind = meta.get("kind", "points")
    docs = {**metric_docs(kind, meta.get("num_classes") or 0), **method.metric_docs}
    header = run_header(cfg.seed, paths.root)
    out = paths.report
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str]] = []
    io.copy_file(paths.samples_plot, out / "samples.png")
    figures.append(("Samples against held-out data", "samples.png"))
    loss_tsv = paths.train_log / "plots" / "metrics" / "loss.tsv"
    if loss_tsv.is_file():
        plots.curves(out / "loss.png", {cfg.method: read_curve(loss_tsv, "loss")}, "training loss")
        figures.append(("Training loss", "loss.png"))
    for tsv in sorted((paths.train_log / "plots" / "metrics").glob(f"{VALIDATION_PREFIX}*.tsv")):  # training.eval_every
        metric = tsv.stem.removeprefix(VALIDATION_PREFIX)
        plots.curves(out / f"{tsv.stem}.png", {cfg.method: read_curve(tsv, tsv.stem)}, f"validation {metric}", log=False)
        figures.append((f"Validation {metric} during training", f"{tsv.stem}.png"))
    for fig in analysis:
        io.copy_file(paths.analysis / fig["file"], out / fig["file"])
        figures.append((fig["caption"], fig["file"]))
    values = {**metrics, **train_info}
    rows = [[k, fmt(values[k]), docs.get(k, "")] for k in metric_order(values, kind)]
    network = "its own networks" if method.own_networks else f"network **{cfg.model_net}**"
    setup = (
        f"method **{cfg.method}** ({params_text(dataclasses.asdict(cfg.method_params))}); "
        f"data **{cfg.data.dataset}**; {network}; "
        f"{cfg.training.epochs} epochs of batch {cfg.training.batch_size}; "
        f"sampler **{sampling['sampler']}** with {sampling['reverse_steps']} reverse steps, "
        f"{'EMA ' + str(cfg.eval.ema) if cfg.eval.ema is not None else 'raw'} weights; "
        f"compared with the {cfg.eval.reference} set"
    )
    warnings = image_warnings(metrics) if meta.get("kind") == "images" else []
    page = write_report(out, f"genlib report: {cfg.method} on {cfg.data.dataset}", header, setup, rows, figures, warnings)
    say(cfg.run.progress, f"report: {page} and {page.with_suffix('.html').name}, {len(rows)} metrics, {len(figures)} figures")
    return page


def run_header(seed: int, root: Path) -> str:
    """The run that wrote the report: its seed, experiment, git revision and date (not keyed:
    :mod:`genlib.provenance`)."""
    env = os.environ
    return (f"seed **{seed}**; experiment **{experiment_name(env)}**; "
            f"git revision **{git_revision(root, env)}**; written {written_at(env)}")


def read_figures(index: Path) -> list[dict]:
    """``plots/analysis/index.json``: a list of ``{"caption", "file"}``, each file a name in that folder."""
    figures = io.read_json(index)
    fine = isinstance(figures, list) and all(
        isinstance(f, dict) and isinstance(f.get("caption"), str) and isinstance(f.get("file"), str)
        and f["file"] == Path(f["file"]).name and f["file"] != ".." for f in figures
    )
    if not fine:
        raise DataError(f"{index}: expected a list of {{\"caption\": ..., \"file\": <a file name in its folder>}}; {io.REMAKE}")
    return figures
