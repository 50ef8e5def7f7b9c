"""The ``evaluate`` stage: score the samples against the reference set; ``metrics/eval.json``.

The reference is the held-out test set or the training set (``eval.reference``).

The sample metrics depend on the kind of data (``SCORES``: distances, tails and modes on points;
FID, KID, precision, recall and the class balance on images). A method may also score the test
set itself (``extra_metrics``: the likelihood families' ELBO, NLL, bits per dimension), what its
latents hold (``representation_metrics``: the hierarchical VAE's decodability per layer) and draw
figures of its own (``analysis``, in ``plots/analysis/``); each gets the trained networks, loaded
once, and only for a method that declares it uses them (``Method.evaluates_networks``).
"""
from __future__ import annotations

import sys
import time
from typing import Callable

import numpy as np
import torch

from genlib import io
from genlib.config import Config, build_method
from genlib.data.splits import Splits
from genlib.device import resolve_device
from genlib.errors import ConfigError
from genlib.pipeline.kinds import kind_of
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepared import read_meta
from genlib.pipeline.trained import load_trained
from genlib.progress import display, say, want_progress
from genlib.seeding import generator


def evaluate_stage(cfg: Config, paths: Paths = Paths()) -> dict:
    """Write ``metrics/eval.json`` and the method's analysis figures."""
    start, group = time.perf_counter(), _announcer(cfg.run.progress)
    info = io.read_record(paths.samples / "info.json", ("sampling_time_s", "network_evals"))
    method = build_method(cfg)
    nets = load_trained(cfg, paths)[0] if method.evaluates_networks else None
    meta = read_meta(paths.prepared)
    kind = kind_of(meta)
    samples, test = kind.load_samples(paths.samples / "samples.npy", meta), kind.load_test(paths, meta)
    reference = kind.load_train(paths, meta, cfg.run.whole_set_mb) if cfg.eval.reference == "train" else test
    metrics = SCORES[kind.name](cfg, paths, meta, samples, reference, group)
    metrics["n_reference"] = reference.shape[0]
    metrics["n_nonfinite"] = info.get("n_nonfinite", metrics.get("n_nonfinite", 0))
    if nets is not None:
        device = resolve_device(cfg.run.device)
        x = kind.likelihood_input(test, cfg.seed, device)
        group(f"the {cfg.method} model's own metrics on the test set")
        metrics.update(method.extra_metrics(nets.to(device), x, generator(cfg.seed, "eval/extra", device), cfg.eval))
        splits = Splits(kind.load_train(paths, meta, cfg.run.whole_set_mb), test, _labels(paths, "train"), _labels(paths, "test"))
        metrics.update(method.representation_metrics(nets, splits, generator(cfg.seed, "eval/representation", device), cfg.eval))
    metrics["sampling_time_s"] = info["sampling_time_s"]
    metrics["network_evals"] = info["network_evals"]
    metrics = {k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in metrics.items()}
    if nets is not None:
        group("analysis figures")
    write_analysis(cfg, paths, method, nets, metrics, meta, test)
    io.write_json(paths.metrics, metrics)
    say(cfg.run.progress, f"evaluate: {len(metrics)} metrics in {time.perf_counter() - start:.1f} s, written to {paths.metrics}")
    return metrics


def _labels(paths: Paths, split: str) -> torch.Tensor | None:
    """The prepared labels of ``split`` (``train`` or ``test``), or None for a set without them."""
    file = paths.prepared / f"{split}_labels.npy"
    return torch.from_numpy(io.load_array(file)).long() if file.is_file() else None


def _announcer(setting: str) -> Callable[[str], None]:
    """Off a terminal (``run.progress: auto``), a line naming each group of metrics as it starts."""
    if display(setting) != "lines":
        return lambda name: None
    return lambda name: print(f"evaluate: {name}", file=sys.stderr, flush=True)


