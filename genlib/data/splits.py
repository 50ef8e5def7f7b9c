"""What every dataset's ``load`` returns: the train and test sets, their labels and a description.

2D sets and image sets share this one shape, so the stages treat them alike: a set draws or reads
its data, splits it, normalises it (2D sets with ``normalized``; images are stored as uint8 and
normalised per batch by the dataset's ``to_model``) and describes itself in ``meta``, which
``prepare_data`` writes to ``data/prepared/meta.json``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from genlib.data.image_folder import FolderImages


@dataclass(frozen=True)
class Splits:
    """``train`` and ``test`` are ``(N, ...)`` tensors (float32 points or uint8 images ``(N, C, H, W)``),
    or for a folder of images :class:`~genlib.data.image_folder.FolderImages` that decode when
    written; labels are int64 ``(N,)`` or None; ``meta`` is the set's own description (JSON-ready)."""

    train: torch.Tensor | FolderImages
    test: torch.Tensor | FolderImages
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    num_classes: int | None = None
    class_names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def data_shape(self) -> tuple[int, ...]:
        """The shape of one item: ``(2,)`` for a 2D point, ``(C, H, W)`` for an image."""
        return tuple(self.train.shape[1:])

    @property
    def labelled(self) -> bool:
        return self.train_labels is not None and self.num_classes is not None


def hold_out(splits: Splits, nval: int, generator: torch.Generator) -> tuple[Splits, torch.Tensor | FolderImages]:
    """``nval`` items drawn at random (``generator``) out of the training set: the splits with
    the rest of it, in their order, and the held-out items, in the order drawn. ``nval = 0``
    leaves the training set as it is."""
    n = splits.train.shape[0]
    if nval >= n:
        raise ValueError(f"data.nval = {nval} leaves no training items of the {n} there are")
    order = torch.randperm(n, generator=generator)
    keep = order[nval:].sort().values
    labels = splits.train_labels[keep] if splits.train_labels is not None else None
    return dataclasses.replace(splits, train=splits.train[keep], train_labels=labels), splits.train[order[:nval]]
