"""Every metric a run writes has its meaning in the report, for every registered method; the
report's header names the run, the headline metrics lead the table and the params read as YAML."""
import dataclasses
import re

import pytest

from genlib.config import load
from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.report import report_stage
from genlib.pipeline.train import train_stage
from genlib.pipeline.train_teacher import train_teacher_stage
from genlib.registry import METHODS
from genlib.provenance import NO_GIT
from genlib.report import HEADLINE, LIKELIHOOD_HEADLINE, params_text, table_cells

from test_config import ROOT

TINY = {
    "data.nsamples": 512, "data.ntest": 200, "training.epochs": 1, "training.batch_size": 256,
    "eval.nsamples": 200, "eval.batch_size": 200, "eval.reverse_steps": 5, "eval.n_exact": 100,
    "eval.n_mmd": 100, "eval.n_projections": 10, "eval.n_importance": 4, "ddpm.diffusion_steps": 5,
    "dlpm.diffusion_steps": 5, "run.progress": "never", "run.log_every": 1,
}


def metric_rows(report: str) -> list[list[str]]:
    """The rows of the report's metric table (header and rule left out)."""
    lines = report.split("\n")
    start = lines.index("## Metrics") + 2
    table = [line for line in lines[start:] if line.startswith("|")][2:]
    return [table_cells(line) for line in table]


@pytest.mark.parametrize("method", METHODS.names())
def test_every_metric_in_the_report_has_its_meaning(tmp_path, method, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", f"tiny-{method}")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    cfg = load(ROOT / "params.yaml", {**TINY, "method": method, "seed": 7})
    paths = Paths(tmp_path)
    prepare_data(cfg, paths)
    train_teacher_stage(cfg, paths)
    train_stage(cfg, paths)
    generate_stage(cfg, paths)
    metrics = evaluate_stage(cfg, paths)
    report = report_stage(cfg, paths).read_text()
    rows = metric_rows(report)
    assert {row[0] for row in rows} >= set(metrics)
    assert all(len(row) == 3 for row in rows), rows
    assert [row[0] for row in rows if not row[2]] == []
    names = [row[0] for row in rows]
    headline = [k for k in (*HEADLINE["points"], *LIKELIHOOD_HEADLINE) if k in names]
    assert "w1_sliced" in headline and names == headline + sorted(names[len(headline):])
    title, _, header, _, setup = report.split("\n")[:5]
    assert header == f"seed **7**; experiment **tiny-{method}**; git revision **{NO_GIT}**; written 1970-01-01 00:00 UTC"
    assert f"method **{method}** ({params_text(dataclasses.asdict(cfg.method_params))})" in setup
    assert not re.search(r"\b(True|False|None)\b|\(\d|'", setup), setup  # no Python repr
