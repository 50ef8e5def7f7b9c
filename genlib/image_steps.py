"""The image side of the pipeline steps: prepared files, the classifier, sample grids, image metrics.

:mod:`genlib.pipeline` calls these when the dataset's ``kind`` is ``"images"``. Images are stored
as uint8 ``(N, C, H, W)`` arrays (``data/prepared/{train,test}.npy``, ``data/samples/samples.npy``),
labels as int64 arrays beside them; the network sees them in ``[-1, 1]`` through the dataset's
``to_model`` (dequantization, flips) and its samples come back through ``to_uint8``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from genlib import io, plots
from genlib.data.image_transforms import to_model, to_uint8
from genlib.errors import ConfigError, DataError
from genlib.progress import want_progress
from genlib.seeding import generator

CLASSIFIER = "classifier.pt"


def prepare_images(cfg, ds, g: torch.Generator, prepared: Path) -> dict:
    """Load the set (choices from ``g``), write the uint8 splits, labels, metadata and, for
    labelled sets, the classifier behind the ``*_clf`` metrics and the class balance."""
    splits = ds.load(g)
    labelled = splits.train_labels is not None and splits.num_classes is not None
    meta = {
        "dataset": cfg.data.dataset,
        "kind": "images",
        "shape": list(splits.data_shape),
        "ntrain": int(splits.train.shape[0]),
        "ntest": int(splits.test.shape[0]),
        "num_classes": splits.num_classes,
        "class_names": splits.class_names,
        "class_counts": torch.bincount(splits.train_labels, minlength=splits.num_classes).tolist() if labelled else None,
        "modes": None,
        "weights": None,
    }
    io.save_array(prepared / "train.npy", splits.train.numpy())
    io.save_array(prepared / "test.npy", splits.test.numpy())
    for name, labels in (("train_labels.npy", splits.train_labels), ("test_labels.npy", splits.test_labels)):
        if labels is not None:
            io.save_array(prepared / name, labels.numpy())
        else:
            (prepared / name).unlink(missing_ok=True)
    classifier = prepared / CLASSIFIER
    if labelled and cfg.data.classifier_epochs > 0:
        from genlib.metrics.classifier import accuracy, save_classifier, train_classifier

        print(f"training the evaluation classifier ({cfg.data.classifier_epochs} epochs)", file=sys.stderr)
        model, info = train_classifier(
            splits.train, splits.train_labels, splits.num_classes, generator(cfg.seed, "classifier"),
            epochs=cfg.data.classifier_epochs, progress=want_progress(cfg.run.progress),
        )
        if splits.test_labels is not None:
            meta["classifier_test_accuracy"] = accuracy(model, splits.test, splits.test_labels)
        save_classifier(classifier, model, {"num_classes": splits.num_classes, **info})
    else:
        classifier.unlink(missing_ok=True)
    io.write_json(prepared / "meta.json", meta)
    return meta


def save_samples(samples: torch.Tensor, paths, title: str) -> dict:
    """uint8 samples (non-finite values counted, then drawn as black) and the grid beside data."""
    finite = torch.isfinite(samples.flatten(1)).all(dim=1)
    images = to_uint8(torch.nan_to_num(samples, nan=-1.0, posinf=1.0, neginf=-1.0))
    io.save_array(paths.samples / "samples.npy", images.numpy())
    test = io.load_array(paths.prepared / "test.npy")
    plots.image_grid(paths.samples_plot, images.numpy(), test, title=title)
    return {"n_nonfinite": int((~finite).sum())}


def evaluate_images(cfg, paths, info: dict, method, nets) -> dict:
    """FID / KID / precision / recall against the test images, the class balance, and a
    likelihood family's own metrics (:func:`likelihood_metrics`)."""
    from genlib.metrics.fidelity import image_metrics

    generated = torch.from_numpy(_uint8(paths.samples / "samples.npy"))
    test = torch.from_numpy(_uint8(paths.prepared / "test.npy"))
    meta = io.read_json(paths.prepared / "meta.json")
    classifier = paths.prepared / CLASSIFIER
    e = cfg.eval
    if e.feature_extractor == "classifier" and not classifier.is_file():
        # prepare_data trains it only on labelled sets (a flat image folder has no labels)
        raise ConfigError("eval.feature_extractor", "classifier", f"'inception': {cfg.data.dataset} at {cfg.data.root} has no labels to train a classifier on")
    metrics = image_metrics(
        generated, test, generator(cfg.seed, "eval"), extractor=e.feature_extractor,
        classifier_path=classifier if classifier.is_file() else None, inception_weights=e.inception_weights,
        kid_subset_size=e.kid_subset_size, progress=want_progress(cfg.run.progress),
    )
    if classifier.is_file() and meta.get("num_classes"):
        from genlib.metrics.class_balance import class_balance
        from genlib.metrics.classifier import load_classifier, predict

        model, _ = load_classifier(classifier)
        train_labels = torch.from_numpy(io.load_array(paths.prepared / "train_labels.npy")).long()
        metrics.update(class_balance(predict(model, generated), train_labels, meta["num_classes"]))
        if "classifier_test_accuracy" in meta:
            metrics["classifier_test_accuracy"] = meta["classifier_test_accuracy"]
    metrics["n_nonfinite"] = info.get("n_nonfinite", 0)
    metrics.update(likelihood_metrics(cfg, method, nets, test))
    return metrics


def likelihood_metrics(cfg, method, nets, test: torch.Tensor) -> dict:
    """The method's own metrics on the uint8 test images (the VAE's ELBO, NLL, bits per dimension),
    or none. The images reach it as in training but never flipped, and dequantized uniformly from a
    seeded generator: the dequantization under which a density's NLL bounds the 8-bit codelength
    (Theis et al., ICLR 2016), whatever ``data.dequantization`` trained with."""
    from genlib.device import resolve_device

    if not hasattr(method, "extra_metrics"):
        return {}
    device = resolve_device(cfg.run.device)
    x = to_model(test.to(device), generator(cfg.seed, "eval/dequantize", device), "uniform", flip=False)
    return method.extra_metrics(nets.to(device), x, generator(cfg.seed, "eval/extra", device), cfg.eval)


def _uint8(path: Path) -> np.ndarray:
    arr = io.load_array(path)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[0] == 0:
        raise DataError(f"{path}: expected uint8 images (N, C, H, W), got {arr.dtype} of shape {arr.shape}")
    return arr
