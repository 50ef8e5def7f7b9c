"""The cache key is the experiment: each stage's resolved params, and the ``config`` stage.

DVC reruns a stage when one of its dependencies changes. So that a stage's dependencies are
exactly what determines its outputs, the ``config`` stage (the first one, which depends on the
whole of ``params.yaml``) writes ``data/keys/<stage>.json`` for every other stage: the resolved
params that stage reads, defaults filled in, and the digests of the plugin modules it imports.
Each stage depends on its key file, its code (``dvc.yaml``, checked against
:mod:`genlib.pipeline.code`) and the files it reads. A key file whose content did not change
keeps its hash, so DVC skips the stage: an unused method's section, another dataset's keys or
an evaluation setting never rerun ``train``.

What a stage reads and its key agree by construction here and are checked by a test that
records every config field each stage reads (``tests/test_keys.py``). Settings of how a stage
runs that do not change its results (``RUN_ONLY``) key no stage.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from typing import Any

from genlib import io
from genlib.config import PLUGIN_DIR, Config, build_method, init_checkpoint, plain, teacher_config
from genlib.errors import ConfigError
from genlib.params import applies
from genlib.pipeline.code import closure, digest, digests
from genlib.pipeline.paths import Paths
from genlib.registry import DATASETS
from genlib.training.validation_metrics import IMAGE_METRICS

STAGES = ("prepare_data", "train_teacher", "train", "generate", "evaluate", "report")
# How a stage runs, not what it computes: the device (CPU and GPU agree only to rounding, as do
# 1 and N processes, and as do 1 and N threads on the CPU), the threads, progress, the distributed
# backend, resume checkpoints (exact), and whether the training set is read from disk (the same batches).
RUN_ONLY = ("run.device", "run.threads", "run.progress", "run.nproc_per_node", "run.backend", "run.checkpoint_freq",
            "run.whole_set_mb")
# The training fields of the evaluation during training: they shape its curves alone, unless
# early stopping (training.patience > 0) reads them.
WATCH = ("eval_every", "eval_nsamples", "eval_reverse_steps", "eval_metrics")
SAMPLING = ("nsamples", "batch_size", "reverse_steps", "sampler", "eta", "clamp_a", "clamp_eps", "clip_x0", "ema", "checkpoint")
KEPT = ("keep_every", "select")  # training fields of the weights kept besides the last: train's outputs, not its weights


def _fields(params, names: tuple[str, ...]) -> dict:
    return {name: getattr(params, name) for name in names}


def method_section(cfg: Config, sampling: bool) -> dict:
    """The fields of the method's section that apply to this data's kind: those that shape
    training (``sampling=False``) or those only sampling reads (``sampling=True``;
    :func:`genlib.params.spec`)."""
    kind = cfg.data_kind
    return {f.name: getattr(cfg.method_params, f.name) for f in dataclasses.fields(cfg.method_params)
            if applies(f, kind) and bool(f.metadata.get("sampling")) == sampling}


def train_params(cfg: Config) -> dict:
    """What the trained weights and curves depend on: the seed, the method and the fields of its
    section that shape training, the network (a method with its own networks ignores
    ``model:``), the training section, the ``optim`` keys the method uses, the data keys the
    network's input depends on, three ``run`` settings, the teacher's training params when
    the method learns from one, and the SHA-256 of the checkpoint training continues from
    (``training.init_from``): its content keys the run, as a DVC dependency's would."""
    method = build_method(cfg)
    out: dict[str, Any] = {"seed": cfg.seed, "method": cfg.method, cfg.method: method_section(cfg, sampling=False)}
    if not method.own_networks:
        out["model"] = {"net": cfg.model_net, **dataclasses.asdict(cfg.model)}
    data_cls = DATASETS.get(cfg.data.dataset)
    out["data"] = {"dataset": cfg.data.dataset, **_fields(cfg.data, data_cls.model_keys)}
    training = {k: v for k, v in dataclasses.asdict(cfg.training).items() if k not in WATCH + KEPT + ("monitor",)}
    out["training"] = training if cfg.training.patience == 0 else {**training, "monitor": cfg.training.monitor}
    out["optim"] = {f.name: getattr(cfg.optim, f.name) for f in dataclasses.fields(cfg.optim)
                    if f.name not in method.replaces_optim}
    out["run"] = _fields(cfg.run, ("precision", "compile", "log_every"))
    if cfg.training.init_from is not None:
        out["init_sha256"] = digest(init_checkpoint(cfg.training.init_from))
    if cfg.training.patience > 0:  # early stopping: the evaluation's metric decides where training ends
        out = _merged(out, evaluation_params(cfg))  # (plain below)
    teacher = teacher_config(cfg, method)
    if teacher is not None:  # what the method learns from, and the architecture of its copies (ScoreGAN)
        out["teacher"] = train_params(teacher)
    return plain(out)


def evaluation_params(cfg: Config) -> dict:
    """What the evaluation during training computes from: off, or its settings and the weights
    ``eval.ema`` names (the validation set is a file the train stage depends on), and for
    ``fid_clf`` or ``kid_clf`` what makes the classifier besides ``train.npy``,
    ``eval.classifier_epochs`` (``data/prepared/classifier.pt`` is no dependency of ``train``:
    not every set has one)."""
    t = cfg.training
    if t.eval_every == 0:
        return {"training": {"eval_every": 0}}
    if any(m in IMAGE_METRICS for m in t.eval_metrics):  # the classifier prepare_data trains on train.npy
        return {"training": _fields(t, WATCH), "eval": {"ema": cfg.eval.ema, "classifier_epochs": cfg.eval.classifier_epochs}}
    return {"training": _fields(t, WATCH), "eval": {"ema": cfg.eval.ema}}


