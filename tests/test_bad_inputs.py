"""Bad input at a stage's door: exit code 2, one line naming key, value and what is allowed,
before any heavy work, and no output touched. Params cases come from test_config.BAD; files
cases follow."""
import contextlib
import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
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
from test_images_pipeline import MNIST, TINY_IMAGES
from test_pipeline import TINY

STAGES = {
    "prepare_data": prepare_data,
    "train": train_stage,
    "generate": generate_stage,
    "evaluate": evaluate_stage,
    "report": report_stage,
}


def finished_run(root: Path, overrides: dict) -> tuple[Path, dict]:
    """Every stage run on ``params.yaml`` with ``overrides`` (dotted keys) in ``root``; the raw params."""
    cfg = load(ROOT / "params.yaml", overrides)
    paths = Paths(root)
    for step in STAGES.values():
        step(cfg, paths)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    return root, raw


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A finished tiny run whose outputs every bad input must leave untouched."""
    return finished_run(tmp_path_factory.mktemp("project"), TINY)


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
    assert err.startswith("error: params.yaml: ") and key in err and "\n" not in err
    assert fingerprint(root) == before


FILE_CASES = [
    # (stage, file, new content, words the message must hold)
    ("train", "data/prepared/train.npy", b"", "train.npy"),
    ("train", "data/prepared/train.npy", "nan", "NaN"),
    ("train", "data/prepared/train.npy", "empty", "non-empty"),
    ("generate", "data/model/checkpoint.pt", b"\x80\x02garbage", "corrupt or unreadable checkpoint"),
    ("generate", "data/model/checkpoint.pt", None, "checkpoint not found"),
    ("generate", "data/model/checkpoint.pt", "pickle", "refused: it asks for the Python global exec"),
    ("evaluate", "data/samples/samples.npy", b"PK\x03\x04", "samples.npy"),
    ("evaluate", "data/samples/samples.npy", ("array", (600,), np.float32), "(N, ...)"),
    ("evaluate", "data/samples/samples.npy", ("array", (600, 3), np.float32), "meta.json describes (2,)"),
    ("evaluate", "data/samples/samples.npy", ("array", (600, 2), np.int64), "floating-point"),
    ("evaluate", "data/prepared/test.npy", ("array", (800, 3), np.float32), "meta.json describes (2,)"),
    ("generate", "data/prepared/test.npy", ("array", (800, 1, 2), np.float32), "meta.json describes (2,)"),
    ("evaluate", "data/prepared/meta.json", b"{not json", "not valid JSON"),
    ("evaluate", "data/prepared/meta.json", b'{"shape": [2], "dataset": "caf\xe9"}', "not UTF-8 text (byte 0xe9"),
    ("evaluate", "data/prepared/meta.json", b"[2]", "expected a JSON object, found a list"),
    ("evaluate", "data/prepared/meta.json", b"{}", "no 'shape' in it"),
    ("generate", "data/prepared/meta.json", b'{"shape": "2"}', "not a list of positive integers"),
    ("evaluate", "data/prepared/meta.json", b'{"shape": [2], "kind": "video"}', "neither 'points' nor 'images'"),
    ("evaluate", "data/samples/info.json", b"[]", "found a list"),
    ("evaluate", "data/samples/info.json", b"{}", "no 'sampling_time_s'"),
    ("report", "data/samples/info.json", b'{"sampling_time_s": 1.0}', "no 'sampler', 'reverse_steps'"),
    ("report", "metrics/eval.json", None, "eval.json: file not found"),
    ("report", "metrics/eval.json", b"\xff\xfe{}", "not UTF-8 text (byte 0xff at offset 0)"),
    ("report", "metrics/eval.json", b"[]", "found a list"),
    ("report", "metrics/train.json", b"3", "found a number"),
    ("report", "plots/analysis/index.json", b'[{"caption": "x", "file": "../../params.yaml"}]', "a file name in its folder"),
    ("report", "plots/samples.png", None, "samples.png: file not found"),
]


@pytest.fixture(scope="module")
def image_project(tmp_path_factory):
    """A finished tiny MNIST run (with its evaluation classifier), and a stand-in Inception
    weights file for the cases to replace."""
    if not MNIST.is_dir():
        pytest.skip(f"real MNIST not found at {MNIST}")
    root = tmp_path_factory.mktemp("images")
    torch.save({}, root / "inception.pth")
    return finished_run(root, TINY_IMAGES)


INCEPTION = {"eval.feature_extractor": "inception", "eval.inception_weights": "inception.pth"}
IMAGE_FILE_CASES = [
    # (stage, file, new content, params changed, words the message must hold)
    ("evaluate", "data/prepared/classifier.pt", "pickle", {}, "refused: it asks for the Python global exec"),
    ("evaluate", "inception.pth", "pickle", INCEPTION, "refused: it asks for the Python global exec"),
    ("evaluate", "inception.pth", b"", INCEPTION, "corrupt or unreadable Inception-v3 weights file"),
    ("evaluate", "inception.pth", ("torch", {"fc.weight": torch.zeros(3)}), INCEPTION, "missing 565 of the network's 566 tensors"),
    ("evaluate", "inception.pth", ("torch", {"fc.bias": torch.full((1008,), float("inf"))}), INCEPTION, "NaN or inf in the Inception-v3 weights ('fc.bias')"),
    ("evaluate", "data/samples/samples.npy", ("array", (96, 1, 8, 8), np.uint8), {}, "meta.json describes (1, 16, 16)"),
    ("evaluate", "data/samples/samples.npy", ("array", (96, 16, 16), np.uint8), {}, "expected uint8 images (N, C, H, W)"),
    ("evaluate", "data/prepared/test.npy", ("array", (256, 3, 16, 16), np.uint8), {}, "meta.json describes (1, 16, 16)"),
]


@pytest.mark.parametrize("stage,name,content,changes,words", IMAGE_FILE_CASES,
                         ids=[f"{s}:{n}:{w}" for s, n, _, _, w in IMAGE_FILE_CASES])
def test_bad_image_files_stop_the_stage(image_project, monkeypatch, capsys, stage, name, content, changes, words):
    root, raw = image_project
    params = raw
    for dotted, value in changes.items():
        params = with_change(dotted, value, base=params)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    MARKER.unlink(missing_ok=True)
    with replaced(root, name, _content(content)):
        before = fingerprint(root)
        code, err = run_stage(root, stage, monkeypatch, capsys)
        assert_one_line(code, err, words, name.split("/")[-1])
        assert fingerprint(root) == before
    assert not MARKER.exists(), "the crafted file ran code"


class WritesMarker:
    """Unpickled, it writes a marker file: how a crafted weights file runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def crafted(marker: Path) -> bytes:
    """A torch file whose unpickling (without weights_only) runs code: it writes ``marker``."""
    buf = io.BytesIO()
    torch.save({"state": {"net": WritesMarker(marker)}}, buf)
    return buf.getvalue()


