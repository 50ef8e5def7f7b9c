"""Bad input at a stage's door: exit code 2, one line naming key, value and what is allowed,
before any heavy work, and no output touched. Params cases come from test_config.BAD; files
cases follow."""
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import yaml

from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.pipeline.runner import stage_main
from genlib.config import load
from genlib.pipeline.report import report_stage

from test_config import BAD, ROOT, with_change
from test_pipeline import TINY

STAGES = {
    "prepare_data": prepare_data,
    "train": train_stage,
    "generate": generate_stage,
    "evaluate": evaluate_stage,
    "report": report_stage,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A finished tiny run whose outputs every bad input must leave untouched."""
    root = tmp_path_factory.mktemp("project")
    cfg = load(ROOT / "params.yaml", TINY)
    paths = Paths(root)
    for step in STAGES.values():
        step(cfg, paths)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in TINY.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    return root, raw


def fingerprint(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "params.yaml"}


def run_stage(root: Path, stage: str, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.chdir(root)
    with pytest.raises(SystemExit) as info:
        stage_main(stage, STAGES[stage])
    return info.value.code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("stage", ["train", "generate"])
@pytest.mark.parametrize("dotted,value,key", BAD, ids=[f"{d}={v!r}" for d, v, _ in BAD])
def test_bad_params_stop_the_stage(project, monkeypatch, capsys, stage, dotted, value, key):
    root, raw = project
    before = fingerprint(root)
    (root / "params.yaml").write_text(yaml.safe_dump(with_change(dotted, value, base=raw)))
    code, err = run_stage(root, stage, monkeypatch, capsys)
    assert code == 2
    assert err.startswith("error: params: ") and key in err and "\n" not in err
    assert fingerprint(root) == before


FILE_CASES = [
    # (stage, file, new content, words the message must hold)
    ("train", "data/prepared/train.npy", b"", "train.npy"),
    ("train", "data/prepared/train.npy", "nan", "NaN"),
    ("train", "data/prepared/train.npy", "empty", "non-empty"),
    ("generate", "data/model/checkpoint.pt", b"\x80\x02garbage", "corrupt or unreadable checkpoint"),
    ("generate", "data/model/checkpoint.pt", None, "checkpoint not found"),
    ("evaluate", "data/samples/samples.npy", b"PK\x03\x04", "samples.npy"),
    ("evaluate", "data/prepared/meta.json", b"{not json", "not valid JSON"),
    ("report", "metrics/eval.json", None, "eval.json: file not found"),
]


def _content(kind):
    if kind == "nan":
        arr = np.zeros((8, 2), np.float32)
        arr[2, 0] = np.nan
    elif kind == "empty":
        arr = np.zeros((0, 2), np.float32)
    else:
        return kind
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("stage,name,content,words", FILE_CASES, ids=[f"{s}:{n}:{w}" for s, n, _, w in FILE_CASES])
def test_bad_files_stop_the_stage(project, monkeypatch, capsys, stage, name, content, words):
    root, raw = project
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    path = root / name
    old = path.read_bytes()
    try:
        if content is None:
            path.unlink()
        else:
            path.write_bytes(_content(content))
        before = fingerprint(root)
        code, err = run_stage(root, stage, monkeypatch, capsys)
        assert code == 2 and err.startswith("error: ") and "\n" not in err
        assert words in err and name.split("/")[-1] in err
        assert fingerprint(root) == before
    finally:
        path.write_bytes(old)
