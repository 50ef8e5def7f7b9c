"""Bad input at a stage's door: exit code 2, one line naming key, value and what is allowed,
before any heavy work, and no output touched. Params cases come from test_config.BAD; files
cases follow."""
import contextlib
import hashlib
import io
import json
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
    # a training set smaller than training.batch_size (the door checks data.nsamples; an image set's size is known here first)
    ("train", "data/prepared/train.npy", ("array", (100, 2), np.float32), "training.batch_size = 256 is not allowed; expected at most the 100 training items"),
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


IMAGE_BAD_PARAMS = [
    # (stage, params changed on the tiny MNIST run, 16 GB available, words the message must hold); at the door:
    ("train", {"training.batch_size": 1_000_000, "data.max_train": None}, "training.batch_size = 1000000 is not allowed; expected at most the 60000 training items (mnist has 60000"),
    ("prepare_data", {"data.image_size": 100_000}, "data.image_size = 100000 is not allowed; expected a size that fits in memory: 512 training and 256 test images of 1x100000x100000"),
    ("prepare_data", {"data.max_train": None, "data.max_test": None, "data.image_size": 1024}, "data.image_size = 1024 is not allowed; expected a size that fits in memory: 60000 training and 10000 test images of 1x1024x1024"),
    ("generate", {"eval.nsamples": 10**10}, "eval.nsamples = 10000000000 is not allowed; expected a size that fits in memory: 10000000000 generated images of 1x16x16"),
    # at the start of the stage, from the prepared images' shape (meta.json), before they are loaded:
    ("train", {"data.max_train": 60_000, "training.batch_size": 60_000}, "training.batch_size = 60000 is not allowed; expected a size that fits in memory: the U-Net's activations for 60000 images of 1x16x16 in training"),
    ("generate", {"eval.nsamples": 10**6, "eval.batch_size": 10**6}, "eval.batch_size = 1000000 is not allowed; expected a size that fits in memory: the U-Net's activations for 1000000 images of 1x16x16 in sampling"),
]


@pytest.mark.parametrize("stage,changes,words", IMAGE_BAD_PARAMS, ids=[w.split(" is not")[0] for _, _, w in IMAGE_BAD_PARAMS])
def test_image_sizes_that_do_not_fit_stop_the_stage(image_project, monkeypatch, capsys, stage, changes, words):
    """Sizes whose images or activations do not fit are refused in one line naming the key, before
    the images are read (prepare_data), loaded (train) or the model loaded (generate)."""
    import genlib.sizes

    root, raw = image_project
    params = raw
    for dotted, value in changes.items():
        params = with_change(dotted, value, base=params)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setattr(genlib.sizes, "available_memory", lambda: 16 * 10**9)
    before = fingerprint(root)
    code, err = run_stage(root, stage, monkeypatch, capsys)
    assert_one_line(code, err, "params.yaml: " + words, "16 GB is available (MemAvailable)" if "fits in memory" in words else "")
    assert fingerprint(root) == before


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


def _shifted(weights: dict) -> None:
    """The first tensor's values moved by 1e-3: of the same shape, finite, and wrong."""
    weights[_first(weights)] = weights[_first(weights)] + 1e-3


def _shifted_moment(optimizers: dict) -> None:
    """AdamW's first moment of the first parameter moved: not a weight, checked all the same."""
    moments = optimizers["net"]["state"][0]
    moments["exp_avg"] = moments["exp_avg"] + 1e-3


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
    # the tensor digests written at save (genlib.weights.with_digests)
    (lambda c: _shifted(c["state"]["ema"]["0.99"]), "its tensors do not match the digests written with them: 'state.ema.0.99."),
    (lambda c: _shifted_moment(c["state"]["optimizer"]), "'state.optimizer.net.state.0.exp_avg' (1 of"),
    (lambda c: c.pop("tensor_sha256"), "it holds no digests of its tensors"),
    (lambda c: c["state"].pop("generator"), "tensors written with it are gone: 'state.generator'"),
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


def test_a_tensor_overwritten_inside_the_checkpoint_file_is_one_line(project, monkeypatch, capsys):
    """Bytes of one stored tensor overwritten in the file itself (torch's archive stores them as
    they are, and loads other bytes without a word): the digests name the file and the tensor."""
    root, raw = project
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    file = root / "data/model/checkpoint.pt"
    content = file.read_bytes()
    ema = torch.load(file, weights_only=True)["state"]["ema"]["0.99"]
    name = _first(ema)
    stored = ema[name].numpy().tobytes()
    at = content.find(stored)
    assert at > 0 and content.count(stored) == 1
    altered = content[:at] + (ema[name] + 1e-3).numpy().tobytes() + content[at + len(stored):]
    with replaced(root, "data/model/checkpoint.pt", altered):
        before = fingerprint(root)
        code, err = run_stage(root, "generate", monkeypatch, capsys)
        assert_one_line(code, err, "checkpoint.pt: its tensors do not match the digests written with them",
                        f"'state.ema.0.99.{name}' (1 of", "dvc repro")
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


