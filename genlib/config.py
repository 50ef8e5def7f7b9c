"""``params.yaml`` loaded into typed, frozen config and checked once, before any heavy work.

Sections: ``seed``, ``method``, ``plugins``, ``data``, ``model``, ``training``, ``optim``, ``eval``,
``run`` and one section per registered method (``ddpm:``, ``dlpm:``) with that method's own
settings. Every problem raises :class:`~genlib.errors.ConfigError` naming the key, the value and
what is allowed. Checking reads the specs of the registries' entries alone (:mod:`genlib.registry`),
so it imports no torch, except to check a method for ``run.nproc_per_node > 1``.
"""
from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from genlib import sizes
from genlib.data.images_spec import NATIVE
from genlib.data.toy2d_spec import ToyParams
from genlib.errors import ConfigError, YAMLSyntaxError
from genlib.methods.spec import SampleOptions
from genlib.params import DuplicateKey, UniqueKeyLoader, build, non_negative, positive, spec, unit_interval, unknown_key
from genlib.registry import CALLBACKS, DATASETS, LOGGERS, METHODS, NETS, load_plugins
from genlib.training.validation_metrics import IMAGE_METRICS, allowed_metrics


def _rates_ok(rates: tuple[float, ...]) -> bool:
    return all(0.0 < r < 1.0 for r in rates)


def _betas_ok(b: tuple[float, ...]) -> bool:
    return len(b) == 2 and all(0.0 <= x < 1.0 for x in b)


EPOCHS_ALLOWED = "a positive integer, or 0 with training.init_from (its weights, untrained)"


@dataclass(frozen=True)
class TrainingParams:
    epochs: int = spec(20, non_negative, EPOCHS_ALLOWED)  # 0 only with init_from: its weights as they are
    batch_size: int = spec(1024, positive, "a positive integer")
    grad_clip: float | None = spec(None, positive, "a positive number or null")  # max grad norm
    ema_rates: tuple[float, ...] = spec((0.99,), _rates_ok, "a list of numbers in (0, 1)")
    nan_retries: int = spec(3, non_negative, "a non-negative integer")  # restores before giving up
    # Hooks into the loop, by registry name (genlib.training.callbacks; plugins register their own).
    # They key training: a callback may stop it.
    callbacks: tuple[str, ...] = ()
    # The evaluation during training (genlib.training.evaluation), on the data.nval held-out items:
    # every eval_every steps (0 = off; a multiple of run.log_every) and at the last step, of the
    # eval.ema weights, eval_nsamples samples in eval_reverse_steps steps of the default sampler.
    eval_every: int = spec(0, non_negative, "a non-negative integer (0 = off)")
    eval_nsamples: int = spec(2000, lambda n: n >= 2, "an integer >= 2")
    eval_reverse_steps: int = spec(20, positive, "a positive integer")
    eval_metrics: tuple[str, ...] = ("w1_sliced",)  # w1_sliced, mmd, tail_error, mode_ratio_worst (2D points); fid_clf, kid_clf (images); elbo (vae, hvae)
    # Early stopping: stop after `patience` evaluations in a row without a better `monitor`
    # (one of eval_metrics); 0 = off.
    patience: int = spec(0, non_negative, "a non-negative integer (0 = off)")
    monitor: str = "w1_sliced"
    # Weights kept besides the last (data/model/kept/, for eval.checkpoint): those of every
    # keep_every steps (0 = none; a multiple of run.log_every), and with select (one of
    # eval_metrics, or null) those of the evaluation that scored best on it.
    keep_every: int = spec(0, non_negative, "a non-negative integer (0 = none)")
    select: str | None = None
    # Continuing a run (README, "Continuing a run"): null, or a checkpoint in init/ (a copy of an
    # experiment's data/model folder, or of its checkpoint.pt) whose weights, EMAs, optimizer
    # state, step and generators training starts from, to train `epochs` more epochs; or weights
    # `genlib migrate` wrote there, fine-tuned with a fresh optimizer from step 0.
    init_from: str | None = None


