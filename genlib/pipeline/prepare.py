"""The ``prepare_data`` stage: draw (2D) or read (images) the seeded splits and write them.

Every dataset splits, normalises and describes itself (``load``, :mod:`genlib.data.splits`), so
this stage is the same for points and images: the arrays, their labels when the set has them,
``meta.json``, and for a labelled image set the evaluation classifier behind the ``*_clf``
metrics (``eval.classifier_epochs``).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from genlib import io
from genlib.config import Config
from genlib.data.decode_pool import Pool
from genlib.data.image_folder import FolderImages
from genlib.data.images import ImageDataset
from genlib.data.splits import hold_out
from genlib.errors import DataError
from genlib.pipeline.paths import Paths
from genlib.progress import display, say
from genlib.registry import DATASETS
from genlib.seeding import generator


def prepare_data(cfg: Config, paths: Paths = Paths()) -> dict:
    """Write ``data/prepared/{train,val,test}.npy``, the labels, ``meta.json`` and the classifier.
    The ``data.nval`` validation items are held out of the training set drawn (``val.npy``, empty
    when 0): the evaluation during training scores on them, ``evaluate`` never does."""
    start = time.perf_counter()
    pool = Pool(torch.get_num_threads(), progress=display(cfg.run.progress))  # the stage's share of the processors
    dataset = DATASETS.get(cfg.data.dataset)(cfg.data)
    if isinstance(dataset, ImageDataset):
        dataset.pool = pool  # an image folder's headers are read by it too
    splits = dataset.load(generator(cfg.seed, "data"))
    try:
        splits, val = hold_out(splits, cfg.data.nval, generator(cfg.seed, "data/validation"))
    except ValueError as err:  # images: the set's size is known here
        raise DataError(f"{cfg.data.dataset}: {err}; lower data.nval") from None
    prepared, meta = paths.prepared, dict(splits.meta)
    for name, items in (("train.npy", splits.train), ("val.npy", val), ("test.npy", splits.test)):
        _save(prepared / name, items, pool)
    for name, labels in (("train_labels.npy", splits.train_labels), ("test_labels.npy", splits.test_labels)):
        if labels is not None:
            io.save_array(prepared / name, labels.numpy())
        else:
            io.remove(prepared / name)
    if cfg.data_kind == "images" and splits.labelled and cfg.eval.classifier_epochs > 0:
        meta.update(_train_classifier(cfg, splits, paths))
    else:
        io.remove(paths.classifier)
    io.write_json(prepared / "meta.json", meta)
    # The modes alone, for the evaluation during training's mode metrics: train depends on this
    # file, not on meta.json (which holds the classifier's accuracy, an evaluation setting's).
    io.write_json(prepared / "modes.json", {"modes": meta.get("modes")})
    say(cfg.run.progress, f"prepare_data: {cfg.data.dataset}, {splits.train.shape[0]} training, {val.shape[0]} validation "
                          f"and {splits.test.shape[0]} test items in {time.perf_counter() - start:.1f} s")
    return meta


def _save(path: Path, items: torch.Tensor | FolderImages, pool: Pool) -> None:
    """Write a split: a tensor at once, a folder's images as they are decoded (never all in memory)."""
    if isinstance(items, torch.Tensor):
        io.save_array(path, items.numpy())
    else:
        io.save_array_chunks(path, items.shape, np.uint8, items.chunks(pool))


def _written(path: Path) -> torch.Tensor:
    """The images this stage wrote to ``path``, mapped from the file rather than read into memory."""
    return torch.from_numpy(np.load(io.latest(path), mmap_mode="c"))  # copy-on-write: never written


def _train_classifier(cfg: Config, splits, paths: Paths) -> dict:
    """The small CNN whose features and predictions score generated images; its test accuracy.
    It reads the images as written, so a folder's set need not fit in memory."""
    from genlib.metrics.classifier import accuracy, save_classifier, train_classifier

    print(f"training the evaluation classifier ({cfg.eval.classifier_epochs} epochs)", file=sys.stderr)
    model, info = train_classifier(
        _written(paths.prepared / "train.npy"), splits.train_labels, splits.num_classes, generator(cfg.seed, "classifier"),
        epochs=cfg.eval.classifier_epochs, progress=display(cfg.run.progress),
    )
    save_classifier(paths.classifier, model, {"num_classes": splits.num_classes, **info})
    if splits.test_labels is None:
        return {}
    return {"classifier_test_accuracy": accuracy(model, _written(paths.prepared / "test.npy"), splits.test_labels)}
