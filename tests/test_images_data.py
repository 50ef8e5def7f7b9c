"""Image datasets: idx reading, real MNIST, long tails, caps, folders, CIFAR-10 plumbing, transforms."""
from __future__ import annotations

import dataclasses
import gzip
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlib.config import from_dict
from genlib.data.idx import read_idx
from genlib.data.image_folder import FolderImages
from genlib.data.image_transforms import to_model, to_uint8
from genlib.data.images import Cifar10LT, ImageParams
from genlib.data.subsample import long_tail_counts
from genlib.errors import ConfigError, DataError
from genlib.params import build
from genlib.registry import DATASETS

MNIST_RAW = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist" / "raw"
MNIST_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
needs_mnist = pytest.mark.skipif(not MNIST_RAW.is_dir(), reason=f"real MNIST not found at {MNIST_RAW}")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def load(dataset: str, seed: int = 0, **fields):
    """The splits, a folder's images decoded (prepare_data decodes them as it writes them)."""
    splits = DATASETS.get(dataset)(ImageParams(dataset=dataset, **fields)).load(gen(seed))
    if isinstance(splits.train, FolderImages):
        decoded = {name: torch.from_numpy(getattr(splits, name).numpy()) for name in ("train", "test")}
        splits = dataclasses.replace(splits, **decoded)
    return splits


