"""Training sets read from disk a batch at a time (genlib.training.batches): the same batches, in
the same order, as the set held whole, hence the same trained weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlib.config import load
from genlib.errors import DataError
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage, training_set
from genlib.training.batches import AHEAD, FromDisk, OnDevice

from test_config import ROOT
from test_images_data import write_fake_mnist
from test_images_pipeline import TINY_IMAGES

CPU = torch.device("cpu")


def _images(tmp_path, n=37, shape=(3, 4, 5)):
    images = np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)
    path = tmp_path / "train.npy"
    np.save(path, images)
    return path, images


def test_disk_batches_equal_the_whole_sets_through_new_orders_and_restores(tmp_path):
    path, images = _images(tmp_path)
    whole, disk = OnDevice(torch.from_numpy(images)), FromDisk(path, CPU)
    assert (disk.n, disk.item_shape) == (whole.n, whole.item_shape) == (37, (3, 4, 5))
    g = torch.Generator().manual_seed(0)
    first, second = torch.randperm(37, generator=g), torch.randperm(37, generator=g)
    restored = first.clone()  # a NaN restore hands back an equal order in a new tensor, mid-epoch
    # the last batch of 37 in 8s is partial; pos 2 after 4 skips what was read ahead
    calls = [(first, 0), (first, 1), (first, 4), (second, 0), (second, 1), (restored, 2), (restored, 3), (second, 3)]
    try:
        for perm, pos in calls:
            got = disk.batch(perm, pos, 8)
            assert got.dtype == torch.uint8 and torch.equal(got, whole.batch(perm, pos, 8)), (pos, perm is first)
        assert len(disk.pending) <= AHEAD
    finally:
        disk.close()


def test_the_size_bound_chooses_where_the_set_lives(tmp_path):
    path, images = _images(tmp_path)
    near = training_set(path, CPU, whole_mb=1)
    assert isinstance(near, OnDevice) and torch.equal(near.data, torch.from_numpy(images))
    far = training_set(path, CPU, whole_mb=0)
    assert isinstance(far, FromDisk)
    far.close()
    points = tmp_path / "points.npy"
    np.save(points, np.zeros((5, 2), dtype=np.float32))
    assert isinstance(training_set(points, CPU, whole_mb=0), OnDevice)  # points are always held whole


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:20], "not a readable .npy array"),
    (lambda b: b[:-7], "truncated"),
    (lambda b: b"garbage" + b, "not a readable .npy array"),
])
def test_a_damaged_training_file_is_one_line(tmp_path, damage, message):
    path, _ = _images(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message) as err:
        training_set(path, CPU, whole_mb=0)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_training_from_disk_gives_the_weights_of_the_set_on_the_device(tmp_path):
    """Two epochs (a new order each) of 4 steps, with flips and dequantization drawn per batch."""
    write_fake_mnist(tmp_path / "mnist", 300, 60)
    overrides = {**TINY_IMAGES, "method": "ddpm", "data.root": str(tmp_path / "mnist"), "data.max_train": 256,
                 "data.max_test": 60, "data.flip": True}
    weights = []
    for whole_set_mb in (1024, 0):
        cfg = load(ROOT / "params.yaml", {**overrides, "training.epochs": 2, "run.whole_set_mb": whole_set_mb})
        paths = Paths(tmp_path / str(whole_set_mb))
        prepare_data(cfg, paths)
        train_stage(cfg, paths)
        weights.append(torch.load(paths.checkpoint, weights_only=True)["state"]["net"])
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name
