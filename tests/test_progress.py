"""Progress off a terminal: plain lines every few percent, a summary at each stage's end, and
results that do not depend on either (stderr captured, so not a terminal)."""
import json
import re

import numpy as np
import pytest
import torch

from genlib import progress
from genlib.config import load
from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.report import report_stage
from genlib.pipeline.train import train_stage
from genlib.progress import Lines, display

from test_config import ROOT
from test_pipeline import TINY


class Clock:
    """``time.perf_counter`` that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.time, "perf_counter", c)
    return c


def lines_of(err: str, prefix: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(prefix)]


def test_what_each_setting_shows(monkeypatch):
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: True)
    assert [display(s) for s in ("auto", "always", "never")] == ["bars", "bars", "off"]
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False)
    assert [display(s) for s in ("auto", "always", "never")] == ["lines", "bars", "off"]


def test_a_line_every_five_percent_with_the_mean_rate(clock, capsys, monkeypatch):
    monkeypatch.setattr(progress, "MIN_INTERVAL_S", 0.0)
    with Lines(200, "train") as lines:
        for step in range(1, 201):
            clock.now += 0.5 if step <= 100 else 0.1  # 2 steps/s, then 10 steps/s
            lines.update(1)
            if step == 40:
                lines.set_postfix(loss="0.2500")
    out = lines_of(capsys.readouterr().err, "train:")
    assert len(out) == 19  # 5% to 95%; the stage's summary says 100%
    assert out[0] == "train: 10/200 steps (5%), 2 steps/s, ETA 1 min 35 s"
    assert out[7] == "train: 80/200 steps (40%), loss 0.2500, 2 steps/s, ETA 1 min 00 s"
    # Past the change of pace: 120 steps in 52 s, the mean rate, not the last step's 10 steps/s.
    assert out[11] == "train: 120/200 steps (60%), loss 0.2500, 2.31 steps/s, ETA 35 s"


def test_lines_are_not_more_often_than_the_minimum_interval(clock, capsys):
    with Lines(1000, "train") as lines:
        for _ in range(1000):
            clock.now += 0.0625  # 62.5 s in all (exact in binary): a line at most every 10 s
            lines.update(1)
    out = lines_of(capsys.readouterr().err, "train:")
    assert [int(re.match(r"train: (\d+)/", line).group(1)) for line in out] == [200, 400, 600, 800]


def test_a_resumed_count_starts_its_rate_at_the_resume_point(clock, capsys, monkeypatch):
    monkeypatch.setattr(progress, "MIN_INTERVAL_S", 0.0)
    lines = Lines(100, "train", initial=50)
    for _ in range(5):
        clock.now += 1.0
        lines.update(1)
    assert lines_of(capsys.readouterr().err, "train:") == ["train: 55/100 steps (55%), 1 steps/s, ETA 45 s"]


def run_pipeline(root, setting: str):
    cfg = load(ROOT / "params.yaml", {**TINY, "run.progress": setting})
    paths = Paths(root)
    for stage in (prepare_data, train_stage, generate_stage, evaluate_stage, report_stage):
        stage(cfg, paths)
    return paths


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    return run_pipeline(tmp_path_factory.mktemp("never"), "never")


def test_a_tiny_pipeline_off_a_terminal_says_how_far_each_stage_is(tmp_path, capsys, monkeypatch, quiet):
    capsys.readouterr()
    monkeypatch.setattr(progress, "MIN_INTERVAL_S", 0.0)
    paths = run_pipeline(tmp_path, "auto")
    err = capsys.readouterr().err
    train = lines_of(err, "train:")
    assert re.fullmatch(r"train: 8 steps in [\d.]+ s \([\d.]+ steps/s\), final loss [\d.]+", train[-1])
    assert re.fullmatch(r"train: 1/8 steps \(12%\), [\d.]+ steps/s, ETA \d+ s", train[0])
    assert len(train) == 8  # a line at steps 1 to 7 (5% is less than a step), then the summary
    assert "loss" not in train[1] and re.search(r", loss [\d.]+, ", train[2])  # logged at step 2, shown from step 3
    generate = lines_of(err, "generate:")
    assert re.fullmatch(r"generate: 300/600 samples \(50%\), [\d.]+ samples/s, ETA \d+ s", generate[0])
    assert re.fullmatch(r"generate: 600 samples in [\d.]+ s \([\d.]+ samples/s\), dlpm \(dlpm, 10 steps\)", generate[1])
    evaluate = lines_of(err, "evaluate:")
    assert evaluate[:3] == ["evaluate: sliced W1 (50 directions)", "evaluate: exact W1 (300-point subsamples)",
                            "evaluate: MMD (300-point subsamples)"]
    assert re.fullmatch(r"evaluate: \d+ metrics in [\d.]+ s, written to .*eval\.json", evaluate[-1])
    assert len(lines_of(err, "prepare_data:")) == len(lines_of(err, "report:")) == 1
    # Progress reads no random stream and adds no sync step: the same bytes as a quiet run.
    for name in ("train.npy", "test.npy"):
        assert np.array_equal(np.load(paths.prepared / name), np.load(quiet.prepared / name))
    ours, theirs = (torch.load(p.checkpoint, weights_only=True)["state"] for p in (paths, quiet))
    assert all(torch.equal(ours["net"][k], theirs["net"][k]) for k in theirs["net"]) and ours["history"] == theirs["history"]
    assert np.array_equal(np.load(paths.samples / "samples.npy"), np.load(quiet.samples / "samples.npy"))
    ours, theirs = (json.loads(p.metrics.read_text()) for p in (paths, quiet))
    assert ours.pop("sampling_time_s") > 0 and theirs.pop("sampling_time_s") > 0  # a clock
    assert ours == theirs


def test_never_prints_no_progress_and_no_summary(tmp_path, capsys):
    run_pipeline(tmp_path, "never")
    err = capsys.readouterr().err
    assert not [line for line in err.splitlines() if line.split(":")[0] in ("prepare_data", "train", "generate", "evaluate", "report")]
