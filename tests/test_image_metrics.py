"""Tests of the image metrics: the classifier, the torch-fidelity metrics on its features, the
Inception weights check, and the class balance of predicted labels."""
from __future__ import annotations

import gzip
import importlib
import math
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

import genlib.compat  # noqa: F401  (before torch_fidelity, which imports torchvision)
import torch_fidelity
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from genlib.errors import ConfigError, DataError
from genlib.metrics import fidelity, fidelity_extractor
from genlib.metrics.class_balance import KL_PSEUDO_COUNT, class_balance, low_confidence_share, rare_classes
from genlib.metrics.classifier import (
    ImageClassifier,
    accuracy,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from genlib.metrics.fidelity import image_metrics, metric_names, resolve_inception_weights
from genlib.metrics.image_docs import image_metric_docs, image_warnings

MNIST_RAW = Path("/work/shared/datasets/mnist/raw")
SIZE = 16


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def patterns(n: int, seed: int, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` noisy images of 3 classes: top half bright, left half bright, diagonal stripes."""
    g = gen(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    i, j = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    base = torch.stack([i < SIZE // 2, j < SIZE // 2, (i + j) % 4 < 2]).float()
    images = base[labels][:, None] * 150 + torch.rand(n, channels, SIZE, SIZE, generator=g) * 100
    return images.round().to(torch.uint8), labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A classifier trained on 600 pattern images, saved to disk: (model, path)."""
    images, labels = patterns(600, seed=0)
    model, info = train_classifier(images, labels, 3, gen(1), epochs=2, batch_size=64)
    assert info["steps"] == 2 * 10
    path = tmp_path_factory.mktemp("clf") / "classifier.pt"
    save_classifier(path, model, {"dataset": "patterns", "test_accuracy": 1.0})
    return model, path


# ----------------------------------------------------------------------------------------------
# Classifier
# ----------------------------------------------------------------------------------------------


def test_classifier_learns_the_patterns(trained):
    model, _ = trained
    images, labels = patterns(300, seed=5)
    assert accuracy(model, images, labels) > 0.97


@pytest.mark.parametrize("channels,size", [(1, 16), (1, 28), (3, 32), (3, 64)])
def test_classifier_shapes(channels, size):
    model = ImageClassifier(channels, num_classes=10).eval()
    images = torch.zeros(2, channels, size, size, dtype=torch.uint8)
    features, logits = model.features_and_logits(images)
    assert features.shape == (2, 128) and logits.shape == (2, 10)


def test_same_generator_gives_same_weights():
    images, labels = patterns(128, seed=2)
    a, _ = train_classifier(images, labels, 3, gen(7), epochs=1, batch_size=32)
    b, _ = train_classifier(images, labels, 3, gen(7), epochs=1, batch_size=32)
    c, _ = train_classifier(images, labels, 3, gen(8), epochs=1, batch_size=32)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.embed.weight, c.embed.weight)


def test_training_leaves_the_global_rng_alone():
    images, labels = patterns(32, seed=2)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_classifier(images, labels, 3, gen(0), epochs=1, batch_size=32)
    assert torch.equal(torch.rand(3), expected)


def test_save_load_round_trip(trained, tmp_path):
    model, path = trained
    loaded, meta = load_classifier(path)
    assert meta == {"dataset": "patterns", "test_accuracy": 1.0}
    assert loaded.arch == model.arch
    images, _ = patterns(100, seed=3)
    assert torch.equal(predict(loaded, images), predict(model, images))
    assert torch.equal(loaded.features_and_logits(images)[0], model.features_and_logits(images)[0])
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(DataError, match="not a genlib classifier"):
        load_classifier(bad)
    with pytest.raises(DataError, match="not found"):
        load_classifier(tmp_path / "missing.pt")


def test_bad_inputs_are_rejected():
    images, labels = patterns(8, seed=0)
    with pytest.raises(ValueError, match="uint8"):
        train_classifier(images.float(), labels, 3, gen(0))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        train_classifier(images, labels, 2, gen(0))
    with pytest.raises(ValueError, match="channels"):
        predict(ImageClassifier(3, 3), images)


# ----------------------------------------------------------------------------------------------
# torch-fidelity with the classifier's features
# ----------------------------------------------------------------------------------------------


def test_registration_is_idempotent():
    fidelity_extractor.register_extractors()
    fidelity_extractor.register_extractors()
    importlib.reload(fidelity_extractor)  # registers again at import: must not fail
    assert fidelity_extractor.CLASSIFIER_EXTRACTOR in FEATURE_EXTRACTORS_REGISTRY
    assert fidelity_extractor.INCEPTION_EXTRACTOR in FEATURE_EXTRACTORS_REGISTRY


def features(model: ImageClassifier, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.features_and_logits(images)[0].double().numpy()


def test_identical_sets(trained):
    model, path = trained
    images, _ = patterns(200, seed=4)
    out = image_metrics(images, images.clone(), gen(0), classifier_path=path)
    assert list(out) == metric_names("classifier")
    assert all(key.endswith("_clf") or key.endswith("_clf_std") for key in out)
    # FID is tr(S) + tr(S) - 2 tr((S S)^1/2): only float64 round-off of the eigenvalues remains.
    total_variance = np.trace(np.cov(features(model, images), rowvar=False))
    assert abs(out["fid_clf"]) < 1e-9 * total_variance
    assert out["precision_clf"] == 1.0 and out["recall_clf"] == 1.0  # each image is in its own ball


def test_fid_and_kid_match_their_formulas(trained):
    """The registered extractor's penultimate features are what torch-fidelity measures."""
    model, path = trained
    a, _ = patterns(150, seed=10)
    b, _ = patterns(150, seed=11)
    out = image_metrics(a, b, gen(0), classifier_path=path, kid_subset_size=150)
    fa, fb = features(model, a), features(model, b)
    # FID, Heusel et al. 2017, Eq. (6).
    sa, sb = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    covmean = scipy.linalg.sqrtm(sa @ sb).real
    fid = np.sum((fa.mean(0) - fb.mean(0)) ** 2) + np.trace(sa + sb - 2 * covmean)
    assert out["fid_clf"] == pytest.approx(fid, rel=1e-6)
    # KID, Binkowski et al. 2018: unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3; a subset of the
    # whole set is the whole set, so all 100 subsets give this value and the std is 0.
    d, m = fa.shape[1], fa.shape[0]
    k_aa, k_bb, k_ab = [(x @ y.T / d + 1) ** 3 for x, y in ((fa, fa), (fb, fb), (fa, fb))]
    off = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    kid = off - 2 * k_ab.sum() / m**2
    assert out["kid_clf"] == pytest.approx(kid, rel=1e-6)
    assert out["kid_clf_std"] < 1e-6 * abs(kid)


def test_different_sets_are_far_apart(trained):
    _, path = trained
    images, labels = patterns(400, seed=6)
    same = image_metrics(images[:200], images[200:], gen(0), classifier_path=path)
    apart = image_metrics(images[labels == 0], images[labels != 0], gen(0), classifier_path=path)
    assert apart["fid_clf"] > 20 * same["fid_clf"]
    assert apart["kid_clf"] > 20 * abs(same["kid_clf"])
    assert same["precision_clf"] > 0.8 and same["recall_clf"] > 0.8
    assert apart["precision_clf"] < 0.05 and apart["recall_clf"] < 0.05


def test_kid_is_seeded_by_the_generator(trained):
    _, path = trained
    a, _ = patterns(120, seed=12)
    b, _ = patterns(120, seed=13)
    first = image_metrics(a, b, gen(3), classifier_path=path, kid_subset_size=50)
    again = image_metrics(a, b, gen(3), classifier_path=path, kid_subset_size=50)
    other = image_metrics(a, b, gen(4), classifier_path=path, kid_subset_size=50)
    assert first == again
    assert first["kid_clf"] != other["kid_clf"] and first["fid_clf"] == other["fid_clf"]


def test_metric_options_are_checked(trained, tmp_path):
    _, path = trained
    images, _ = patterns(20, seed=0)
    with pytest.raises(ConfigError, match="eval.kid_subset_size"):
        image_metrics(images, images, gen(0), classifier_path=path, kid_subset_size=21)
    with pytest.raises(ConfigError, match="eval.nsamples"):
        image_metrics(images, images[:3], gen(0), classifier_path=path)
    with pytest.raises(ConfigError, match="eval.feature_extractor"):
        image_metrics(images, images, gen(0), extractor="vgg", classifier_path=path)
    with pytest.raises(DataError, match="not found"):
        image_metrics(images, images, gen(0), classifier_path=tmp_path / "none.pt")
    with pytest.raises(DataError, match="1-channel images, not 3"):
        image_metrics(images.expand(-1, 3, -1, -1), images.expand(-1, 3, -1, -1), gen(0), classifier_path=path)


def test_all_metric_names_are_documented():
    docs = image_metric_docs(num_classes=3)
    for key in metric_names("classifier") + metric_names("inception"):
        assert key in docs
    balance = class_balance(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), 3, long_tailed=True)
    assert set(balance) | {"low_confidence_share", "low_confidence_share_ref"} <= set(docs)


# ----------------------------------------------------------------------------------------------
# Inception
# ----------------------------------------------------------------------------------------------


def fail_if_called(*args, **kwargs):
    raise AssertionError("heavy work started before the weights were checked")


def test_missing_inception_weights_fail_fast(monkeypatch, tmp_path):
    monkeypatch.setattr(torch_fidelity, "calculate_metrics", fail_if_called)
    images, _ = patterns(10, seed=0)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="eval.inception_weights") as err:
        image_metrics(images, images, gen(0), extractor="inception", inception_weights=tmp_path / "missing.pth")
    assert time.perf_counter() - start < 1.0
    assert "weights-inception-2015-12-05-6726825d.pth" in str(err.value) and "\n" not in str(err.value)


def test_inception_weights_null_uses_the_hub_cache_or_downloads(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(url, dst, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ConfigError, match="eval.inception_weights.*download failed here: URLError"):
        resolve_inception_weights(None)
    cached = tmp_path / "checkpoints" / fidelity.INCEPTION_FILE
    cached.write_bytes(b"weights")
    assert resolve_inception_weights(None) == str(cached)


def test_inception_path_repeats_gray_images_to_rgb(monkeypatch, tmp_path):
    """The inception branch end to end, with random weights (the real ones cannot be downloaded here)."""
    monkeypatch.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
    monkeypatch.setattr(FeatureExtractorInceptionV3, "INPUT_IMAGE_SIZE", 75)  # smallest valid; 16x faster than 299
    weights = tmp_path / "random.pth"
    torch.save({}, weights)
    images, _ = patterns(6, seed=0)  # 1 channel: fails inside torch-fidelity unless repeated to RGB
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the random Inception weights come from the global RNG
        out = image_metrics(images, images.clone(), gen(0), extractor="inception", inception_weights=weights)
    assert list(out) == ["fid", "kid", "kid_std", "precision", "recall"]
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and math.isfinite(out["fid"])


# ----------------------------------------------------------------------------------------------
# Class balance
# ----------------------------------------------------------------------------------------------


def counts_to_labels(counts: list[int]) -> torch.Tensor:
    return torch.cat([torch.full((c,), k, dtype=torch.int64) for k, c in enumerate(counts)])


def test_class_balance_known_case():
    train = counts_to_labels([40, 30, 20, 10])  # shares 0.4 0.3 0.2 0.1
    pred = counts_to_labels([50, 30, 20, 0])  # shares 0.5 0.3 0.2 0.0: class 3 dropped
    out = class_balance(pred, train, 4, long_tailed=True)
    assert out["class_tv"] == pytest.approx(0.1)
    assert [out[f"class_coverage/{k}"] for k in range(4)] == pytest.approx([1.25, 1.0, 1.0, 0.0])
    assert out["class_worst_coverage"] == 0.0
    # Rare classes: ceil(4/3) = 2 smallest training shares, classes 3 (0.1) and 2 (0.2).
    assert rare_classes(torch.tensor([0.4, 0.3, 0.2, 0.1])) == [2, 3]
    assert out["rare_share_train"] == pytest.approx(0.3)
    assert out["rare_share_gen"] == pytest.approx(0.2)
    assert out["rare_coverage"] == pytest.approx(2 / 3)
    smoothed = (np.array([50, 30, 20, 0]) + KL_PSEUDO_COUNT) / (100 + 4 * KL_PSEUDO_COUNT)
    train_shares = np.array([0.4, 0.3, 0.2, 0.1])
    assert out["class_kl"] == pytest.approx(np.sum(train_shares * np.log(train_shares / smoothed)))
    assert out["class_share_gen/0"] == pytest.approx(0.5) and out["class_share_train/3"] == pytest.approx(0.1)


def test_class_balance_perfect_and_absent_class():
    labels = counts_to_labels([50, 50, 100])
    out = class_balance(labels, labels, 3, long_tailed=True)
    assert out["class_tv"] == 0.0 and out["class_worst_coverage"] == pytest.approx(1.0)
    assert out["rare_share_gen"] == out["rare_share_train"] == pytest.approx(0.25)  # ceil(3/3) = 1: class 0
    # Class 2 never appears in training: its coverage is undefined and it is not counted as rare.
    out = class_balance(counts_to_labels([20, 20, 10]), counts_to_labels([3, 1]), 3, long_tailed=True)
    assert math.isnan(out["class_coverage/2"])
    assert out["class_worst_coverage"] == pytest.approx((2 / 5) / (3 / 4))
    assert out["class_tv"] == pytest.approx(0.5 * (abs(0.4 - 0.75) + abs(0.4 - 0.25) + 0.2))
    assert out["rare_share_train"] == pytest.approx(0.25)  # ceil(2/3) = 1 rare class of the 2 present


def test_class_shares_come_with_their_sampling_spread():
    """Samples drawn with exactly the training shares, 400 times: the spread of each generated
    share and the mean TV are what class_share_sd and class_tv_faithful say (tolerance: 400 draws
    estimate a standard deviation to about 1 / sqrt(800) = 3.5%, and the normal approximation
    of E|share - p| is within a few percent once every n p >= 10)."""
    shares = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    train, n, g = counts_to_labels([500, 300, 150, 50]), 400, gen(0)
    runs = [class_balance(torch.multinomial(shares, n, replacement=True, generator=g), train, 4) for _ in range(400)]
    for k in range(4):
        drawn = torch.tensor([r[f"class_share_gen/{k}"] for r in runs])
        assert float(drawn.std()) == pytest.approx(runs[0][f"class_share_sd/{k}"], rel=0.12), k
        coverage = torch.tensor([r[f"class_coverage/{k}"] for r in runs])
        assert float(coverage.std()) == pytest.approx(runs[0][f"class_coverage_sd/{k}"], rel=0.12), k
    tv = torch.tensor([r["class_tv"] for r in runs])
    assert float(tv.mean()) == pytest.approx(runs[0]["class_tv_faithful"], rel=0.1)
    assert runs[0]["class_min_expected"] == pytest.approx(20.0) and runs[0]["class_samples_needed"] == 200


def test_coverage_is_refused_where_a_class_expects_too_few_samples():
    train = counts_to_labels([900, 90, 10])  # shares 0.9, 0.09, 0.01
    out = class_balance(counts_to_labels([450, 45, 5]), train, 3)  # 500 samples: the rarest expects 5
    assert out["class_min_expected"] == pytest.approx(5.0) and out["class_samples_needed"] == 1000
    assert math.isnan(out["class_coverage/2"]) and math.isnan(out["class_coverage_sd/2"])
    assert math.isnan(out["class_worst_coverage"])
    assert out["class_coverage/1"] == pytest.approx(1.0)  # expects 45: measured
    assert out["class_share_gen/2"] == pytest.approx(0.01)  # the share itself is kept, with its spread
    assert out["class_share_sd/2"] == pytest.approx(math.sqrt(0.01 * 0.99 / 500))
    assert not any(key.startswith("rare_") for key in out)  # a balanced-by-construction set has no rare classes
    rare = class_balance(counts_to_labels([450, 45, 5]), train, 3, long_tailed=True)
    assert rare["rare_share_train"] == pytest.approx(0.01) and math.isnan(rare["rare_coverage"])
    warnings = image_warnings(out)
    assert len(warnings) == 1 and "expects 5.0" in warnings[0] and "eval.nsamples >= 1000" in warnings[0]


def test_low_confidence_share_and_its_warning():
    confidence = torch.tensor([0.99, 0.3, 0.49, 0.5, 0.8])
    assert low_confidence_share(confidence) == pytest.approx(0.4)
    warnings = image_warnings({"low_confidence_share": 0.4, "low_confidence_share_ref": 0.02})
    assert warnings == ["The classifier labels 40% of the samples with probability below 0.5 (2% of the reference images): "
                        "the class balance counts these guesses as classes."]
    assert image_warnings({"low_confidence_share": 0.05, "low_confidence_share_ref": 0.02, "class_min_expected": 12.0}) == []


def test_class_balance_rejects_bad_labels():
    with pytest.raises(ValueError, match="pred_labels"):
        class_balance(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="train_labels must be an integer"):
        class_balance(torch.tensor([0, 1]), torch.tensor([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="empty"):
        class_balance(torch.tensor([], dtype=torch.int64), torch.tensor([0, 1]), 3)


# ----------------------------------------------------------------------------------------------
# Real MNIST digits (skipped where the offline copy is absent)
# ----------------------------------------------------------------------------------------------


def read_idx(path: Path) -> torch.Tensor:
    """An idx file (LeCun's MNIST format): magic (2 zero bytes, dtype, ndim), big-endian sizes, uint8 data."""
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return torch.from_numpy(np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape).copy())


@pytest.mark.skipif(not MNIST_RAW.is_dir(), reason="no offline MNIST copy at /work/shared/datasets/mnist/raw")
def test_classifier_on_real_mnist_digits():
    images = read_idx(MNIST_RAW / "train-images-idx3-ubyte.gz")[:, None]
    labels = read_idx(MNIST_RAW / "train-labels-idx1-ubyte.gz").long()
    test_images = read_idx(MNIST_RAW / "t10k-images-idx3-ubyte.gz")[:2000, None]
    test_labels = read_idx(MNIST_RAW / "t10k-labels-idx1-ubyte.gz")[:2000].long()
    model, _ = train_classifier(images[:6000], labels[:6000], 10, gen(0), epochs=2, batch_size=64)
    # 95.3-96.1% observed over seeds 0-2 (99% with all 60,000 digits); with 2000 test digits the
    # binomial std is ~0.5%, so 0.93 is a wide margin that a broken classifier still cannot reach.
    assert accuracy(model, test_images, test_labels) > 0.93


def test_inception_url_is_torch_fidelitys():
    """The config names the weights without importing torch-fidelity; the names must be its own."""
    import genlib.compat  # noqa: F401  (before torch_fidelity)
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    from genlib.metrics.inception_weights import URL_INCEPTION_V3 as ours

    assert ours == URL_INCEPTION_V3
