"""Every metric a run writes has its meaning in the report, for every registered method."""
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
from genlib.report import table_cells

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
def test_every_metric_in_the_report_has_its_meaning(tmp_path, method):
    cfg = load(ROOT / "params.yaml", {**TINY, "method": method})
    paths = Paths(tmp_path)
    prepare_data(cfg, paths)
    train_teacher_stage(cfg, paths)
    train_stage(cfg, paths)
    generate_stage(cfg, paths)
    metrics = evaluate_stage(cfg, paths)
    rows = metric_rows(report_stage(cfg, paths).read_text())
    assert {row[0] for row in rows} >= set(metrics)
    assert all(len(row) == 3 for row in rows), rows
    assert [row[0] for row in rows if not row[2]] == []