HVAE_MODEL_FILE = """\
blocks:
  - {name: x, type: input, width: 8, depth: 1}
  - name: z
    type: top
    input: x
    latent: 2
    width: 8
    latent: 4
  - {name: out, type: output, input: z, width: 8, depth: 1}
"""


def test_a_key_given_twice_in_the_hvae_model_file_stops_the_stage(project, monkeypatch, capsys):
    """The model file is read as params.yaml is: a key given twice is refused, naming both lines."""
    root, raw = project
    (root / "hvae_twice.yaml").write_text(HVAE_MODEL_FILE)
    (root / "params.yaml").write_text(yaml.safe_dump(with_change("hvae.model_file", "hvae_twice.yaml", base=raw)))
    before = fingerprint(root)
    try:
        code, err = run_stage(root, "train", monkeypatch, capsys)
        assert_one_line(code, err, "params.yaml: hvae.model_file = 'hvae_twice.yaml'",
                        "each key once (blocks.1.latent at line 8; it is given first at line 6)")
        assert fingerprint(root) == before
    finally:
        (root / "hvae_twice.yaml").unlink()


def _hvae_weight(body: dict) -> None:
    body["weights"][next(iter(body["weights"]))] = torch.zeros(1)


HVAE_CASES = [
    # (what is done to the body of a model file save_model wrote, words the message must hold)
    (lambda b: b.pop("params"), "no params in it"),
    (lambda b: b.pop("weights"), "no weights in it"),
    (lambda b: b["params"].pop("beta"), "its params lack 'beta' (expected blocks, model_file, beta"),
    (lambda b: b["params"].pop("blocks"), "its params lack 'blocks'"),
    (lambda b: b["params"].update(gamma=1.0), "its params hold 'gamma', which an hvae does not have"),
    (lambda b: b.update(params=[1]), "its params are list, not a mapping"),
    (lambda b: b["params"].update(blocks="x"), "its params' blocks are str, not a list"),
    (lambda b: b["params"].update(beta=-1.0), "its params.beta -1.0 is not allowed (expected a positive number)"),
    (lambda b: b["params"]["blocks"].pop(1), "its hvae.blocks"),
    (lambda b: b.update(data_shape="2"), "its data_shape '2' is not a list of positive integers"),
    (lambda b: b.update(data_shape=[3]), "the network's is"),
    (_hvae_weight, "the network's is"),
    (lambda b: b["weights"].popitem(), "missing 1 of the network's"),
    (lambda b: b.update(format="genlib-hvae/0"), "not a genlib hvae model file (format genlib-hvae/1)"),
    (lambda b: b["weights"].update({k: v + 1e-3 for k, v in list(b["weights"].items())[:2]}), "its tensors do not match the digests written with them: 'weights.x."),
    (lambda b: b.pop("tensor_sha256"), "it holds no digests of its tensors"),
]


@pytest.mark.parametrize("change,words", HVAE_CASES, ids=[w for _, w in HVAE_CASES])
def test_malformed_hvae_model_files_are_one_line(tmp_path, change, words):
    """``hvae.pt`` rebuilds its model from the file alone: a file whose params, shape or weights
    are not what save_model writes is one line naming it, where it was a traceback."""
    from genlib.errors import DataError
    from genlib.methods.hvae import HVAE, HVAEParams, load_model, save_model

    method = HVAE(HVAEParams())
    save_model(tmp_path / "hvae.pt", method.networks((2,)), method.params, (2,))
    body = torch.load(tmp_path / "hvae.pt", weights_only=True)
    change(body)
    torch.save(body, tmp_path / "hvae.pt")
    before = (tmp_path / "hvae.pt").read_bytes()
    with pytest.raises(DataError) as err:
        load_model(tmp_path / "hvae.pt")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'hvae.pt'}: ") and "\n" not in message and words in message, message
    assert "dvc repro" in message and (tmp_path / "hvae.pt").read_bytes() == before


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


