"""Folders of images decoded by a pool of processes at prepare_data and written as they are
decoded: the same bytes as the serial decode, and a bad file is still one line naming it."""
from __future__ import annotations

import io as bytes_io

import numpy as np
import pytest
import torch
from PIL import Image

from genlib.config import load
from genlib.data.decode_pool import Pool
from genlib.data.image_folder import folder_images, list_images
from genlib.errors import DataError
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.threads import threads_set
from genlib.registry import DATASETS
from genlib.seeding import generator
from genlib.data.splits import hold_out

from test_config import ROOT
from test_images_pipeline import TINY_IMAGES


def noise_folder(root, n_per_class=7, classes=("a", "b", "c")):
    """RGB and grayscale images of noise in sizes that the centre crop and resize must change."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        for i in range(n_per_class):
            h, w = 10 + (i % 3) * 3, 12 + (k + i) % 4
            pixels = rng.integers(0, 256, (h, w, 3) if i % 2 else (h, w), dtype=np.uint8)
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_the_pool_decodes_the_bytes_of_the_serial_decode_in_order(tmp_path):
    images = folder_images(list_images(noise_folder(tmp_path)).paths, 8)
    assert images.shape == (21, 3, 8, 8)
    serial = images.numpy(Pool(1))
    chunks = list(images.chunks(Pool(2, chunk=4)))
    assert [len(c) for c in chunks] == [4, 4, 4, 4, 4, 1]
    assert np.array_equal(np.concatenate(chunks), serial) and serial.std() > 30  # resized noise, not a constant
    chosen = torch.tensor([20, 3, 3, 0])
    assert np.array_equal(images[chosen].numpy(Pool(2, chunk=1)), serial[chosen.numpy()])


def _folder_cfg(root, **extra):
    return load(ROOT / "params.yaml", {**TINY_IMAGES, "method": "ddpm", "data.dataset": "image_folder", "data.root": str(root),
                                       "data.image_size": 8, "data.max_train": None, "data.max_test": 6, "data.nval": 3,
                                       "eval.kid_subset_size": 3, **extra})


@pytest.fixture
def small_chunks(monkeypatch):
    """Parts of 4 images, so that a set of 21 is decoded by the pool's processes."""
    import genlib.data.decode_pool

    monkeypatch.setattr(genlib.data.decode_pool, "CHUNK", 4)


def test_prepare_data_writes_what_the_serial_decode_gives(tmp_path, small_chunks):
    cfg = _folder_cfg(noise_folder(tmp_path / "folder"))
    splits = DATASETS.get("image_folder")(cfg.data).load(generator(cfg.seed, "data"))
    splits, val = hold_out(splits, cfg.data.nval, generator(cfg.seed, "data/validation"))
    paths = Paths(tmp_path / "run")
    with threads_set(2):  # the stage's threads: two decoding processes
        meta = prepare_data(cfg, paths)
    assert meta["shape"] == [3, 8, 8] and (len(splits.train), len(val), len(splits.test)) == (12, 3, 6)
    for name, items in (("train", splits.train), ("val", val), ("test", splits.test)):
        file = paths.prepared / f"{name}.npy"
        expected = bytes_io.BytesIO()
        np.save(expected, items.numpy(Pool(1)))
        assert file.read_bytes() == expected.getvalue(), name  # the header too: np.save's file


def test_a_file_that_fails_to_decode_in_a_worker_is_one_line(tmp_path, small_chunks):
    root = noise_folder(tmp_path / "folder")
    good = (root / "b" / "3.png").read_bytes()
    (root / "b" / "3.png").write_bytes(good[: len(good) // 2])  # its header reads, its pixels do not
    paths = Paths(tmp_path / "run")
    with threads_set(2), pytest.raises(DataError, match=r"b/3\.png: cannot be decoded") as err:
        prepare_data(_folder_cfg(root, **{"data.nval": 0}), paths)
    assert "\n" not in str(err.value) and not list(paths.prepared.glob(".*.tmp"))


@pytest.fixture
def small_header_parts(monkeypatch):
    """Parts of 4 headers, so that a set of 21 has its headers read by the pool's processes."""
    import genlib.data.image_folder

    monkeypatch.setattr(genlib.data.image_folder, "HEADER_CHUNK", 4)


def test_the_pool_reads_the_headers_the_serial_scan_reads(tmp_path, small_header_parts):
    """The mode (RGB: some images are) and the sizes come from every part: sizes that differ are
    refused whichever parts they are in, with the two smallest named."""
    paths = list_images(noise_folder(tmp_path)).paths
    assert folder_images(paths, 8, Pool(2)) == folder_images(paths, 8, Pool(1))
    assert folder_images(paths, 8, Pool(2)).mode == "RGB"
    gray = [p for i, p in enumerate(paths) if int(p.stem) % 2 == 0]  # the grayscale ones, in several parts
    assert folder_images(gray, 8, Pool(2)).mode == "L"
    with pytest.raises(Exception, match=r"data.image_size.*differ in size \(12x10 and 12x13\)"):
        folder_images(paths, None, Pool(2))


def test_a_file_whose_header_fails_in_a_worker_is_one_line(tmp_path, small_header_parts):
    root = noise_folder(tmp_path / "folder")
    (root / "c" / "5.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"c/5\.png: cannot be read as an image") as err:
        folder_images(list_images(root).paths, 8, Pool(2))
    assert "\n" not in str(err.value)