MARKER = Path(tempfile.gettempdir()) / f"genlib-marker-{os.getpid()}"


def _content(kind):
    if kind == "nan":
        arr = np.zeros((8, 2), np.float32)
        arr[2, 0] = np.nan
    elif kind == "empty":
        arr = np.zeros((0, 2), np.float32)
    elif kind == "pickle":
        return crafted(MARKER)
    elif isinstance(kind, tuple) and kind[0] == "torch":
        buf = io.BytesIO()
        torch.save(kind[1], buf)
        return buf.getvalue()
    elif isinstance(kind, tuple):
        _, shape, dtype = kind
        arr = np.zeros(shape, dtype)
    else:
        return kind
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def replaced(root: Path, name: str, content):
    """Context: ``name`` under ``root`` replaced by ``content`` (None: removed), restored after."""
    path = root / name
    old = path.read_bytes()
    try:
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content)
        yield path
    finally:
        path.write_bytes(old)


replaced = contextlib.contextmanager(replaced)


def assert_one_line(code: int, err: str, *words: str) -> None:
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in err and "weights_only=False" not in err and "add_safe_globals" not in err, err
    for w in words:
        assert w in err, (w, err)


@pytest.mark.parametrize("stage,name,content,words", FILE_CASES, ids=[f"{s}:{n}:{w}" for s, n, _, w in FILE_CASES])
def test_bad_files_stop_the_stage(project, monkeypatch, capsys, stage, name, content, words):
    root, raw = project
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    MARKER.unlink(missing_ok=True)
    with replaced(root, name, _content(content)):
        before = fingerprint(root)
        code, err = run_stage(root, stage, monkeypatch, capsys)
        assert_one_line(code, err, words, name.split("/")[-1])
        assert fingerprint(root) == before
    assert not MARKER.exists(), "the crafted file ran code"


def _first(weights: dict) -> str:
    return next(iter(weights))


def _reshaped(weights: dict) -> None:
    k = _first(weights)
    weights[k] = weights[k][:1]


def _nan(weights: dict) -> None:
    weights[_first(weights)] = torch.full_like(weights[_first(weights)], float("nan"))


CHECKPOINT_CASES = [
    # (what is done to data/model/checkpoint.pt's body (eval.ema: 0.99), words the message must hold)
    (lambda c: c.pop("state"), "not a genlib checkpoint (no state"),
    (lambda c: c.pop("data_shape"), "no data_shape"),
    (lambda c: c.pop("config"), "no config"),
    (lambda c: c["state"].pop("ema"), "no EMA weights of rate 0.99"),
    (lambda c: c["state"]["ema"].pop("0.99"), "no EMA weights of rate 0.99"),
    (lambda c: c.update(config=["seed", 0]), "its config is list, not the mapping"),
    (lambda c: c.update(state=[]), "its state is list"),
    (lambda c: c.update(data_shape="2"), "data_shape '2' is not a list of positive integers"),
    (lambda c: c.update(data_shape=[3]), "do not fit the network the config builds"),
    (lambda c: _reshaped(c["state"]["ema"]["0.99"]), "the network's is"),
    (lambda c: c["state"]["ema"]["0.99"].pop(_first(c["state"]["ema"]["0.99"])), "missing 1 of the network's"),
    (lambda c: c["state"]["ema"]["0.99"].update(extra=torch.zeros(1)), "1 tensor the network does not have ('extra')"),
    (lambda c: c["state"]["ema"].update({"0.99": [1, 2]}), "not a mapping of names to tensors"),
    (lambda c: _nan(c["state"]["ema"]["0.99"]), "NaN or inf in"),
]