def curve_params(cfg: Config) -> dict:
    """What the train stage's other outputs (``plots/train``) depend on beyond the weights: the
    sinks that write the curves (``run.loggers``; tensorboard adds its event files there), the
    evaluation during training (its ``val_*`` curves) and the weights kept besides the last
    (``data/model/kept``). They key the train stage, not the trained weights (unless early
    stopping reads the evaluation): the checkpoint's stamp and the later stages' keys
    (``trained``) leave them out, so the checkpoint stays the same bytes and a later stage reruns
    only where a file it reads changed (``data/model`` holds the kept weights)."""
    return plain(_merged(evaluation_params(cfg), {"training": _fields(cfg.training, KEPT), "run": {"loggers": cfg.run.loggers}}))


def _merged(a: dict, b: dict) -> dict:
    """``a`` with ``b``'s sections merged in, field by field."""
    return {**a, **{section: {**a.get(section, {}), **fields} for section, fields in b.items()}}


def train_stage_params(cfg: Config) -> dict:
    """The train stage's key: :func:`train_params` with :func:`curve_params` merged in."""
    return plain(_merged(train_params(cfg), curve_params(cfg)))


def stage_params(cfg: Config, stage: str) -> dict:
    """The resolved params ``stage`` reads (its key, without the plugin digests)."""
    if stage == "prepare_data":
        out: dict[str, Any] = {"seed": cfg.seed, "data": dataclasses.asdict(cfg.data)}
        if cfg.data_kind == "images":  # the evaluation classifier is trained on labelled images
            out["eval"] = {"classifier_epochs": cfg.eval.classifier_epochs}
        return plain(out)
    if stage == "train_teacher":  # the teacher's training params, or the same key for every run without one
        teacher = teacher_config(cfg)
        return {"teacher": None} if teacher is None else train_stage_params(teacher)
    if stage == "train":
        return train_stage_params(cfg)
    # The later stages check that the checkpoint was trained with these params, and use them;
    # beside "trained", a key holds the other fields it reads, by their place in params.yaml.
    trained = train_params(cfg)
    if stage == "generate":
        sampling = plain(method_section(cfg, sampling=True))
        return {"trained": trained, cfg.method: sampling, "eval": plain(_fields(cfg.eval, SAMPLING))}
    if stage == "evaluate":
        names = tuple(f.name for f in dataclasses.fields(cfg.eval) if f.name != "classifier_epochs")
        return {"trained": trained, "eval": plain(_fields(cfg.eval, names))}
    if stage == "report":  # its setup line shows the method's whole section
        whole = plain(dataclasses.asdict(cfg.method_params))
        return {"trained": trained, cfg.method: whole, "eval": {"ema": cfg.eval.ema, "reference": cfg.eval.reference}}
    raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")


def plugin_digests(cfg: Config, root: Path) -> dict[str, str]:
    """``{file: sha256}`` of the plugin modules ``cfg.plugins`` names and the files in
    ``plugin_modules/`` they import. A plugin must live in ``plugin_modules/``: only that folder is a
    dependency of the ``config`` stage, so code elsewhere could change unseen."""
    folder = (root / PLUGIN_DIR).resolve()
    local = {p.stem for p in folder.glob("*.py")} | {p.parent.name for p in folder.glob("*/__init__.py")}
    files: set[Path] = set()
    for name in cfg.plugins:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
        if origin is None or folder not in origin.parents:
            raise ConfigError("plugins", name, f"a module in {PLUGIN_DIR}/ of the project (found at {origin}); its source must key the stages")
        files |= closure(origin, local, folder)
    return {f"{PLUGIN_DIR}/{k}": v for k, v in digests(files, folder).items()}


def stage_key(cfg: Config, stage: str, root: Path) -> dict:
    """The key file's content for ``stage``."""
    return {"stage": stage, "params": stage_params(cfg, stage), "plugins": plugin_digests(cfg, root)}


def write_keys(cfg: Config, paths: Paths = Paths()) -> dict:
    """The ``config`` stage: every stage's key in ``data/keys/<stage>.json``."""
    keys = {stage: stage_key(cfg, stage, paths.root) for stage in STAGES}
    for stage, key in keys.items():
        io.write_json(paths.keys / f"{stage}.json", key)
    print(f"config: keys of {', '.join(STAGES)} written to {paths.keys}", file=sys.stderr)
    return keys


def check_key(cfg: Config, stage: str, paths: Paths) -> None:
    """Refuse to run ``stage`` when its key file (if there is one) says other params: the stage
    was started by hand after a params change, or by ``dvc repro -s`` without the ``config`` stage."""
    file = paths.keys / f"{stage}.json"
    if not file.is_file():
        return  # outside DVC: nothing to check against
    if io.read_json(file) != stage_key(cfg, stage, paths.root):
        raise ConfigError(str(file), "out of date", "the key of params.yaml as it is now: run `dvc repro` (it runs the config stage first)")