# Faults of the machine, not of the input: the disk full (ENOSPC) and a Ctrl-C (SIGINT) while a
# stage writes. Each comes as the named output's temporary file is flushed (os.fsync), when the
# outputs written before it are done and waiting to be renamed into place with the rest.
WRITE_FAULTS = [
    # (stage, the output being written, the fault)
    ("prepare_data", "data/prepared/meta.json", "ENOSPC"),
    ("train", "data/model/checkpoint.pt", "ENOSPC"),
    ("train", "metrics/train.json", "ENOSPC"),
    ("generate", "data/samples/samples.npy", "ENOSPC"),
    ("generate", "plots/samples.png", "ENOSPC"),
    ("generate", "data/samples/info.json", "ENOSPC"),
    ("evaluate", "plots/analysis/index.json", "ENOSPC"),
    ("evaluate", "metrics/eval.json", "ENOSPC"),
    ("report", "plots/report/report.html", "ENOSPC"),
    ("prepare_data", "data/prepared/meta.json", "SIGINT"),
    ("train", "metrics/train.json", "SIGINT"),
    ("generate", "plots/samples.png", "SIGINT"),
    ("generate", "data/samples/info.json", "SIGINT"),
    ("evaluate", "metrics/eval.json", "SIGINT"),
    ("report", "plots/report/report.html", "SIGINT"),
]
FAULT_WORDS = {
    "ENOSPC": (2, "the disk is full (no space left on device) while writing it", "df -h"),
    "SIGINT": (130, "stopped by SIGINT (Ctrl-C) before its outputs were written; every output is as it was"),
}


def fault_at_write(monkeypatch, root: Path, name: str, fault: str) -> None:
    """``fault`` when the temporary file of ``root / name`` is flushed: an OSError ENOSPC, or a
    real SIGINT sent to this process (Python raises KeyboardInterrupt at the next bytecode)."""
    import signal

    target = root / name
    real_fsync = os.fsync

    def fsync(fd):
        written = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if written.parent == target.parent.resolve() and written.name.startswith(f".{target.name}."):
            if fault == "ENOSPC":
                raise OSError(28, "No space left on device")
            os.kill(os.getpid(), signal.SIGINT)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def leftovers(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.name.endswith((".tmp", ".partial"))]


@pytest.mark.parametrize("stage,name,fault", WRITE_FAULTS, ids=[f"{s}:{n}:{f}" for s, n, f in WRITE_FAULTS])
def test_a_fault_while_writing_changes_no_output(project, monkeypatch, capsys, stage, name, fault):
    """One line (the file and what to do for a full disk), no traceback, every output as it was
    (none of the outputs written before the fault is renamed into place) and nothing left over."""
    root, raw = project
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    before = fingerprint(root)
    monkeypatch.chdir(root)
    fault_at_write(monkeypatch, root, name, fault)
    code, err = run_stage(root, stage, monkeypatch, capsys)
    expected_code, *words = FAULT_WORDS[fault]
    assert code == expected_code and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for w in words + ([name] if fault == "ENOSPC" else []):
        assert w in err, (w, err)
    assert fingerprint(root) == before
    assert not leftovers(root)


def test_a_sigint_while_the_outputs_are_renamed_is_held_until_all_are(project, monkeypatch, capsys):
    """A SIGINT that comes as the outputs are put in place waits until all of them are: the new
    set is whole (samples.npy is rewritten identically, info.json holds the new time)."""
    import signal

    root, raw = project
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    before = fingerprint(root)
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "samples.npy":
            os.kill(os.getpid(), signal.SIGINT)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    code, err = run_stage(root, "generate", monkeypatch, capsys)
    assert code == 130 and err == "error: stopped by SIGINT (Ctrl-C) while the outputs were put in place; they were all written whole"
    after = fingerprint(root)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"data/samples/info.json"} and not leftovers(root)  # the sampling time; the samples are the same


def _stage_process(root: Path, stage: str) -> "subprocess.Popen":
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(ROOT / "stages" / f"{stage}.py")], cwd=root, env=env,
                            stderr=subprocess.PIPE, text=True)


STOPPED_LINE = "error: stopped by SIGINT (Ctrl-C) before its outputs were written; every output is as it was: run the stage again (dvc repro)"
SIGINT_CASES = [
    # (stage, params changed so that it runs a while, the stderr line after which it gets SIGINT, the one line it ends with)
    ("generate", {"eval.nsamples": 600_000, "eval.batch_size": 300, "run.progress": "auto"}, "generate: ", STOPPED_LINE),  # lines from 10 s on
    ("evaluate", {"eval.n_exact": 600, "eval.n_projections": 20_000, "run.progress": "auto"}, "evaluate: sliced W1", STOPPED_LINE),
    # two processes (torchrun, gloo): the stage passes the SIGINT on and says the stop for all of them
    ("generate", {"eval.nsamples": 600_000, "eval.batch_size": 300, "run.progress": "auto", "run.nproc_per_node": 2}, "generate: ",
     "generation stopped by SIGINT; no samples were written: run `dvc repro` to continue"),
]