# ---------------------------------------------------------------------------------------------
# idx files
# ---------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_fake_mnist(folder: Path, n_train: int, n_test: int, gz: bool = True) -> None:
    """Images whose every pixel is ``10 * (i % 25) + label``, so an image names its own label."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = (10 * (np.arange(n) % 25) + labels)[:, None, None] * np.ones((1, 28, 28), dtype=np.int64)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = idx_bytes(array)
            path = folder / f"{prefix}-{kind}-ubyte"
            if gz:
                path.with_name(path.name + ".gz").write_bytes(gzip.compress(data))
            else:
                path.write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(array)
    path = tmp_path / "a-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if gz else data)
    np.testing.assert_array_equal(read_idx(path, ndim=3), array)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda d: b"\x01" + d[1:], "first two bytes"),
        (lambda d: d[:2] + b"\x0d" + d[3:], "type byte"),
        (lambda d: d[:-1], "bytes, but"),
        (lambda d: d + b"\x00", "bytes, but"),
        (lambda d: d[:6], "header"),
        (lambda d: gzip.compress(d)[:-8], "gzip"),
    ],
)
def test_idx_reader_rejects_corrupt_files(tmp_path, corrupt, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(corrupt(idx_bytes(np.zeros((2, 3, 4), dtype=np.uint8))))
    with pytest.raises(DataError, match=message) as info:
        read_idx(path, ndim=3)
    assert str(path) in str(info.value)


def test_idx_reader_rejects_wrong_rank(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(DataError, match="rank 1; expected rank 3"):
        read_idx(path, ndim=3)


def test_images_and_labels_of_different_lengths_are_rejected(tmp_path):
    write_fake_mnist(tmp_path, 20, 10, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(19, dtype=np.uint8)))
    with pytest.raises(DataError, match="20 images but .* 19 labels"):
        load("mnist", root=str(tmp_path))


# ---------------------------------------------------------------------------------------------
# Real MNIST
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist():
    if not MNIST_RAW.is_dir():
        pytest.skip(f"real MNIST not found at {MNIST_RAW}")
    return load("mnist", root=str(MNIST_RAW))


def test_local_mnist_has_the_published_shapes_labels_and_counts(mnist):
    assert mnist.train.shape == (60000, 1, 28, 28) and mnist.train.dtype == torch.uint8
    assert mnist.test.shape == (10000, 1, 28, 28) and mnist.test.dtype == torch.uint8
    assert mnist.train_labels.dtype == torch.int64
    assert mnist.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.bincount(mnist.train_labels).tolist() == MNIST_COUNTS
    assert len(mnist.test_labels) == 10000
    assert mnist.num_classes == 10 and mnist.class_names == [str(d) for d in range(10)]
    assert mnist.data_shape == (1, 28, 28)
    assert int(mnist.train.min()) == 0 and int(mnist.train.max()) == 255


@needs_mnist
def test_mnist_lt_keeps_the_long_tail_counts_of_the_smallest_class(mnist):
    lt = load("mnist", root=str(MNIST_RAW), imbalance=100.0)
    expected = long_tail_counts(min(MNIST_COUNTS), 10, 100.0)
    assert expected[0] == 5421 and expected[-1] == 54
    assert torch.bincount(lt.train_labels, minlength=10).tolist() == expected
    assert torch.equal(lt.test_labels, mnist.test_labels)  # the test set stays balanced and whole


@needs_mnist
def test_mnist_from_torchvision_layout_and_resized(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_RAW.iterdir():
        (raw / f.name).symlink_to(f)
    small = load("mnist", root=str(tmp_path), max_train=50, max_test=20, image_size=32)
    assert small.train.shape == (50, 1, 32, 32) and small.test.shape == (20, 1, 32, 32)


# ---------------------------------------------------------------------------------------------
# Long tail and caps
# ---------------------------------------------------------------------------------------------


def test_long_tail_counts_match_cifar10_lt():
    # Cao et al. (2019), as used by LIM and DLPM.
    assert long_tail_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert long_tail_counts(5000, 10, 1) == [5000] * 10
    assert long_tail_counts(7, 1, 100) == [7]


def test_caps_and_long_tail_keep_images_paired_with_labels(tmp_path):
    write_fake_mnist(tmp_path, 1000, 300)
    s = load("mnist", root=str(tmp_path), imbalance=10.0, max_train=200, max_test=50)
    assert len(s.train) == 200 and len(s.test) == 50
    for images, labels in ((s.train, s.train_labels), (s.test, s.test_labels)):
        assert torch.equal(images[:, 0, 0, 0].long() % 10, labels)
        assert (images == images[:, :1, :1, :1]).all()  # whole images moved, not pixels
    assert torch.bincount(s.train_labels, minlength=10)[0] > torch.bincount(s.train_labels, minlength=10)[9]


def test_subsampling_is_seeded(tmp_path):
    write_fake_mnist(tmp_path, 1000, 300)
    fields = dict(root=str(tmp_path), imbalance=10.0, max_train=300, max_test=30)
    a, b, c = load("mnist", 1, **fields), load("mnist", 1, **fields), load("mnist", 2, **fields)
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert not torch.equal(a.train, c.train)
    assert a.meta["imbalance"] == 10.0 and load("mnist", 1, root=str(tmp_path)).meta["imbalance"] is None


def test_a_training_set_without_a_class_of_the_test_set_is_refused(tmp_path):
    """100 of the long tail's 440 images keep about 2 of class 9: here none, so it is an error."""
    write_fake_mnist(tmp_path, 1000, 300)
    with pytest.raises(DataError, match=r"^mnist in .*: the test set has classes the 100 training images lack: 9 \(9\); "
                                        r"raise data.max_train \(now 100\) or lower data.imbalance \(now 10.0\)$"):
        load("mnist", 2, root=str(tmp_path), imbalance=10.0, max_train=100, max_test=30)


def test_caps_above_the_set_size_keep_everything(tmp_path):
    write_fake_mnist(tmp_path, 40, 20)
    s = load("mnist", root=str(tmp_path), max_train=10**6, max_test=10**6)
    assert len(s.train) == 40 and len(s.test) == 20


# ---------------------------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------------------------


def every_level(repeats: int) -> torch.Tensor:
    """Each uint8 level ``repeats`` times, as a (repeats, 1, 16, 16) batch."""
    return torch.arange(256, dtype=torch.uint8).repeat(repeats).reshape(repeats, 1, 16, 16)