@dataclass(frozen=True)
class OptimParams:
    optimizer: Literal["adamw"] = "adamw"
    lr: float = spec(5e-3, positive, "a positive number")
    weight_decay: float = spec(0.0, non_negative, "a non-negative number")
    betas: tuple[float, ...] = spec((0.9, 0.999), _betas_ok, "two numbers in [0, 1)")
    schedule: Literal["none", "step", "cosine"] = "cosine"
    warmup: int = spec(0, non_negative, "a non-negative integer")  # linear warmup steps (cosine)
    step_size: int = spec(1000, positive, "a positive integer")  # steps between decays (step)
    gamma: float = spec(0.5, positive, "a positive number")  # decay factor (step)
    min_lr_ratio: float = spec(0.0, unit_interval, "a number in [0, 1)")  # cosine floor / lr


@dataclass(frozen=True)
class EvalParams:
    nsamples: int = spec(15000, positive, "a positive integer")  # generated points
    batch_size: int = spec(15000, positive, "a positive integer")  # generated per network batch
    reverse_steps: int = spec(100, positive, "a positive integer")
    sampler: str = "default"  # method-specific: ddpm|ddim, dlpm|dlim; 'default' = the first
    eta: float = 0.0  # stochasticity of the ddim / dlim samplers, in [0, 1]
    clamp_a: float | None = spec(None, positive, "a positive number or null")
    clamp_eps: float | None = spec(None, positive, "a positive number or null")
    # DLPM and LIM samplers: clip the x0 each step predicts to [-clip_x0, clip_x0] and use the noise that
    # x0 implies (Ho et al. 2020's clip_denoised); 1 for images in [-1, 1], null = off.
    clip_x0: float | None = spec(None, positive, "a positive number or null")
    ema: float | None = 0.99  # sample from this EMA rate (one of training.ema_rates); null = raw
    # The weights generate samples from: the last step's, the best by training.select, or those
    # kept at a step (training.keep_every).
    checkpoint: Literal["last", "best"] | int = spec("last", lambda c: c in ("last", "best") or c > 0, "last, best or a positive step")
    n_exact: int = spec(4000, positive, "a positive integer")  # subsample for exact W1
    n_mmd: int = spec(4000, positive, "a positive integer")
    n_projections: int = spec(500, positive, "a positive integer")  # sliced W1
    k: int = spec(5, positive, "a positive integer")  # neighbours for precision/recall/density
    # Image data only: features for FID/KID/precision/recall. 'classifier' is the small classifier
    # prepare_data trains (metrics named *_clf); 'inception' the standard Inception-v3 features,
    # comparable with papers, whose weights file is read from inception_weights (null: download).
    feature_extractor: Literal["classifier", "inception"] = "classifier"
    inception_weights: str | None = None
    kid_subset_size: int | None = spec(None, positive, "a positive integer or null (min(1000, n / 2))")
    # The images (or points) the samples are compared with: the held-out test set, or the
    # training set, the distribution the generator learnt (a long-tailed training set's test set
    # is balanced, as CIFAR-10-LT's). The class balance always compares with the training shares.
    reference: Literal["test", "train"] = "test"
    # Likelihood families (vae, hvae) only: K of the importance-weighted NLL estimate on the test
    # set (Burda et al. 2016), and test points per batch of it.
    n_importance: int = spec(64, positive, "a positive integer")
    likelihood_batch: int = spec(1000, positive, "a positive integer")
    # The method's own analyses evaluate runs (hvae: decodability, traversals, receptive_fields,
    # most_exciting; README, "Hierarchical VAE"); null: all of them. An evaluation setting.
    analysis: tuple[str, ...] | None = spec(None, lambda a: len(set(a)) == len(a), "null or a list of analyses, each once")
    # Labelled image sets only: epochs of the small classifier behind the *_clf metrics and the
    # class balance, trained by prepare_data; 0 = none. An evaluation setting: it never retrains.
    classifier_epochs: int = spec(2, non_negative, "a non-negative integer")

    def sample_options(self) -> SampleOptions:
        return SampleOptions(self.sampler, self.eta, self.clamp_a, self.clamp_eps, self.clip_x0)


def _threads_ok(n: int | str) -> bool:
    return n == "auto" or n > 0


def _device_ok(name: str) -> bool:
    return name in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", name) is not None


