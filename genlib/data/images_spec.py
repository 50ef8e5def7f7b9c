"""The specs of the image datasets: their params (the ``data:`` section) and checks, without
torch. A spec validates its params when it is built (raising ``ConfigError``); the sets of
:mod:`genlib.data.images` inherit their spec and add the loading."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from genlib.errors import ConfigError
from genlib.params import build, non_negative, positive, spec

# Gaussian dequantization defaults to the standard deviation of U[0, 1)/256, the uniform one's.
DEFAULT_DEQUANT_STD = 1.0 / (256.0 * math.sqrt(12.0))


def _at_least_one(x: float) -> bool:
    return x >= 1


@dataclass(frozen=True)
class ImageParams:
    """Params of the image datasets (the ``data:`` section of ``params.yaml``)."""

    dataset: str = "mnist"
    root: str = ""  # folder of the files (or where download puts them); $env{VAR} is expanded
    download: bool = False  # let torchvision download the set into root (needs internet)
    image_size: int | None = spec(None, positive, "a positive integer or null (native size)")
    max_train: int | None = spec(None, positive, "a positive integer or null (all training images)")
    max_test: int | None = spec(None, positive, "a positive integer or null (all test images)")
    # Validation images held out of the training images (seeded) for the evaluation during training.
    nval: int = spec(0, non_negative, "a non-negative integer")
    imbalance: float | None = spec(None, _at_least_one, "a number >= 1 or null (balanced)")
    flip: bool = False  # random horizontal flips at training time
    dequantization: Literal["none", "uniform", "gaussian"] = "uniform"
    dequant_std: float = spec(DEFAULT_DEQUANT_STD, positive, "a positive number")  # gaussian only


# What the built-in sets hold, known before their files are read: the image shape (C, H, W), the
# training and the test images (None: it follows data.imbalance, CIFAR-10-LT's long tail).
NATIVE = {
    "mnist": ((1, 28, 28), 60_000, 10_000),
    "fashion_mnist": ((1, 28, 28), 60_000, 10_000),
    "cifar10": ((3, 32, 32), 50_000, 10_000),
    "cifar10_lt": ((3, 32, 32), None, 10_000),
}


class ImageSpec:
    """An image set's spec: the params built and checked (also when given as an instance), a
    root, then the set's own checks (``check``)."""

    kind = "images"
    Params = ImageParams
    # The data keys the network's input depends on beyond the prepared files (``to_model``).
    model_keys: tuple[str, ...] = ("dequantization", "dequant_std", "flip")

    def __init__(self, p: ImageParams) -> None:
        p = build(ImageParams, dataclasses.asdict(p), "data.")  # also checks an instance built directly
        if not p.root:
            where = "a folder path: where the files are, or where data.download: true puts them"
            raise ConfigError("data.root", p.root, where)
        self.check(p)
        self.params = p

    @classmethod
    def check(cls, p: ImageParams) -> None:
        """Set-specific checks on top of the common ones (none by default)."""


class ImageFolderSpec(ImageSpec):
    """A set read from a local folder only."""

    @classmethod
    def check(cls, p: ImageParams) -> None:
        if p.download:
            raise ConfigError("data.download", p.download, f"false: {p.dataset} is read from data.root only")
