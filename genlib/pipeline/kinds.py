"""Points and images: how each kind of data stores its samples and scores them.

The stages ask the data's kind (``meta.json``'s ``kind``, ``points`` unless it says ``images``)
instead of branching on it. Points are float32 ``(N, D)``; images are uint8 ``(N, C, H, W)``,
mapped to ``[-1, 1]`` for the network (:mod:`genlib.data.image_transforms`) and back.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlib import io, plots
from genlib.data.image_transforms import to_model, to_uint8
from genlib.errors import DataError
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepared import check_items, load_points, load_uint8
from genlib.seeding import generator

GENERATE = "rerun generate to remake it (dvc repro)"


class Points:
    """2D (or any ``(N, D)``) point sets."""

    name = "points"

    def save_samples(self, samples: torch.Tensor, paths: Paths, meta: dict, title: str) -> dict:
        """The samples as float32 and their scatter and tail plot against the held-out points."""
        arr = samples.numpy().astype(np.float32)
        io.save_array(paths.samples / "samples.npy", arr)
        test = self.load_test(paths, meta).numpy()
        plots.samples_vs_data(paths.samples_plot, arr, test, meta.get("modes"), title=title)
        return {}

    def load_samples(self, path: Path, meta: dict) -> torch.Tensor:
        """The generated points, of the data's shape; non-finite ones are kept (they are counted)."""
        arr = io.load_array(path)
        check_items(arr, path, meta["shape"], GENERATE)
        if not np.issubdtype(arr.dtype, np.floating):
            raise DataError(f"{path}: expected floating-point samples, got {arr.dtype}; {GENERATE}")
        return torch.from_numpy(arr)

    def load_test(self, paths: Paths, meta: dict) -> torch.Tensor:
        return load_points(paths.prepared / "test.npy", meta["shape"])

    def load_train(self, paths: Paths, meta: dict, whole_mb: int) -> torch.Tensor:
        """The training points, whole whatever ``whole_mb``: the point metrics hold both sets whole."""
        return load_points(paths.prepared / "train.npy", meta["shape"])

    def likelihood_input(self, test: torch.Tensor, seed: int, device: torch.device) -> torch.Tensor:
        """The test set as a likelihood model scores it: the points themselves, one row each."""
        return test.flatten(1)


class Images:
    """Image sets, stored as uint8."""

    name = "images"

    def save_samples(self, samples: torch.Tensor, paths: Paths, meta: dict, title: str) -> dict:
        """uint8 samples (non-finite values counted, then drawn as black) and the grid beside data."""
        finite = torch.isfinite(samples.flatten(1)).all(dim=1)
        images = to_uint8(torch.nan_to_num(samples, nan=-1.0, posinf=1.0, neginf=-1.0))
        io.save_array(paths.samples / "samples.npy", images.numpy())
        test = self.load_test(paths, meta).numpy()
        plots.image_grid(paths.samples_plot, images.numpy(), test, title=title)
        return {"n_nonfinite": int((~finite).sum())}

    def load_samples(self, path: Path, meta: dict) -> torch.Tensor:
        return torch.from_numpy(load_uint8(path, meta["shape"], GENERATE))

    def load_test(self, paths: Paths, meta: dict) -> torch.Tensor:
        return torch.from_numpy(load_uint8(paths.prepared / "test.npy", meta["shape"]))

    def load_train(self, paths: Paths, meta: dict, whole_mb: int) -> torch.Tensor:
        """The training images; over ``whole_mb`` MiB (``run.whole_set_mb``) mapped from the file, so
        the metrics, which take them a batch at a time, read only what they use when they use it."""
        return torch.from_numpy(load_uint8(paths.prepared / "train.npy", meta["shape"], whole_mb=whole_mb))

    def likelihood_input(self, test: torch.Tensor, seed: int, device: torch.device) -> torch.Tensor:
        """The uint8 test images as in training but never flipped, and dequantized uniformly from a
        seeded generator: the dequantization under which a density's NLL bounds the 8-bit
        codelength (Theis et al., ICLR 2016), whatever ``data.dequantization`` trained with."""
        return to_model(test.to(device), generator(seed, "eval/dequantize", device), "uniform", flip=False)


KINDS = {kind.name: kind for kind in (Points(), Images())}


def kind_of(meta: dict):
    """The kind of data ``meta`` (a prepared set's description) describes."""
    return KINDS[meta.get("kind", "points")]