@dataclass(frozen=True)
class RunParams:
    # auto picks CUDA, then MPS, then the CPU; whether the device exists is checked by the stage
    device: str = spec("auto", _device_ok, "auto, cpu, cuda, cuda:N or mps")
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast of the network in training and sampling
    compile: bool = False  # torch.compile the network (checkpoints keep the plain module's weights)
    # Processes of data-parallel training (torchrun, DDP); training.batch_size stays the whole
    # batch, split evenly between them, so the result does not depend on this number.
    nproc_per_node: int = spec(1, positive, "a positive integer")
    backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: nccl on CUDA, gloo otherwise
    # Compute threads (intra- and inter-op) of each stage; auto shares this process's processors
    # among the genlib pipelines running on them (genlib.pipeline.threads). It changes the last
    # bits of the results on the CPU, yet keys no stage (README, run).
    threads: Literal["auto"] | int = spec("auto", _threads_ok, "auto or a positive integer")
    # auto: bars on a terminal, plain lines every few percent elsewhere (logs); always: bars;
    # never: neither, nor the summary and threads lines (genlib.progress).
    progress: Literal["auto", "always", "never"] = "auto"
    log_every: int = spec(20, positive, "a positive integer")  # steps between logged points
    # Steps between resume checkpoints (0 = none). They live in .genlib/resume/, outside DVC's
    # outputs, so a killed train stage continues from the last one on the next dvc repro.
    checkpoint_freq: int = spec(200, non_negative, "a non-negative integer")
    # Prepared image sets up to this many MiB are placed on the training device whole; larger ones
    # are read from disk a batch at a time by background threads (genlib.training.batches), so a
    # set need not fit in memory. The same batches either way: it keys no stage (bench/RESULTS.md).
    whole_set_mb: int = spec(1024, non_negative, "a non-negative integer (MiB; 0: always read from disk)")
    # The sinks of the training curves, by registry name (genlib.training.logger; a plugin may add
    # its own). dvclive writes plots/train/plots/metrics, the curves dvc.yaml declares, so it is
    # always one of them; tensorboard adds event files in plots/train/tensorboard.
    loggers: tuple[str, ...] = ("dvclive",)


@dataclass(frozen=True)
class Config:
    seed: int
    method: str
    plugins: tuple[str, ...]
    data: Any
    model_net: str
    model: Any
    training: TrainingParams
    optim: OptimParams
    eval: EvalParams
    run: RunParams
    methods: dict[str, Any] = field(default_factory=dict)

    @property
    def data_kind(self) -> str:
        """``points`` (2D sets) or ``images``: the ``kind`` of the chosen dataset."""
        return data_kind(self.data.dataset)

    @property
    def method_params(self) -> Any:
        return self.methods[self.method]

    def to_dict(self) -> dict[str, Any]:
        """The resolved config, every default filled in (written next to results)."""
        out = {
            "seed": self.seed,
            "method": self.method,
            "plugins": list(self.plugins),
            "data": dataclasses.asdict(self.data),
            "model": {"net": self.model_net, **dataclasses.asdict(self.model)},
            "training": dataclasses.asdict(self.training),
            "optim": dataclasses.asdict(self.optim),
            "eval": dataclasses.asdict(self.eval),
            "run": dataclasses.asdict(self.run),
        }
        out.update({name: dataclasses.asdict(p) for name, p in self.methods.items()})
        return plain(out)