def score_points(cfg: Config, paths: Paths, meta: dict, samples: torch.Tensor, reference: torch.Tensor,
                 group: Callable[[str], None] = lambda name: None) -> dict:
    """Distances, precision and recall, tails and mode weights against the reference points."""
    from genlib.metrics.sample_metrics import evaluate_samples

    modes = torch.tensor(meta["modes"]) if meta.get("modes") else None
    weights = torch.tensor(meta["weights"]) if meta.get("weights") else None
    e = cfg.eval
    metrics = evaluate_samples(
        samples.flatten(1), reference.flatten(1), generator(cfg.seed, "eval"), modes=modes, weights=weights,
        n_exact=e.n_exact, n_mmd=e.n_mmd, n_projections=e.n_projections, k=e.k, on_group=group,
    )
    metrics.pop("mode_weights_gen", None)
    return metrics


def score_images(cfg: Config, paths: Paths, meta: dict, samples: torch.Tensor, reference: torch.Tensor,
                 group: Callable[[str], None] = lambda name: None) -> dict:
    """FID / KID / precision / recall against the reference images and, with the classifier, the
    class balance of the samples against the training shares and how sure its labels are."""
    from genlib.metrics.fidelity import image_metrics

    classifier = paths.classifier
    e = cfg.eval
    if e.feature_extractor == "classifier" and not classifier.is_file():
        # prepare_data trains it only on labelled sets (a flat image folder has no labels)
        raise ConfigError("eval.feature_extractor", "classifier", f"'inception': {meta['dataset']} has no labels to train a classifier on")
    group(f"{e.feature_extractor} features of {samples.shape[0]} samples and {reference.shape[0]} {e.reference} images; FID, KID, precision, recall")
    metrics = image_metrics(
        samples, reference, generator(cfg.seed, "eval"), extractor=e.feature_extractor,
        classifier_path=classifier if classifier.is_file() else None, inception_weights=e.inception_weights,
        kid_subset_size=e.kid_subset_size, progress=want_progress(cfg.run.progress),
    )
    if classifier.is_file() and meta.get("num_classes"):
        from genlib.metrics.class_balance import class_balance, low_confidence_share
        from genlib.metrics.classifier import load_classifier, predict_with_confidence

        group("class balance of the samples")
        model, _ = load_classifier(classifier)
        labels, confidence = predict_with_confidence(model, samples)
        train_labels = torch.from_numpy(io.load_array(paths.prepared / "train_labels.npy")).long()
        long_tailed = meta.get("imbalance") is not None
        metrics.update(class_balance(labels, train_labels, meta["num_classes"], long_tailed))
        metrics["low_confidence_share"] = low_confidence_share(confidence)
        metrics["low_confidence_share_ref"] = low_confidence_share(predict_with_confidence(model, reference)[1])
        if "classifier_test_accuracy" in meta:
            metrics["classifier_test_accuracy"] = meta["classifier_test_accuracy"]
    return metrics


SCORES = {"points": score_points, "images": score_images}


def write_analysis(cfg: Config, paths: Paths, method, nets, metrics: dict, meta: dict, test: torch.Tensor) -> list[dict]:
    """The method's own analysis figures (the hierarchical VAE's KL per layer, reconstructions,
    traversals) in ``plots/analysis/``, listed with their captions in ``index.json`` for the
    report; for other methods the list is empty. ``analysis`` also gets the metrics just
    computed and the test set already read, so it draws what they hold instead of computing or
    reading it again."""
    out = paths.analysis
    out.mkdir(parents=True, exist_ok=True)
    for old in sorted(out.iterdir()):  # figures of a previous method must not linger in the output
        io.remove(old)
    figures: list[dict] = []
    if nets is not None:
        device = next(nets.parameters()).device  # the networks' (extra_metrics moved them): the figures draw there
        made = method.analysis(nets, test, generator(cfg.seed, "eval/analysis", device), out, cfg.eval, meta, metrics)
        figures = [{"caption": c, "file": f} for c, f in made]
    io.write_json(paths.analysis_index, figures)
    return figures