@pytest.mark.parametrize("change,words", CHECKPOINT_CASES, ids=[w for _, w in CHECKPOINT_CASES])
def test_malformed_checkpoints_stop_the_stage(project, monkeypatch, capsys, change, words):
    """A checkpoint that loads but is not what the config builds: one line naming the file, what
    is wrong and the command that remakes it, where torch would print a traceback."""
    root, raw = project
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    file = root / "data/model/checkpoint.pt"
    body = torch.load(file, weights_only=True)
    change(body)
    buf = io.BytesIO()
    torch.save(body, buf)
    with replaced(root, "data/model/checkpoint.pt", buf.getvalue()):
        before = fingerprint(root)
        code, err = run_stage(root, "generate", monkeypatch, capsys)
        assert_one_line(code, err, words, "checkpoint.pt", "dvc repro")
        assert fingerprint(root) == before


def test_duplicate_keys_in_params_stop_the_stage(project, monkeypatch, capsys):
    root, raw = project
    text = yaml.safe_dump(raw).replace("training:\n", "training:\n  epochs: 7\n", 1)
    (root / "params.yaml").write_text(text)
    line = text.splitlines().index("  epochs: 7") + 1
    before = fingerprint(root)
    code, err = run_stage(root, "train", monkeypatch, capsys)
    assert_one_line(code, err, "params.yaml: training.epochs", f"given first at line {line}", "each key once")
    assert fingerprint(root) == before


def test_leftovers_of_killed_writes_go_at_the_next_write(project, monkeypatch, capsys):
    """What a SIGKILL inside an atomic write leaves (``.<name>.XXXXXXXX.tmp``) is removed when
    the stage writes that file again; everything else is kept, and the outputs are as before
    (but info.json, which holds the sampling time)."""
    root, raw = project
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    samples = root / "data/samples"
    left = [samples / ".samples.npy.k1ll3d_x.tmp", samples / ".info.json.abcdefgh.tmp"]
    kept = [samples / ".samples.npy.tmp", samples / ".samples.npy.short.tmp", samples / ".other.npy.abcdefgh.tmp"]
    for p in left + kept:
        p.write_bytes(b"half")

    def compared() -> dict[str, str]:
        return {k: v for k, v in fingerprint(root).items() if not k.endswith((".tmp", "info.json"))}

    before = compared()
    monkeypatch.chdir(root)
    stage_main("generate", STAGES["generate"])
    assert not any(p.exists() for p in left) and all(p.exists() for p in kept)
    assert compared() == before
    for p in kept:
        p.unlink()


def site_checkpoint(path):
    from genlib.io import load_torch

    load_torch(path)


def site_classifier(path):
    from genlib.metrics.classifier import load_classifier

    load_classifier(path)


def site_hvae(path):
    from genlib.methods.hvae import load_model

    load_model(path)


def site_inception(path):
    from genlib.metrics.fidelity import image_metrics

    images = torch.zeros(8, 1, 16, 16, dtype=torch.uint8)
    image_metrics(images, images, torch.Generator().manual_seed(0), extractor="inception",
                  inception_weights=path, kid_subset_size=4)


# Every place genlib loads a torch file, given a crafted pickle; the resume file, which is set
# aside instead of stopping the run, is in tests/test_resume.py.
PICKLE_SITES = [site_checkpoint, site_classifier, site_hvae, site_inception]


def test_the_crafted_file_runs_code_when_loaded_unsafely(tmp_path):
    """The control: loaded as torch-fidelity loads weights (weights_only=False), it writes its marker."""
    marker = tmp_path / "marker"
    (tmp_path / "evil.pt").write_bytes(crafted(marker))
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("site", PICKLE_SITES, ids=[f.__name__ for f in PICKLE_SITES])
def test_no_load_site_runs_code_from_a_file(tmp_path, site):
    from genlib.errors import DataError

    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(crafted(marker))
    with pytest.raises(DataError) as err:
        site(evil)
    message = str(err.value)
    assert message.startswith(f"{evil}: ") and "\n" not in message
    assert "refused: it asks for the Python global exec" in message
    assert "weights_only=False" not in message and "add_safe_globals" not in message
    assert not marker.exists(), "the crafted file ran code"