def plain(obj: Any) -> Any:
    """Tuples as lists, recursively: the JSON form, so that configs compare as written."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


PLUGIN_DIR = "plugin_modules"  # a project's own methods, networks and datasets (README, "Plugins")
# The checkpoints runs continue from (training.init_from): a dependency of the config stage, which
# puts the named checkpoint's digest in train's key, so its content keys the run.
INIT_DIR = "init"
INIT_ALLOWED = f"null, or a checkpoint.pt or a folder holding one (a copy of an experiment's data/model) in {INIT_DIR}/, relative to the project root"
# dvc exp run --queue and --temp copy into their workspace only what git tracks or stages.
UNTRACKED = (" (a queued or --temp experiment sees only what git tracks: dvc add the checkpoint's folder"
             " and git add its .dvc file, or git add the folder)")


def init_checkpoint(init_from: str) -> Path:
    """The checkpoint file ``training.init_from`` names: the file itself, or ``checkpoint.pt`` in the folder."""
    path = Path(init_from)
    return path / "checkpoint.pt" if path.is_dir() else path


def _check_init(init_from: str | None) -> None:
    """``training.init_from``: a checkpoint that is there, inside ``init/`` (whose content the config stage sees)."""
    if init_from is None:
        return
    parts = Path(init_from).parts
    if Path(init_from).is_absolute() or len(parts) < 2 or parts[0] != INIT_DIR or ".." in parts:
        raise ConfigError("training.init_from", init_from, INIT_ALLOWED)
    if not init_checkpoint(init_from).is_file():
        raise ConfigError("training.init_from", init_from, f"{INIT_ALLOWED}; {init_checkpoint(init_from)} is not there{UNTRACKED}")
SECTIONS = ("seed", "method", "plugins", "data", "model", "training", "optim", "eval", "run")


def _name(value: Any, key: str, registry) -> str:
    """A registry key typed by the user, or an error listing the known ones."""
    if not isinstance(value, str) or value not in registry:
        raise ConfigError(key, value, f"one of {', '.join(registry.names())}")
    return value


def from_dict(raw: Any) -> Config:
    """Check ``raw`` (the parsed ``params.yaml``) and build the typed config."""
    if not isinstance(raw, dict):
        raise ConfigError("params", raw, "a mapping with sections " + ", ".join(SECTIONS))
    plugins = raw.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError("plugins", plugins, "a list of module names")
    load_plugins(plugins)
    for key in raw:
        if key not in SECTIONS and key not in METHODS:
            raise unknown_key("", key, sorted(set(SECTIONS) | set(METHODS.names())))
    for key in ("seed", "method"):
        if key not in raw:
            raise ConfigError(key, None, "a value (the section is missing)")
    seed = raw["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("seed", seed, "a non-negative integer")
    method = _name(raw["method"], "method", METHODS)
    for section in ("data", "model", "training", "optim", "eval", "run"):
        if section in raw and not isinstance(raw[section], dict):
            raise ConfigError(section, raw[section], "a mapping of keys to values")
    data_raw = raw.get("data") or {}
    if "classifier_epochs" in data_raw:
        raise ConfigError("data.classifier_epochs", data_raw["classifier_epochs"], "no key here: it is eval.classifier_epochs now (an evaluation setting)")
    dataset_spec = DATASETS.spec(_name(data_raw.get("dataset", "sas_grid"), "data.dataset", DATASETS))
    data_params = _params_class(dataset_spec)
    data = build(data_params, _own_keys(data_raw, data_params, DATASETS), "data.")
    dataset_spec(data)  # building the spec checks the dataset's own constraints
    model_raw = raw.get("model") or {}
    net_name = _name(model_raw.get("net", "mlp"), "model.net", NETS)
    net_params = NETS.spec(net_name).Params
    model = build(net_params, _own_keys(model_raw, net_params, NETS), "model.", drop=("net",))
    _check_net_fits_data(net_name, data_kind(data.dataset))
    methods = {
        name: build(METHODS.spec(name).Params, raw.get(name), f"{name}.")
        for name in METHODS.names()
    }
    cfg = Config(
        seed=seed,
        method=method,
        plugins=tuple(plugins),
        data=data,
        model_net=net_name,
        model=model,
        training=build(TrainingParams, raw.get("training"), "training."),
        optim=build(OptimParams, raw.get("optim"), "optim."),
        eval=build(EvalParams, raw.get("eval"), "eval."),
        run=build(RunParams, raw.get("run"), "run."),
        methods=methods,
    )
    _cross_checks(cfg)
    return cfg


def data_kind(dataset: str) -> str:
    return getattr(DATASETS.spec(dataset), "kind", "points")


def _params_class(entry) -> type:
    return getattr(entry, "Params", ToyParams)


def _own_keys(section: dict, params_cls: type, registry) -> dict:
    """``section`` without the keys that belong only to other entries of ``registry``.

    The ``data:`` and ``model:`` sections serve several datasets and networks, so switching with
    ``dvc exp run -S data.dataset=mnist`` leaves the 2D sets' keys in place: they are ignored for an
    image set (and the other way round). A key no entry knows is still an error.
    """
    own = {f.name for f in dataclasses.fields(params_cls)}
    others = {f.name for name in registry.names() for f in dataclasses.fields(_params_class(registry.spec(name)))}
    return {k: v for k, v in section.items() if k in own or k not in others}


def _check_net_fits_data(net_name: str, kind: str) -> None:
    kinds = getattr(NETS.spec(net_name), "data_kinds", ("points", "images"))
    if kind not in kinds:
        fitting = [n for n in NETS.names() if kind in getattr(NETS.spec(n), "data_kinds", ("points", "images"))]
        raise ConfigError("model.net", net_name, f"a network for {kind} data: one of {', '.join(fitting)}")


def _check_loggers(names: tuple[str, ...]) -> None:
    """``run.loggers``: known sink names, each once, dvclive among them (its curves are the train
    stage's declared plots)."""
    if any(n not in LOGGERS for n in names) or len(set(names)) < len(names) or "dvclive" not in names:
        raise ConfigError("run.loggers", list(names), f"a list of logger sinks, each once and dvclive among them; known: {', '.join(LOGGERS.names())}")


def _check_callbacks(names: tuple[str, ...]) -> None:
    if any(n not in CALLBACKS for n in names) or len(set(names)) < len(names):
        known = ", ".join(CALLBACKS.names()) or "none registered (a plugin registers its own)"
        raise ConfigError("training.callbacks", list(names), f"a list of registered callbacks, each once; known: {known}")


def _check_kept(cfg: Config) -> None:
    """``training.keep_every``, ``training.select`` and the ``eval.checkpoint`` that reads them."""
    t, chosen = cfg.training, cfg.eval.checkpoint
    if t.keep_every % cfg.run.log_every:
        raise ConfigError("training.keep_every", t.keep_every, f"0 (none) or a multiple of run.log_every = {cfg.run.log_every} (weights are kept at logged steps)")
    if t.select is not None and (t.eval_every == 0 or t.select not in t.eval_metrics):
        raise ConfigError("training.select", t.select, f"null, or one of training.eval_metrics ({', '.join(t.eval_metrics)}) with training.eval_every > 0")
    if chosen == "best" and t.select is None:
        raise ConfigError("eval.checkpoint", chosen, "last, or a kept step: best needs training.select (the metric that picks it)")
    if isinstance(chosen, int) and (t.keep_every == 0 or chosen % t.keep_every):
        kept = f"a multiple of training.keep_every = {t.keep_every}" if t.keep_every else "none: training.keep_every = 0"
        raise ConfigError("eval.checkpoint", chosen, f"last, best or a kept step ({kept})")


def _check_evaluation(cfg: Config) -> None:
    """The evaluation during training and early stopping: settings that can run (README, training)."""
    t = cfg.training
    _check_kept(cfg)
    if t.patience > 0 and t.eval_every == 0:
        raise ConfigError("training.patience", t.patience, "0 while training.eval_every = 0 (it stops on the evaluation's metric)")
    if t.eval_every == 0:
        return
    if t.eval_every % cfg.run.log_every:
        raise ConfigError("training.eval_every", t.eval_every, f"0 (off) or a multiple of run.log_every = {cfg.run.log_every} (it evaluates at logged steps)")
    if cfg.data.nval == 0:
        raise ConfigError("data.nval", 0, "a positive number of held-out training items when training.eval_every > 0")
    method = METHODS.spec(cfg.method)
    allowed = allowed_metrics(cfg.data_kind, method.likelihood_family, getattr(DATASETS.spec(cfg.data.dataset), "has_modes", False),
                              classifier=cfg.eval.classifier_epochs > 0)
    if not t.eval_metrics or any(m not in allowed for m in t.eval_metrics) or len(set(t.eval_metrics)) < len(t.eval_metrics):
        known = ", ".join(allowed) or "none yet"
        raise ConfigError("training.eval_metrics", list(t.eval_metrics), f"a non-empty list, each once, of the metrics for {cfg.method} on {cfg.data_kind}: {known}")
    if any(m in IMAGE_METRICS for m in t.eval_metrics) and min(t.eval_nsamples, cfg.data.nval) < sizes.IMAGE_PRC_K + 1:
        key, value = ("training.eval_nsamples", t.eval_nsamples) if t.eval_nsamples <= cfg.data.nval else ("data.nval", cfg.data.nval)
        raise ConfigError(key, value, f"at least {sizes.IMAGE_PRC_K + 1} images for fid_clf and kid_clf (torch-fidelity's precision takes k = {sizes.IMAGE_PRC_K} neighbours)")
    if t.patience > 0 and t.monitor not in t.eval_metrics:
        raise ConfigError("training.monitor", t.monitor, f"one of training.eval_metrics ({', '.join(t.eval_metrics)})")
    if any(m != "elbo" for m in t.eval_metrics):
        try:
            method(cfg.method_params).check_sampling(SampleOptions(), t.eval_reverse_steps)
        except ConfigError as err:
            if err.key != "eval.reverse_steps":
                raise
            raise ConfigError("training.eval_reverse_steps", err.value, err.allowed) from None


def _cross_checks(cfg: Config) -> None:
    _check_loggers(cfg.run.loggers)
    _check_callbacks(cfg.training.callbacks)
    _check_init(cfg.training.init_from)
    if cfg.training.epochs == 0 and cfg.training.init_from is None:
        raise ConfigError("training.epochs", 0, EPOCHS_ALLOWED)
    _check_evaluation(cfg)
    images = cfg.data_kind == "images"
    if images and cfg.eval.feature_extractor == "classifier" and cfg.eval.classifier_epochs == 0:
        raise ConfigError("eval.feature_extractor", "classifier", "'inception', or eval.classifier_epochs > 0")
    if images and cfg.eval.inception_weights and not Path(cfg.eval.inception_weights).is_file():
        from genlib.metrics.inception_weights import INCEPTION_WEIGHTS_ALLOWED

        raise ConfigError("eval.inception_weights", cfg.eval.inception_weights, INCEPTION_WEIGHTS_ALLOWED)
    if cfg.eval.ema is not None and cfg.eval.ema not in cfg.training.ema_rates:
        allowed = ", ".join(str(r) for r in cfg.training.ema_rates) or "none configured"
        raise ConfigError("eval.ema", cfg.eval.ema, f"null (raw weights) or one of training.ema_rates ({allowed})")
    _size_checks(cfg)
    method = METHODS.spec(cfg.method)(cfg.method_params)
    method.check_sampling(cfg.eval.sample_options(), cfg.eval.reverse_steps)
    method.check_analysis(cfg.eval.analysis)
    method.check_config(cfg)
    teacher = teacher_config(cfg, method)  # the teacher's params, checked as this file's are
    if teacher is not None:
        method.check_teacher(METHODS.spec(teacher.method)(teacher.method_params))
    n = cfg.run.nproc_per_node
    if n > 1:  # whether the loss splits into per-process shares: the method itself says
        build_method(cfg).check_distributed(n)
        if cfg.training.batch_size % n:
            raise ConfigError("training.batch_size", cfg.training.batch_size, f"a multiple of run.nproc_per_node = {n} (each process takes batch_size / {n})")


def _size_checks(cfg: Config) -> None:
    """What the sizes imply (:mod:`genlib.sizes`): the batch within the training set, a sane number
    of steps, metrics that can be numbers, and data that fit in memory. On images the training
    set's size is known here from ``data.max_train`` or the built-in sets' sizes
    (``genlib.data.images_spec.NATIVE``); the train stage checks it again."""
    t, e = cfg.training, cfg.eval
    if e.nsamples < 2:
        raise ConfigError("eval.nsamples", e.nsamples, "an integer >= 2 (with fewer samples every metric is NaN)")
    if cfg.data_kind == "points":
        d, free = cfg.data, sizes.available_memory()
        key, value = ("data.nsamples", d.nsamples) if d.nsamples >= d.ntest else ("data.ntest", d.ntest)
        sizes.check_fits(key, value, (d.nsamples + d.ntest) * 2 * sizes.FLOAT32, f"{d.nsamples} training and {d.ntest} test points (float32)", free)
        sizes.check_fits("eval.nsamples", e.nsamples, e.nsamples * 2 * sizes.FLOAT32, f"{e.nsamples} generated points (float32)", free)
        sizes.check_point_metrics(e.nsamples, d.ntest, e.k, e.n_mmd)
        nref = d.nsamples if e.reference == "train" else d.ntest
        m, w1_bytes = sizes.exact_w1_bytes(e.n_exact, e.nsamples, nref)
        sizes.check_fits("eval.n_exact", e.n_exact, w1_bytes, f"the exact W1 of {m}-point sets ({sizes.EMD_MATRICES} float64 {m} x {m} matrices)", free)
        if d.nval >= d.nsamples:
            raise ConfigError("data.nval", d.nval, f"fewer than data.nsamples = {d.nsamples} (they are held out of the training points)")
        n = d.nsamples - d.nval
        where = f"data.nsamples = {n}" if d.nval == 0 else f"data.nsamples - data.nval = {n}"
    else:
        d = cfg.data
        sizes.check_image_metrics(e.nsamples, d.max_test, e.kid_subset_size)
        sizes.check_image_memory(d, NATIVE, e.nsamples, sizes.available_memory())
        full = sizes.image_set(d, NATIVE)[1]
        if full is not None and d.nval >= full:
            raise ConfigError("data.nval", d.nval, f"fewer than the {full} training images (they are held out of them)")
        n = None if full is None else full - d.nval
        named = f"data.max_train = {d.max_train}" if full == d.max_train else f"{d.dataset} has {full} training images"
        where = named if d.nval == 0 else f"{named}, less data.nval = {d.nval}: {n}"
    if n is not None:
        sizes.check_batch(t.batch_size, n, where)
        total = sizes.check_steps(t.epochs, n, t.batch_size)
        if isinstance(e.checkpoint, int) and e.checkpoint > total and t.init_from is None:  # a continued run's steps follow the init's
            raise ConfigError("eval.checkpoint", e.checkpoint, f"last, best or a kept step of the {total} steps training takes")


def build_method(cfg: Config):
    """The method of ``cfg``; given its teacher's method and network builder when it has one."""
    method = METHODS.get(cfg.method)(cfg.method_params)
    teacher = teacher_config(cfg, method)
    if teacher is not None:
        net_cls, net_params = NETS.get(teacher.model_net), teacher.model
        method.set_teacher(build_method(teacher), lambda shape: net_cls(shape, net_params))
    return method


def teacher_config(cfg: Config, method=None) -> Config | None:
    """The config of the model ``cfg.method`` learns from: ``cfg`` with the method's
    ``teacher_overrides`` applied (checked as ``params.yaml`` is, each error named under
    ``<method>.teacher.``, where the overrides are written), or ``None`` when the method has no teacher."""
    method = method if method is not None else METHODS.spec(cfg.method)(cfg.method_params)
    overrides = method.teacher_overrides()
    if overrides is None:
        return None
    raw = cfg.to_dict()
    raw["training"]["init_from"] = None  # training.init_from continues the student; the teacher is trained afresh
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{cfg.method}.teacher.{dotted}", value, "a key inside a section")
        node[last] = value
    if raw["training"]["epochs"] == 0:  # the student's 0 (init_from's weights as they are): the teacher is trained afresh
        raise ConfigError(f"{cfg.method}.teacher.training.epochs", 0, "a positive integer of its own (training.epochs 0 "
                          f"keeps init_from's weights as they are; the teacher is trained afresh), e.g. {cfg.method}.teacher.training.epochs: 20")
    try:
        return from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"{cfg.method}.teacher.{err.key}", err.value, err.allowed) from None


def load(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Config:
    """Read ``params.yaml`` safely and check it; ``overrides`` maps dotted keys to values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("params file", str(path), "an existing YAML file")
    plugin_dir = str((path.parent / PLUGIN_DIR).resolve())
    if plugin_dir not in sys.path:  # the project's plugin_modules/ folder: `plugins: [my_method]` imports from it
        sys.path.append(plugin_dir)
    try:
        raw = yaml.load(path.read_bytes().decode("utf-8"), Loader=UniqueKeyLoader)
    except UnicodeDecodeError as err:
        raise ConfigError("params file", str(path), f"UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})") from None
    except DuplicateKey as err:
        raise ConfigError(err.key, err.value, f"each key once ({err.where})", str(path)) from None
    except yaml.YAMLError as err:
        raise YAMLSyntaxError(str(path), err) from None
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return from_dict(raw)
    except YAMLSyntaxError:  # a file the params name (hvae.model_file), which names itself
        raise
    except ConfigError as err:
        raise err.in_file(str(path)) from None
