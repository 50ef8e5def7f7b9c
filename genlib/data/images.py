"""Image datasets: MNIST, Fashion-MNIST, CIFAR-10 (and its long tail), and folders of images.

Every set is a class named in :data:`genlib.registry.DATASETS` (declared in :mod:`genlib.registry`), built from one
:class:`ImageParams` (the ``data:`` section, :mod:`genlib.data.images_spec`). The constructor checks the params without touching
the disk, so a config can be checked where the data is absent; :meth:`ImageDataset.load` reads the
files, chooses the images to keep (long tail, caps) from the generator it is given, and returns
uint8 images in a :class:`~genlib.data.splits.Splits`. :meth:`ImageDataset.to_model` turns a batch of them into
the network's float input.

Decisions:

* ``data.root`` is required by every set: it is where the files are, or where
  ``data.download: true`` puts them. MNIST-format idx files are read by our own reader from
  ``root``, ``root/raw`` or torchvision's ``root/<MNIST|FashionMNIST>/raw``; torchvision is only
  imported to download, and to read CIFAR-10's pickled batches.
* Choices happen in a fixed order, each from the same generator: hold-out split (folders without
  a test folder), long tail, ``max_train`` cap, ``max_test`` cap. A cap at or above the set's size
  draws nothing.
* The long tail subsamples the training set only; the test set stays balanced (as CIFAR-10-LT).
* Folders without ``test/`` or ``val/`` hold out ``max_test`` images, by default 10% of them and at
  most 10,000 (the size of the MNIST and CIFAR-10 test sets).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from genlib.data.decode_pool import Pool
from genlib.data.idx import IDX_NAMES, find_idx_files, read_idx_split
from genlib.data.image_folder import FolderImages, FolderListing, folder_images, list_images, relabel, split_folders
from genlib.data.splits import Splits
from genlib.data.image_transforms import resize_images, to_model
from genlib.data.images_spec import ImageFolderSpec, ImageParams, ImageSpec
from genlib.data.subsample import holdout_split, long_tail_subset, random_subset
from genlib.errors import ConfigError, DataError

HOLDOUT_FRACTION = 0.1
HOLDOUT_MAX = 10_000


@dataclass(frozen=True)
class _Source:
    """A set before the images to keep are chosen: its labels, sizes, and how to fetch images."""

    n_train: int
    n_test: int
    train_labels: torch.Tensor | None
    test_labels: torch.Tensor | None
    class_names: list[str] | None
    images: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor | FolderImages, torch.Tensor | FolderImages]]


def _tensor_source(
    train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
    class_names: list[str], image_size: int | None, where: str,
) -> _Source:
    """A source over images already in memory (uint8 ``(N, C, H, W)``, labels ``(N,)``)."""
    for labels in (train[1], test[1]):
        if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise DataError(f"{where}: labels outside 0..{len(class_names) - 1}")

    def images(train_idx: torch.Tensor, test_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = train[0][train_idx], test[0][test_idx]
        if image_size is None:
            return chosen
        return resize_images(chosen[0], image_size), resize_images(chosen[1], image_size)

    return _Source(len(train[0]), len(test[0]), train[1], test[1], class_names, images)


def _missing(root: str, holding: str, name: str) -> ConfigError:
    """The error for a set that is neither on disk nor allowed to download."""
    return ConfigError(
        "data.root", root,
        f"a folder holding {holding} (none found there), or data.download: true to fetch {name} with torchvision",
    )


class ImageDataset(ImageSpec):
    """Base of the image sets: check the params (the spec), then load uint8 splits."""

    name = ""
    pool = Pool()  # the processes that read image files (prepare_data gives its own, with progress)

    @property
    def imbalance(self) -> float | None:
        """Long-tail factor applied to the training set (None = balanced)."""
        return self.params.imbalance

    def _source(self, generator: torch.Generator) -> _Source:
        """The set's labels and image fetcher (subclasses)."""
        raise NotImplementedError

    def load(self, generator: torch.Generator) -> Splits:
        """Read the set and keep the images the params ask for, choosing with ``generator``."""
        p = self.params
        src = self._source(generator)
        train_idx = torch.arange(src.n_train)
        if self.imbalance is not None:
            if src.train_labels is None:
                unlabelled = f"null: the set in {p.root} has no labels (no class subfolders)"
                raise ConfigError("data.imbalance", self.imbalance, unlabelled)
            train_idx = long_tail_subset(src.train_labels, len(src.class_names), self.imbalance, generator)
        if p.max_train is not None and p.max_train < len(train_idx):
            train_idx = train_idx[random_subset(len(train_idx), p.max_train, generator)]
        test_idx = torch.arange(src.n_test)
        if p.max_test is not None and p.max_test < src.n_test:
            test_idx = random_subset(src.n_test, p.max_test, generator)
        train, test = src.images(train_idx, test_idx)

        def chosen(labels: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
            return None if labels is None else labels[idx].long()

        num_classes = None if src.class_names is None else len(src.class_names)
        train_labels, test_labels = chosen(src.train_labels, train_idx), chosen(src.test_labels, test_idx)
        labelled = train_labels is not None and num_classes is not None
        if labelled and test_labels is not None:
            self._check_classes(train_labels, test_labels, src.class_names)
        meta = {
            "dataset": p.dataset,
            "kind": "images",
            "shape": list(train.shape[1:]),
            "ntrain": int(train.shape[0]),
            "ntest": int(test.shape[0]),
            "num_classes": num_classes,
            "class_names": src.class_names,
            "class_counts": torch.bincount(train_labels, minlength=num_classes).tolist() if labelled else None,
            "imbalance": self.imbalance,  # null: not made long-tailed (the rare classes need one)
            "modes": None,
            "weights": None,
        }
        return Splits(train, test, train_labels, test_labels, num_classes, src.class_names, meta)

    def _check_classes(self, train_labels: torch.Tensor, test_labels: torch.Tensor, names: list[str]) -> None:
        """A class of the test set must be in the training set: the generator cannot learn it and
        its class balance is undefined."""
        missing = sorted(set(test_labels.unique().tolist()) - set(train_labels.unique().tolist()))
        if missing:
            p = self.params
            shown = ", ".join(f"{k} ({names[k]})" for k in missing)
            fixes = [f"raise data.max_train (now {p.max_train})"] if p.max_train is not None else []
            fixes += [f"lower data.imbalance (now {self.imbalance})"] if self.imbalance is not None else []
            fix = " or ".join(fixes) or "add training images of those classes"
            raise DataError(f"{p.dataset} in {p.root}: the test set has classes the {len(train_labels)} training images lack: {shown}; {fix}")

    @classmethod
    def input_transform(cls, p: ImageParams) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
        """How a stored uint8 training batch becomes the network's input in ``[-1, 1]``: flips and
        dequantization per params, drawn from the training generator. Reads ``model_keys`` only."""
        mode, flip, std = p.dequantization, p.flip, p.dequant_std
        return lambda batch, generator: to_model(batch, generator, mode, flip, std)

    def to_model(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A uint8 training batch as the network's input in ``[-1, 1]`` (flip and dequantization per params)."""
        return self.input_transform(self.params)(batch, generator)


# ---------------------------------------------------------------------------------------------
# MNIST-format sets
# ---------------------------------------------------------------------------------------------


class _IdxDataset(ImageDataset):
    """A set in MNIST's idx format: local files first, torchvision's download otherwise."""

    torchvision_name = ""
    class_names: tuple[str, ...] = ()

    def _local_files(self) -> dict | None:
        root = Path(self.params.root)
        for folder in (root, root / "raw", root / self.torchvision_name / "raw"):
            files = find_idx_files(folder)
            if files is not None:
                return files
        return None

    def _download(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        import genlib.compat  # noqa: F401  (before torchvision)
        from torchvision import datasets

        cls = getattr(datasets, self.torchvision_name)
        sets = [cls(self.params.root, train=train, download=True) for train in (True, False)]
        return tuple((s.data.numpy(), s.targets.numpy()) for s in sets)

    def _source(self, generator: torch.Generator) -> _Source:
        files = self._local_files()
        if files is not None:
            splits = [read_idx_split(files[(s, "images")], files[(s, "labels")]) for s in ("train", "test")]
        elif self.params.download:
            splits = self._download()
        else:
            names = ", ".join(f"{n}[.gz]" for n in IDX_NAMES.values())
            raise _missing(self.params.root, f"the idx files {names}", self.name)
        (x_train, y_train), (x_test, y_test) = splits

        def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.from_numpy(x)[:, None], torch.from_numpy(y).long()

        return _tensor_source(
            tensors(x_train, y_train), tensors(x_test, y_test), list(self.class_names),
            self.params.image_size, self.params.root,
        )


class Mnist(_IdxDataset):
    """Handwritten digits, 60,000 + 10,000 grayscale 28x28 images, 10 classes (LeCun et al., 1998)."""

    name = "mnist"
    torchvision_name = "MNIST"
    class_names = tuple(str(d) for d in range(10))


class FashionMnist(_IdxDataset):
    """Zalando's clothing images, MNIST's format and sizes (Xiao et al., 2017)."""

    name = "fashion_mnist"
    torchvision_name = "FashionMNIST"
    class_names = (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )


# ---------------------------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------------------------


class Cifar10(ImageDataset):
    """50,000 + 10,000 colour 32x32 images, 10 classes (Krizhevsky, 2009), via torchvision."""

    name = "cifar10"
    folder = "cifar-10-batches-py"

    def _source(self, generator: torch.Generator) -> _Source:
        p = self.params
        if not (Path(p.root) / self.folder).is_dir() and not p.download:
            raise _missing(p.root, f"{self.folder}/ (the python version of CIFAR-10)", "CIFAR-10")
        import genlib.compat  # noqa: F401  (before torchvision)
        from torchvision.datasets import CIFAR10

        try:
            sets = [CIFAR10(p.root, train=train, download=p.download) for train in (True, False)]
        except RuntimeError as err:
            raise DataError(f"{Path(p.root) / self.folder}: {err}") from None

        def tensors(s) -> tuple[torch.Tensor, torch.Tensor]:
            images = torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous()  # torchvision keeps HWC
            return images, torch.tensor(s.targets, dtype=torch.long)

        return _tensor_source(tensors(sets[0]), tensors(sets[1]), list(sets[0].classes), p.image_size, p.root)


class Cifar10LT(Cifar10):
    """CIFAR-10-LT: CIFAR-10's training set with an exponential long tail, imbalance 100 unless set.

    Cao et al. (2019); the heavy-tailed diffusion benchmark of LIM (Yoon et al., 2023) and DLPM
    (Shariatian et al., 2024). See :func:`genlib.data.subsample.long_tail_counts`.
    """

    name = "cifar10_lt"
    default_imbalance = 100.0

    @property
    def imbalance(self) -> float:
        return self.default_imbalance if self.params.imbalance is None else self.params.imbalance


# ---------------------------------------------------------------------------------------------
# Folders of images
# ---------------------------------------------------------------------------------------------


def _holdout(
    listing: FolderListing, n_test: int | None, generator: torch.Generator, root: Path
) -> tuple[FolderListing, FolderListing]:
    """(train, test) listings: ``n_test`` images held out at random (default 10%, at most 10,000)."""
    n = len(listing.paths)
    if n < 2:
        raise DataError(f"{root}: {n} image(s); a set without a test folder needs at least 2 to hold one out")
    if n_test is None:
        n_test = max(1, min(int(n * HOLDOUT_FRACTION), HOLDOUT_MAX))
    train_idx, test_idx = holdout_split(n, min(n_test, n - 1), generator)

    def part(idx: torch.Tensor) -> FolderListing:
        labels = None if listing.labels is None else [listing.labels[i] for i in idx.tolist()]
        return FolderListing([listing.paths[i] for i in idx.tolist()], labels, listing.class_names)

    return part(train_idx), part(test_idx)


class ImageFolderDataset(ImageFolderSpec, ImageDataset):
    """A local folder of images: class subfolders (labelled) or flat (unlabelled), read with PIL.

    ``root`` may also hold ``train/`` and ``test/`` (or ``val/``) folders of that layout; otherwise
    ``max_test`` images are held out. Images are converted to RGB, or to L if all are grayscale, and
    centre-cropped and resized to ``image_size`` (required when their sizes differ). The splits hold
    :class:`~genlib.data.image_folder.FolderImages`, decoded only when written (their headers are read here).
    """

    name = "image_folder"

    def _source(self, generator: torch.Generator) -> _Source:
        p = self.params
        root = Path(p.root)
        if not root.is_dir():
            raise ConfigError("data.root", p.root, "an existing folder of images (class subfolders, or flat)")
        train_dir, test_dir = split_folders(root)
        train = list_images(train_dir)
        if test_dir is not None:
            test = relabel(list_images(test_dir), train.class_names, test_dir)
        else:
            train, test = _holdout(train, p.max_test, generator, root)

        def labels(listing: FolderListing) -> torch.Tensor | None:
            return None if listing.labels is None else torch.tensor(listing.labels, dtype=torch.long)

        def images(train_idx: torch.Tensor, test_idx: torch.Tensor) -> tuple[FolderImages, FolderImages]:
            paths = [train.paths[i] for i in train_idx.tolist()] + [test.paths[i] for i in test_idx.tolist()]
            chosen = folder_images(paths, p.image_size, self.pool)  # headers read here, decoded as prepare_data writes them
            return chosen[: len(train_idx)], chosen[len(train_idx):]

        return _Source(len(train.paths), len(test.paths), labels(train), labels(test), train.class_names, images)


class CelebA(ImageFolderDataset):
    """CelebA faces (Liu et al., 2015) from a local folder, e.g. ``img_align_celeba/``; set image_size."""

    name = "celeba"


class Lsun(ImageFolderDataset):
    """LSUN scenes (Yu et al., 2015) exported to image files in a local folder; set image_size."""

    name = "lsun"


class Ffhq(ImageFolderDataset):
    """FFHQ faces (Karras et al., 2019) from a local folder of PNGs."""

    name = "ffhq"


class ImageNet(ImageFolderDataset):
    """ImageNet (Deng et al., 2009) from a local ``train/`` + ``val/`` tree of class folders; set image_size."""

    name = "imagenet"