def test_no_dequantization_is_the_affine_map_and_round_trips():
    x = every_level(2)
    y = to_model(x, gen(), dequantization="none")
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, 2 * x.float() / 255 - 1, rtol=0, atol=1e-6)
    assert y.min() == -1 and y.max() == 1
    assert torch.equal(to_uint8(y), x)


def test_uniform_dequantization_fills_each_bin_and_round_trips():
    x = every_level(400)
    y = to_model(x, gen(), dequantization="uniform")
    assert y.min() >= -1 and y.max() < 1
    assert torch.equal(to_uint8(y), x)
    offset = (y.double() + 1) * 128 - x.double()  # u in [0, 1)
    n = offset.numel()
    assert abs(offset.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(offset.var().item() - 1 / 12) < 0.005


def test_to_uint8_keeps_the_top_of_every_bin_and_clamps():
    levels = torch.arange(256, dtype=torch.float32)
    top = 2 * ((levels + 65535 / 65536) / 256) - 1  # the largest uniform offset to_model draws
    assert torch.equal(to_uint8(top), levels.to(torch.uint8))
    assert to_uint8(torch.tensor([-3.0, 1.0, 5.0])).tolist() == [0, 255, 255]


def test_gaussian_dequantization_has_the_asked_std_and_stays_in_range():
    x = torch.full((64, 3, 16, 16), 128, dtype=torch.uint8)
    y = to_model(x, gen(), dequantization="gaussian", dequant_std=0.01)
    residual = (y + 1) / 2 - 128 / 255
    n = residual.numel()
    assert abs(residual.std().item() - 0.01) < 0.01 * 5 / math.sqrt(2 * n)
    extremes = to_model(torch.tensor([0, 255], dtype=torch.uint8).reshape(2, 1, 1, 1).repeat(1, 1, 8, 8), gen(),
                        dequantization="gaussian", dequant_std=0.1)
    assert extremes.min() >= -1 and extremes.max() <= 1


def test_flip_mirrors_about_half_the_images_exactly():
    x = torch.randint(0, 256, (200, 3, 8, 8), generator=gen(5), dtype=torch.uint8)
    out = to_uint8(to_model(x, gen(), dequantization="none", flip=True))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all()
    assert 60 < int(mirrored.sum()) < 140
    assert torch.equal(out, to_uint8(to_model(x, gen(), dequantization="none", flip=True)))
    assert torch.equal(to_uint8(to_model(x, gen(), dequantization="none", flip=False)), x)


def test_dataset_to_model_applies_its_params(tmp_path):
    write_fake_mnist(tmp_path, 20, 10)
    p = ImageParams(dataset="mnist", root=str(tmp_path), dequantization="none", flip=False)
    ds = DATASETS.get("mnist")(p)
    batch = ds.load(gen()).train
    assert torch.equal(ds.to_model(batch, gen()), to_model(batch, gen(), dequantization="none"))


# ---------------------------------------------------------------------------------------------
# Folders of images
# ---------------------------------------------------------------------------------------------


def save_png(path: Path, value: int, size: tuple[int, int] = (12, 12), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fill = value if mode == "L" else (value, 255 - value, 7)
    Image.new(mode, size, fill).save(path)


def test_labelled_folder_holds_out_a_seeded_test_set(tmp_path):
    for label, name in enumerate(["cat", "dog", "eel"]):
        for i in range(10):
            save_png(tmp_path / name / f"{i}.png", 10 * label + i)
    s = load("image_folder", root=str(tmp_path), max_test=6)
    assert s.class_names == ["cat", "dog", "eel"] and s.num_classes == 3
    assert s.train.shape == (24, 3, 12, 12) and s.test.shape == (6, 3, 12, 12)
    images = torch.cat([s.train, s.test])
    labels = torch.cat([s.train_labels, s.test_labels])
    assert torch.equal(images[:, 0, 0, 0].long() // 10, labels)
    assert len(set(images[:, 0, 0, 0].tolist())) == 30  # train and test are disjoint
    again = load("image_folder", root=str(tmp_path), max_test=6)
    assert torch.equal(again.test, s.test)


def test_flat_grayscale_folder_is_unlabelled_and_single_channel(tmp_path):
    for i in range(20):
        save_png(tmp_path / f"{i:02d}.png", i, mode="L")
    s = load("image_folder", root=str(tmp_path))
    assert s.train_labels is None and s.num_classes is None and s.class_names is None
    assert s.train.shape == (18, 1, 12, 12) and s.test.shape == (2, 1, 12, 12)  # 10% held out


def test_train_and_test_folders_share_class_numbers(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        for name in ("a", "b"):
            for i in range(n):
                save_png(tmp_path / split / name / f"{i}.png", 100 if name == "b" else 0)
    save_png(tmp_path / "train" / "c" / "0.png", 200)  # a class absent from test
    s = load("image_folder", root=str(tmp_path))
    assert len(s.train) == 9 and len(s.test) == 4
    assert torch.equal(s.test[:, 0, 0, 0].long() // 100, s.test_labels)


def test_mixed_sizes_need_image_size_and_mixed_modes_give_rgb(tmp_path):
    save_png(tmp_path / "a.png", 10, size=(12, 12), mode="L")
    save_png(tmp_path / "b.png", 20, size=(20, 16))
    save_png(tmp_path / "c.png", 30, size=(16, 20))
    with pytest.raises(ConfigError, match="data.image_size.*differ in size"):
        load("image_folder", root=str(tmp_path), max_test=1)
    s = load("image_folder", root=str(tmp_path), max_test=1, image_size=8)
    assert s.train.shape == (2, 3, 8, 8) and s.test.shape == (1, 3, 8, 8)


def test_named_folder_sets_read_folders(tmp_path):
    for i in range(4):
        save_png(tmp_path / f"{i}.png", i)
    for name in ("celeba", "lsun", "ffhq", "imagenet"):
        assert DATASETS.get(name).kind == "images"
        assert load(name, root=str(tmp_path), max_test=1, image_size=4).train.shape == (3, 3, 4, 4)


def test_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.root"):
        load("image_folder", root=str(tmp_path / "absent"))
    save_png(tmp_path / "flat" / "a.png", 1)
    save_png(tmp_path / "flat" / "b.png", 2)
    with pytest.raises(ConfigError, match="data.imbalance"):
        load("image_folder", root=str(tmp_path / "flat"), imbalance=10.0)
    save_png(tmp_path / "mixed" / "a.png", 1)
    save_png(tmp_path / "mixed" / "cls" / "b.png", 2)
    with pytest.raises(DataError, match="both image files and subfolders"):
        load("image_folder", root=str(tmp_path / "mixed"))
    (tmp_path / "flat" / "c.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="c.png"):
        load("image_folder", root=str(tmp_path / "flat"), max_test=1)


# ---------------------------------------------------------------------------------------------
# CIFAR-10 (torchvision's reader on a small fake of its folder; the md5 check is bypassed)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    import genlib.compat  # noqa: F401
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rows = np.arange(32 * 32 * 3) % 256
    for name, n in [(f"data_batch_{i}", 40) for i in range(1, 6)] + [("test_batch", 20)]:
        labels = [i % 10 for i in range(n)]
        data = np.stack([rows] * n).astype(np.uint8)
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}))
    names = [f"class{i}" for i in range(10)]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return tmp_path


def test_cifar10_is_read_channels_first(fake_cifar):
    s = load("cifar10", root=str(fake_cifar))
    assert s.train.shape == (200, 3, 32, 32) and s.test.shape == (20, 3, 32, 32)
    expected = torch.from_numpy((np.arange(32 * 32 * 3) % 256).astype(np.uint8)).reshape(3, 32, 32)
    assert torch.equal(s.train[0], expected)  # CIFAR stores each image as R plane, G plane, B plane
    assert s.class_names == [f"class{i}" for i in range(10)]
    assert torch.bincount(s.train_labels).tolist() == [20] * 10


def test_cifar10_lt_defaults_to_imbalance_100(fake_cifar):
    assert Cifar10LT(ImageParams(dataset="cifar10_lt", root="x")).imbalance == 100.0
    assert Cifar10LT(ImageParams(dataset="cifar10_lt", root="x", imbalance=10.0)).imbalance == 10.0
    s = load("cifar10_lt", root=str(fake_cifar), imbalance=10.0)
    assert torch.bincount(s.train_labels, minlength=10).tolist() == long_tail_counts(20, 10, 10)
    # 20 images a class: imbalance 100 keeps none of classes 6 to 9 (long_tail_counts floors)
    with pytest.raises(DataError, match=r"lack: 6 \(class6\), 7 \(class7\), 8 \(class8\), 9 \(class9\); lower data.imbalance \(now 100.0\)$"):
        load("cifar10_lt", root=str(fake_cifar))


# ---------------------------------------------------------------------------------------------
# Params
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset, fields, key",
    [
        ("mnist", {"root": ""}, "data.root"),
        ("mnist", {"image_size": 0}, "data.image_size"),
        ("mnist", {"max_train": -1}, "data.max_train"),
        ("mnist", {"max_test": 0}, "data.max_test"),
        ("mnist", {"imbalance": 0.5}, "data.imbalance"),
        ("mnist", {"dequantization": "logit"}, "data.dequantization"),
        ("mnist", {"dequant_std": 0.0}, "data.dequant_std"),
        ("mnist", {"flip": "yes"}, "data.flip"),
        ("mnist", {"colour": True}, "data.colour"),
        ("image_folder", {"download": True}, "data.download"),
        ("celeba", {"root": ""}, "data.root"),
    ],
)
def test_bad_params_name_the_key(dataset, fields, key):
    raw = {"dataset": dataset, "root": "somewhere", **fields}
    with pytest.raises(ConfigError) as info:
        p = build(ImageParams, raw, "data.")
        DATASETS.get(dataset)(p)
    assert info.value.key == key and "\n" not in str(info.value)


def test_constructor_checks_a_directly_built_instance():
    with pytest.raises(ConfigError, match="data.image_size"):
        DATASETS.get("mnist")(ImageParams(root="x", image_size=-3))


def test_missing_files_without_download_say_what_to_do(tmp_path):
    for dataset in ("mnist", "fashion_mnist", "cifar10"):
        with pytest.raises(ConfigError, match="data.root.*data.download: true") as info:
            load(dataset, root=str(tmp_path))
        assert "\n" not in str(info.value)


def test_dataset_kinds():
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar10_lt", "image_folder"):
        assert DATASETS.get(name).kind == "images" and DATASETS.get(name).Params is ImageParams
    assert DATASETS.get("sas_grid").kind == "points"


def test_config_accepts_mnist_with_a_unet():
    raw = {
        "seed": 0,
        "method": "ddpm",
        "data": {"dataset": "mnist", "root": "../shared/datasets/mnist/raw"},
        "model": {"net": "unet", "channels": 32},
    }
    cfg = from_dict(raw)
    assert isinstance(cfg.data, ImageParams) and cfg.data.root == "../shared/datasets/mnist/raw"
    assert cfg.model_net == "unet" and cfg.model.channels == 32
    resolved = cfg.to_dict()
    assert resolved["data"]["dequantization"] == "uniform" and resolved["model"]["channel_mult"] == [1, 2, 2]
    assert from_dict({**resolved, "data": resolved["data"]}).data == cfg.data
    with pytest.raises(ConfigError, match="data.imbalance"):
        from_dict({**raw, "data": {**raw["data"], "imbalance": 0}})
