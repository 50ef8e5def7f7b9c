"""Each stage reads only config fields its key holds, and the train key holds only what train reads.

A recording copy of the typed config notes the dotted name (``training.epochs``, ``dlpm.alpha``,
``model.net``) of every field a stage reads. Every stage runs for real on a tiny project, once per
method on 2D points and twice on a tiny MNIST (the U-Net, the VAE's conv nets), and each field it read must be in
its key (:func:`genlib.pipeline.keys.stage_params`) or a run setting (``RUN_ONLY``): a field read
outside the key would leave stale results when it changes. The other way round, every field of
the train key must be read by training, or the key reruns it for nothing.
"""
import contextlib
import dataclasses

import pytest

import genlib.config
import genlib.pipeline.resume
import genlib.pipeline.train
import genlib.pipeline.trained
from genlib.config import Config, OptimParams, load
from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.keys import RUN_ONLY, STAGES, stage_params, train_params
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.report import report_stage
from genlib.pipeline.train import train_stage
from genlib.pipeline.train_teacher import train_teacher_stage

from test_config import ROOT
from test_images_pipeline import MNIST, TINY_IMAGES

STAGE_FUNCTIONS = dict(zip(STAGES, (prepare_data, train_teacher_stage, train_stage, generate_stage, evaluate_stage, report_stage)))
SECTIONS = ("data", "model", "training", "optim", "eval", "run")  # Config fields that are dataclasses
TOP = {"seed": "seed", "method": "method", "plugins": "plugins", "model_net": "model.net"}  # field: read as
# The key file holds the digests of the plugin modules besides the params (keys.stage_key).
KEYED_BESIDES_PARAMS = ("plugins",)

TINY_POINTS = {
    "data.nsamples": 512, "data.ntest": 256, "training.epochs": 1, "training.batch_size": 256,
    "eval.nsamples": 128, "eval.batch_size": 128, "eval.reverse_steps": 4, "eval.n_exact": 100,
    "eval.n_mmd": 100, "eval.n_projections": 10, "eval.n_importance": 4, "ddpm.diffusion_steps": 10,
    "dlpm.diffusion_steps": 10, "run.progress": "never", "run.log_every": 1, "run.device": "cpu",
}
TINY_MNIST = {**TINY_IMAGES, "data.max_train": 128, "data.max_test": 128, "eval.nsamples": 64,
              "eval.n_importance": 2, "run.device": "cpu"}
RUNS = [*(("points", m) for m in ("ddpm", "dlpm", "edm", "tedm", "lim", "vae", "hvae", "gan", "discr_flow", "scoregan")), ("mnist", "ddpm"), ("mnist", "vae")]

# Fields of the train key that a tiny run's training never reads, and why: both must stay.
NOT_READ_BY_TRAIN = {
    "optim.optimizer": "one allowed value (adamw) so far; keyed so that a second one would retrain",
    "training.nan_retries": "read only when a loss turns non-finite (the trainer's restore)",
}
NOT_READ_BY_TRAIN_FOR: dict = {}  # (data kind, method): fields only that run leaves unread


class Reads:
    """The dotted names of the config fields read; none are noted while ``paused``."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self._paused = 0

    def note(self, name: str) -> None:
        if not self._paused:
            self.names.add(name)

    @contextlib.contextmanager
    def paused(self):
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1


def _recording_copy(obj, reads: Reads, names: dict[str, str], **values):
    """``obj`` (a dataclass instance) as an instance of a subclass of its class whose reads of the
    attributes in ``names`` note ``names[attribute]``; ``values`` replace attributes' values."""
    cls = type(obj)

    def __getattribute__(self, name):
        if name in names:
            reads.note(names[name])
        return cls.__getattribute__(self, name)

    copy = object.__new__(type(f"Recording{cls.__name__}", (cls,), {"__getattribute__": __getattribute__}))
    copy.__dict__.update({**obj.__dict__, **values})
    return copy


def _section_copy(obj, prefix: str, reads: Reads):
    return _recording_copy(obj, reads, {f.name: f"{prefix}.{f.name}" for f in dataclasses.fields(obj)})


def recording(cfg: Config) -> tuple[Config, Reads]:
    """A config equal to ``cfg`` that notes every field read, and the reads it notes. Reaching a
    section (``cfg.training``) or a method's params (``cfg.methods``) notes nothing: their fields do."""
    reads = Reads()
    sections = {name: _section_copy(getattr(cfg, name), name, reads) for name in SECTIONS}
    methods = {name: _section_copy(p, name, reads) for name, p in cfg.methods.items()}
    return _recording_copy(cfg, reads, TOP, methods=methods, **sections), reads


def _leaves(tree, prefix: str = "") -> set[str]:
    """The dotted paths of a key's leaves (a list is one leaf)."""
    if not isinstance(tree, dict):
        return {prefix}
    return set().union(*(_leaves(v, f"{prefix}.{k}" if prefix else k) for k, v in tree.items()))


