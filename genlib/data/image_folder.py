"""Image sets stored as folders of image files, read with PIL.

Layout, as torchvision's ``ImageFolder``: a folder whose subfolders are classes (their sorted names
give labels 0, 1, ...; files are found at any depth inside them) or a flat folder of images
(unlabelled). A set may split into ``train/`` and ``test/`` (or ``val/``) subfolders of that layout.
Listing reads only names, so the caller can choose which images to keep before any is decoded;
the images kept are decoded in chunks, in order, by a pool of processes (:mod:`genlib.data.decode_pool`),
so a set larger than memory can be written as it is decoded.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from genlib.data.decode_pool import Pool
from genlib.data.image_transforms import center_crop_resize
from genlib.errors import ConfigError, DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
TEST_FOLDERS = ("test", "val")
HEADER_CHUNK = 2048  # headers a worker reads at a time


@dataclass(frozen=True)
class FolderListing:
    """The image files of one folder and, for a folder of class subfolders, their labels."""

    paths: list[Path]
    labels: list[int] | None
    class_names: list[str] | None


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _images_below(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _is_image(p) and not any(s.startswith(".") for s in p.parts))


def list_images(folder: Path) -> FolderListing:
    """Every image in ``folder``: labelled by class subfolder, or flat and unlabelled."""
    entries = _visible(folder)
    subfolders = [p for p in entries if p.is_dir()]
    files = [p for p in entries if _is_image(p)]
    if subfolders and files:
        raise DataError(
            f"{folder}: holds both image files and subfolders; use one class subfolder per label, or a flat folder"
        )
    if not subfolders:
        if not files:
            raise DataError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return FolderListing(files, None, None)
    paths, labels = [], []
    for label, sub in enumerate(subfolders):
        found = _images_below(sub)
        if not found:
            raise DataError(f"{sub}: class folder without image files")
        paths += found
        labels += [label] * len(found)
    return FolderListing(paths, labels, [p.name for p in subfolders])


def relabel(test: FolderListing, class_names: list[str] | None, folder: Path) -> FolderListing:
    """The test listing with labels numbered as the training classes ``class_names``."""
    if (test.class_names is None) != (class_names is None):
        raise DataError(f"{folder}: train and test folders must both have class subfolders, or neither")
    if test.class_names is None:
        return test
    unknown = sorted(set(test.class_names) - set(class_names))
    if unknown:
        raise DataError(f"{folder}: test classes {unknown} do not appear in the training folder")
    index = {name: i for i, name in enumerate(class_names)}
    labels = [index[test.class_names[label]] for label in test.labels]
    return FolderListing(test.paths, labels, class_names)


def split_folders(root: Path) -> tuple[Path, Path | None]:
    """(train folder, test folder or None): ``root/train`` and ``root/test|val`` if present, else root."""
    if not (root / "train").is_dir():
        return root, None
    for name in TEST_FOLDERS:
        if (root / name).is_dir():
            return root / "train", root / name
    return root / "train", None


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: cannot be read as an image ({err})") from None


def _headers(paths: list[str]) -> tuple[set[str], set[tuple[int, int]]]:
    """The modes and sizes of the images at ``paths``; opening an image reads its header only."""
    modes, sizes = set(), set()
    for path in paths:
        with _open(Path(path)) as image:
            modes.add(image.mode)
            sizes.add(image.size)
    return modes, sizes


def _common_mode_and_size(paths: list[Path], size: int | None, pool: Pool) -> tuple[str, tuple[int, int]]:
    """"L" if every image is grayscale, else "RGB"; and the output (width, height). The headers
    are read by ``pool``'s workers, as the images are decoded (on a network filesystem, opening a
    file costs as much as decoding a small one)."""
    modes, sizes = set(), set()
    for part_modes, part_sizes in pool.map(_headers, _parts([str(p) for p in paths], HEADER_CHUNK), name="read headers"):
        modes |= part_modes
        sizes |= part_sizes
    mode = "L" if modes <= GRAYSCALE_MODES else "RGB"
    if size is not None:
        return mode, (size, size)
    if len(sizes) > 1:
        a, b = sorted(sizes)[:2]
        raise ConfigError(
            "data.image_size", None,
            f"an integer size: the images in {paths[0].parent} differ in size ({a[0]}x{a[1]} and {b[0]}x{b[1]})",
        )
    return mode, sizes.pop()


def _decode(paths: list[str], mode: str, size: int | None, height: int, width: int) -> np.ndarray:
    """uint8 ``(n, C, H, W)``: the images converted to ``mode`` and, if ``size``, centre-cropped and resized."""
    channels = 1 if mode == "L" else 3
    out = np.empty((len(paths), height, width, channels), dtype=np.uint8)
    for i, path in enumerate(paths):
        with _open(Path(path)) as image:
            try:
                image = image.convert(mode)
            except OSError as err:
                raise DataError(f"{path}: cannot be decoded ({err})") from None
            if size is not None:
                image = center_crop_resize(image, size)
            out[i] = np.asarray(image).reshape(height, width, channels)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _parts(items: list, n: int) -> list[list]:
    return [items[i : i + n] for i in range(0, len(items), n)]


@dataclass(frozen=True)
class FolderImages:
    """Images of a folder, not decoded yet: their files and the one mode and size they decode to.
    Choosing images (indexing) decodes none; :meth:`chunks` decodes them in order, in parallel."""

    paths: tuple[Path, ...]
    mode: str
    size: int | None  # centre crop and resize to this square; None: as they are
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), 1 if self.mode == "L" else 3, self.height, self.width)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, idx: torch.Tensor | slice) -> FolderImages:
        paths = self.paths[idx] if isinstance(idx, slice) else tuple(self.paths[i] for i in idx.tolist())
        return dataclasses.replace(self, paths=paths)

    def chunks(self, pool: Pool) -> Iterator[np.ndarray]:
        """uint8 ``(n, C, H, W)`` arrays of ``pool.chunk`` images each, in order."""
        args = (self.mode, self.size, self.height, self.width)
        return pool.map(_decode, _parts([str(p) for p in self.paths], pool.chunk), *args)

    def numpy(self, pool: Pool | None = None) -> np.ndarray:
        """All the images at once, uint8 ``(N, C, H, W)``."""
        parts = list(self.chunks(pool or Pool()))
        return np.concatenate(parts) if parts else np.empty(self.shape, dtype=np.uint8)


def folder_images(paths: list[Path], size: int | None, pool: Pool | None = None) -> FolderImages:
    """The images at ``paths`` as one set: in one mode (L when all are grayscale, else RGB) and
    size, their headers read by ``pool`` (here, when None)."""
    mode, (width, height) = _common_mode_and_size(paths, size, pool or Pool())
    return FolderImages(tuple(paths), mode, size, height, width)