@pytest.mark.parametrize("stage,changes,line,said", SIGINT_CASES, ids=[f"{c[0]}-{c[1].get('run.nproc_per_node', 1)}" for c in SIGINT_CASES])
def test_ctrl_c_of_a_stage_process_is_one_line_and_changes_nothing(project, stage, changes, line, said):
    """The real stage script in a process of its own gets SIGINT (os.kill) mid-work, once its log
    says it is working: exit code 130, one line (with several processes, no torchrun warning,
    traceback or worker's line either), outputs as they were and nothing left over."""
    import signal

    root, raw = project
    params = raw
    for dotted, value in changes.items():
        params = with_change(dotted, value, base=params)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    before = fingerprint(root)
    proc = _stage_process(root, stage)
    seen = []
    for text in proc.stderr:
        seen.append(text)
        if text.startswith(line):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    code = proc.wait(timeout=60)
    assert code == 130, (seen, rest)
    assert rest.strip() == said, rest
    assert fingerprint(root) == before and not leftovers(root)


def test_a_real_full_disk_is_one_line(project, tmp_path, monkeypatch, capsys):
    """The finished project copied onto a tmpfs just larger than it, filled to 12 kB free: generate
    runs out of space for real (where this machine lets the test mount one, as root)."""
    import shutil
    import subprocess

    root, raw = project
    mount = tmp_path / "small"
    mount.mkdir()
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 2**20 + 2
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        small = mount / "project"
        shutil.copytree(root, small, ignore=shutil.ignore_patterns(".genlib"))
        (small / "params.yaml").write_text(yaml.safe_dump(raw))
        st = os.statvfs(mount)
        (mount / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 12 * 1024))
        before = fingerprint(small)
        code, err = run_stage(small, "generate", monkeypatch, capsys)
        assert_one_line(code, err, "plots/samples.png: the disk is full (no space left on device) while writing it", "(df -h plots)")
        assert fingerprint(small) == before and not leftovers(small)
    finally:
        monkeypatch.chdir(tmp_path)
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_in_the_config_stage_writes_no_key(project, monkeypatch, capsys):
    """The config stage's keys are written together too: a full disk at train.json's leaves none."""
    import shutil

    from genlib.pipeline.keys import write_keys

    root, raw = project
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    before = fingerprint(root)
    monkeypatch.chdir(root)
    fault_at_write(monkeypatch, root, "data/keys/train.json", "ENOSPC")
    try:
        with pytest.raises(SystemExit) as info:
            stage_main("config", write_keys)
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert_one_line(info.value.code, err, "data/keys/train.json: the disk is full", "df -h data/keys")
        assert fingerprint(root) == before and not leftovers(root)
    finally:
        shutil.rmtree(root / "data" / "keys", ignore_errors=True)  # the empty folder: no key checks the next tests


KILLED_IN_COMMIT = """
import os, signal, sys
from genlib import io
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.runner import stage_main

real, done = io._apply, []

def apply(op):
    if len(done) == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    done.append(op)
    real(op)

io._apply = apply
stage_main("generate", generate_stage)
"""


@pytest.mark.parametrize("kill_at", [1, 2])
def test_a_sigkill_among_the_renames_is_completed_by_the_next_stage(project, tmp_path, monkeypatch, capsys, kill_at):
    """``generate`` (with other params, so every output changes) gets SIGKILL after its first or
    second output is renamed into place; the next stage, ``evaluate``, first completes the
    commit, then reads samples and an info.json that belong together."""
    import shutil
    import subprocess
    import sys

    root, raw = project
    copy = tmp_path / "project"
    shutil.copytree(root, copy)
    (copy / "params.yaml").write_text(yaml.safe_dump(with_change("eval.reverse_steps", 8, base=raw)))
    before = fingerprint(copy)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", KILLED_IN_COMMIT, str(kill_at)], cwd=copy, env=env, capture_output=True, text=True)
    assert run.returncode == -9, run.stderr
    mixed = fingerprint(copy)
    changed = sorted(k for k in before if mixed[k] != before[k])
    assert len(changed) == kill_at and (copy / ".genlib" / "commit.json").is_file()  # some new, some old, for now
    monkeypatch.chdir(copy)
    stage_main("evaluate", STAGES["evaluate"])
    err = capsys.readouterr().err
    assert "genlib: completed the outputs of a stage killed while it put them in place" in err, err
    after = fingerprint(copy)
    for name in ("data/samples/samples.npy", "data/samples/info.json", "plots/samples.png"):
        assert after[name] != before[name], name  # all three the new run's
    assert json.loads((copy / "data/samples/info.json").read_text())["reverse_steps"] == 8
    assert not (copy / ".genlib" / "commit.json").exists() and not leftovers(copy)