def covered(key: dict) -> set[str]:
    """The fields a stage's key covers, the train params nested under ``trained`` counted as the
    names they have in the train key."""
    return _leaves({k: v for k, v in key.items() if k != "trained"}) | _leaves(key.get("trained", {}))


def _prefixes(name: str) -> list[str]:
    """``a``, ``a.b`` and ``a.b.c`` for ``a.b.c``: the field and the sections that hold it."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def outside_key(reads: set[str], key: dict) -> list[str]:
    """The reads that neither the key (a whole section in it covers its fields) nor RUN_ONLY covers."""
    allowed = covered(key) | set(RUN_ONLY) | set(KEYED_BESIDES_PARAMS)
    # A mapping-valued field (scoregan.teacher) is read whole and held in the key as its leaves.
    return sorted(r for r in reads if allowed.isdisjoint(_prefixes(r)) and not any(a.startswith(f"{r}.") for a in allowed))


def _tiny_cfg(kind: str, method: str) -> Config:
    overrides = TINY_POINTS if kind == "points" else {**TINY_MNIST, "data.root": str(MNIST)}
    return load(ROOT / "params.yaml", {**overrides, "method": method})


@pytest.fixture(scope="module", params=RUNS, ids=[f"{k}-{m}" for k, m in RUNS])
def stage_reads(request, tmp_path_factory):
    """``((kind, method), cfg, {stage: fields it read})`` of one tiny run through every stage. Reads
    made to compute the train key itself (the checkpoint's stamp, the resume file's name, the
    check of a loaded checkpoint) are not counted: they read the key, not what the stage computes."""
    kind, method = request.param
    if kind == "mnist" and not MNIST.is_dir():
        pytest.skip(f"real MNIST not found at {MNIST}")
    cfg, paths = _tiny_cfg(kind, method), Paths(tmp_path_factory.mktemp(f"{kind}-{method}"))
    current: list[Reads] = []

    def uncounted(*args):
        with current[-1].paused():
            return train_params(*args)

    # The teacher's config is this one with the teacher's overrides, so building it reads every
    # field; what it determines is the teacher's key (train_teacher's, and "teacher" in train's).
    teacher_config = genlib.config.teacher_config

    def teacher_uncounted(*args):
        with current[-1].paused():
            return teacher_config(*args)

    stage_key = genlib.pipeline.resume.train_stage_params

    def stage_key_uncounted(*args):  # the resume file's name
        with current[-1].paused():
            return stage_key(*args)

    out = {}
    with pytest.MonkeyPatch.context() as mp:
        for module in (genlib.pipeline.train, genlib.pipeline.trained):
            mp.setattr(module, "train_params", uncounted)
        mp.setattr(genlib.pipeline.resume, "train_stage_params", stage_key_uncounted)
        for module in (genlib.config, genlib.pipeline.trained, genlib.pipeline.keys, genlib.pipeline.train_teacher):
            mp.setattr(module, "teacher_config", teacher_uncounted)
        for stage, run in STAGE_FUNCTIONS.items():
            recorded, reads = recording(cfg)
            current.append(reads)
            run(recorded, paths)
            out[stage] = reads.names
    return (kind, method), cfg, out


def test_the_recording_copy_notes_what_is_read_and_nothing_else():
    cfg = load(ROOT / "params.yaml", {"method": "dlpm"})
    recorded, reads = recording(cfg)
    assert {f.name for f in dataclasses.fields(Config)} == set(TOP) | set(SECTIONS) | {"methods"}
    assert isinstance(recorded.training, type(cfg.training)) and isinstance(recorded, Config)
    _ = recorded.training, recorded.methods, recorded.data  # reaching a section reads none of its fields
    assert reads.names == set()
    values = (recorded.training.epochs, recorded.method_params.alpha, recorded.model_net, recorded.seed, recorded.data_kind)
    assert values == (cfg.training.epochs, cfg.methods["dlpm"].alpha, cfg.model_net, cfg.seed, cfg.data_kind)
    assert reads.names == {"training.epochs", "method", "dlpm.alpha", "model.net", "seed", "data.dataset"}
    with reads.paused():
        _ = recorded.optim.lr
    assert "optim.lr" not in reads.names


def test_asdict_of_a_recording_copy_reads_every_field_and_values_are_unchanged():
    cfg = load(ROOT / "params.yaml", {"method": "hvae"})
    recorded, reads = recording(cfg)
    assert dataclasses.asdict(recorded.optim) == dataclasses.asdict(cfg.optim)
    assert reads.names == {f"optim.{f.name}" for f in dataclasses.fields(OptimParams)}
    assert recorded.to_dict() == cfg.to_dict()
    fields = {leaf if not leaf.startswith("scoregan.teacher.") else "scoregan.teacher" for leaf in _leaves(cfg.to_dict())}
    assert reads.names == fields and "hvae.blocks" in reads.names  # a mapping-valued field is one read
    assert train_params(recording(cfg)[0]) == train_params(cfg)


def test_outside_key_names_the_reads_no_key_field_covers():
    key = {"trained": {"seed": 0, "training": {"epochs": 2}, "ddpm": {}}, "eval": {"ema": 0.99}, "data": [1, 2]}
    reads = {"seed", "training.epochs", "eval.ema", "data.x", "run.progress", "plugins"}
    assert outside_key(reads, key) == []
    assert outside_key(reads | {"training.batch_size", "eval.eta", "ddpm.diffusion_steps", "method"}, key) == [
        "ddpm.diffusion_steps", "eval.eta", "method", "training.batch_size"]


def test_every_field_a_stage_reads_is_in_its_key(stage_reads):
    _, cfg, reads = stage_reads
    stale = [f"stage {stage} reads {', '.join(missing)}, which its key lacks: a change leaves it stale"
             for stage, names in reads.items() if (missing := outside_key(names, stage_params(cfg, stage)))]
    assert not stale, "\n".join(stale)


def test_every_field_of_the_train_key_is_read_by_train(stage_reads):
    run, cfg, reads = stage_reads
    exceptions = {**NOT_READ_BY_TRAIN, **NOT_READ_BY_TRAIN_FOR.get(run, {})}
    # A mapping-valued field read whole counts for its leaves. The "teacher" part is the teacher's
    # training params: train reads them through the checked teacher checkpoint (data/teacher).
    unread = {leaf for leaf in _leaves(stage_params(cfg, "train")) if reads["train"].isdisjoint(_prefixes(leaf))
              and not leaf.startswith("teacher.")}
    needless = sorted(unread - set(exceptions))
    assert not needless, f"stage train never reads {', '.join(needless)} of its key: a change reruns it for nothing"
    stale = sorted(set(exceptions) - unread)
    assert not stale, f"stage train reads {', '.join(stale)} now: drop it from the listed exceptions"


def _train_key(overrides: dict, base: dict) -> dict:
    return stage_params(load(ROOT / "params.yaml", {**base, **overrides}), "train")


@pytest.mark.parametrize("override, changes", [
    ({"lim.alpha": 1.5}, False),
    ({"data.ntest": 100}, False),
    ({"eval.reverse_steps": 50}, False),
    ({"eval.classifier_epochs": 5}, False),
    ({"run.progress": "never"}, False),
    ({"run.checkpoint_freq": 0}, False),
    ({"run.whole_set_mb": 0}, False),
    ({"run.threads": 1}, False),
    ({"ddpm.diffusion_steps": 200}, True),
    ({"training.epochs": 3}, True),
    ({"optim.lr": 1e-3}, True),
    ({"seed": 1}, True),
    ({"run.precision": "bf16"}, True),
    ({"run.loggers": ["dvclive", "tensorboard"]}, True),  # files in plots/train (not the weights: test_loggers.py)
])
def test_the_train_key_changes_with_what_train_reads_only(override, changes):
    base = {"method": "ddpm"}
    assert (_train_key(override, base) != _train_key({}, base)) == changes, override


def test_the_prepare_key_holds_the_test_set_size_of_2d_data():
    base = load(ROOT / "params.yaml", {"method": "ddpm"})
    other = load(ROOT / "params.yaml", {"method": "ddpm", "data.ntest": 100})
    changed = [stage for stage in STAGES if stage_params(base, stage) != stage_params(other, stage)]
    assert changed == ["prepare_data"]


@pytest.mark.parametrize("override, changes", [({"data.flip": True}, True), ({"data.max_test": 64}, False)])
def test_the_train_key_of_images_holds_the_flip_not_the_test_cap(override, changes):
    base = {**TINY_IMAGES, "data.root": "unused", "method": "ddpm"}
    assert (_train_key(override, base) != _train_key({}, base)) == changes, override


@pytest.mark.parametrize("method,override,train_changes,generate_changes", [
    ("gan", {"optim.lr": 0.123}, False, False),          # gan.lr_g and gan.lr_d replace it
    ("gan", {"gan.lr_g": 0.123}, True, True),
    ("gan", {"gan.g_channels": 7}, False, False),        # an image-network width, on 2D points
    ("vae", {"vae.levels": 3}, False, False),            # likewise
    ("vae", {"vae.nunits": 17}, True, True),
    ("vae", {"vae.sample_noise": False}, False, True),   # sampling only
    ("hvae", {"hvae.sample_noise": False}, True, True),  # saved in the hvae.pt export
])
def test_a_methods_own_settings_key_what_reads_them(method, override, train_changes, generate_changes):
    base = _tiny_cfg("points", method)
    cfg = load(ROOT / "params.yaml", {**TINY_POINTS, "method": method, **override})
    assert (train_params(cfg) != train_params(base)) == train_changes
    assert (stage_params(cfg, "generate") != stage_params(base, "generate")) == generate_changes
    shown = next(iter(override)).startswith(f"{method}.")  # the report shows the whole method section
    assert (stage_params(cfg, "report") != stage_params(base, "report")) == shown
