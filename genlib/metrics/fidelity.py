"""FID, KID and precision/recall of generated images against reference images, through torch-fidelity.

- FID: Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
  equilibrium": the Frechet distance between Gaussians fitted to the two feature sets.
- KID: Binkowski et al. 2018, "Demystifying MMD GANs": unbiased squared MMD with the cubic
  polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets (mean and std).
- Precision and recall: Kynkaanniemi et al. 2019, "Improved precision and recall metric for
  assessing generative models": the fraction of generated images inside the reference k-NN
  manifold, and of reference images inside the generated one.

Two feature spaces. ``classifier``: the penultimate layer of a genlib ``ImageClassifier`` trained on
the data set itself (keys ``fid_clf``, ``kid_clf``, ...: not comparable with published FIDs).
``inception``: torch-fidelity's ``inception-v3-compat``, the TensorFlow FID network, 2048-d pool
features (keys ``fid``, ``kid``, ...); it takes only RGB, so 1-channel images are repeated to 3.
Its weights file is read by genlib with ``weights_only=True``, never by torch-fidelity
(``genlib.metrics.fidelity_extractor.CheckedInceptionV3``).
"""
from __future__ import annotations

import genlib.compat  # noqa: F401  (before torch_fidelity, which imports torchvision)

from pathlib import Path
from typing import Literal

import torch
import torch_fidelity
from torch.utils.data import Dataset

from genlib.errors import ConfigError, DataError
from genlib.metrics._images import check_images
from genlib.metrics._util import numpy_seed
from genlib.metrics.classifier import load_classifier
from genlib.metrics.inception_weights import INCEPTION_FILE, INCEPTION_WEIGHTS_ALLOWED, URL_INCEPTION_V3
from genlib.metrics.fidelity_extractor import CLASSIFIER_EXTRACTOR, INCEPTION_EXTRACTOR, register_extractors
from genlib.sizes import IMAGE_PRC_K

# Rows of the distance matrix computed at once by precision/recall: against 60,000 images a
# (PRC_BATCH, N) block takes 480 MB in float64 (torch-fidelity's default of 10,000 would take 4.8 GB).
PRC_BATCH = 1000

# torch-fidelity's result keys -> ours, before the feature space's suffix.
_KEYS = {
    torch_fidelity.KEY_METRIC_FID: "fid",
    torch_fidelity.KEY_METRIC_KID_MEAN: "kid",
    torch_fidelity.KEY_METRIC_KID_STD: "kid_std",
    torch_fidelity.KEY_METRIC_PRECISION: "precision",
    torch_fidelity.KEY_METRIC_RECALL: "recall",
}


def metric_names(extractor: Literal["classifier", "inception"]) -> list[str]:
    """Keys of ``image_metrics``'s result: ``fid_clf``, ``kid_clf``, ... or ``fid``, ``kid``, ...

    Described in ``genlib.metrics.image_docs``.
    """
    suffix = "_clf" if extractor == "classifier" else ""
    return [f"{name}{suffix}" if name != "kid_std" else f"kid{suffix}_std" for name in _KEYS.values()]


class _Uint8Images(Dataset):
    """A torch-fidelity input: item ``i`` is the bare uint8 (C, H, W) tensor of image ``i``."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def resolve_inception_weights(path: str | Path | None, progress: bool = False) -> str:
    """The local Inception-v3 weights file, checked to exist before any feature is computed (its
    content is checked when it is read, by ``CheckedInceptionV3``, before any feature too).

    A given ``path`` must be an existing file. ``None`` takes torch hub's cached copy (where
    torch-fidelity itself keeps it), downloading it there first if it is missing; a failing download
    (an offline machine) becomes a one-line ``ConfigError``.
    """
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError("eval.inception_weights", str(path), INCEPTION_WEIGHTS_ALLOWED)
        return str(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if not cached.is_file():
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(URL_INCEPTION_V3, str(cached), progress=progress)
        except Exception as err:  # urllib raises URLError, HTTPError, TimeoutError, OSError, ...
            reason = f"{type(err).__name__}: {err}"
            raise ConfigError(
                "eval.inception_weights", None, f"{INCEPTION_WEIGHTS_ALLOWED} (the download failed here: {reason})"
            ) from None
    return str(cached)


def _check_classifier(path: str | Path | None, channels: int) -> str:
    """The classifier checkpoint path, checked to exist and to take ``channels``-channel images."""
    if path is None:
        raise ValueError("extractor 'classifier' needs classifier_path: a checkpoint written by save_classifier")
    classifier, _ = load_classifier(path)  # DataError when missing or unreadable
    if classifier.arch["in_channels"] != channels:
        raise DataError(f"{path}: the classifier takes {classifier.arch['in_channels']}-channel images, not {channels}")
    return str(path)


def _check_sizes(n: int, kid_subset_size: int | None, kid_subsets: int, prc_neighborhood: int) -> int:
    """Validate the metric options against ``n``, the smaller sample size; return the KID subset size."""
    if prc_neighborhood < 1:
        raise ValueError(f"prc_neighborhood must be >= 1, got {prc_neighborhood}")
    if n < prc_neighborhood + 1:
        raise ConfigError("eval.nsamples", n, f"at least {prc_neighborhood + 1} images in each set for precision and recall")
    if kid_subsets < 1:
        raise ConfigError("eval.kid_subsets", kid_subsets, "an integer >= 1")
    # Default: Binkowski et al.'s 1000, but at most half the images, so that the random subsets
    # differ and kid_std says something (subsets of all n images are all the same set).
    size = max(2, min(1000, n // 2)) if kid_subset_size is None else kid_subset_size
    if not 2 <= size <= n:
        allowed = f"null or an integer from 2 to {n} (the smaller image set)"
        raise ConfigError("eval.kid_subset_size", kid_subset_size, allowed)
    return size


def image_metrics(
    generated: torch.Tensor,
    reference: torch.Tensor,
    generator: torch.Generator,
    *,
    extractor: Literal["classifier", "inception"] = "classifier",
    classifier_path: str | Path | None = None,
    inception_weights: str | Path | None = None,
    kid_subset_size: int | None = None,  # None: min(1000, n // 2); 1000 is Binkowski et al.'s and torch-fidelity's
    kid_subsets: int = 100,  # torch-fidelity's default
    prc_neighborhood: int = IMAGE_PRC_K,  # k of the k-NN balls; Kynkaanniemi et al. 2019 use k = 3
    batch_size: int = 128,
    cuda: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """FID, KID (mean, std), precision and recall of uint8 ``generated`` against ``reference`` images.

    Keys as ``metric_names(extractor)``. One draw of ``generator`` seeds KID's random subsets (the
    only random step). The features are computed on the GPU when ``cuda`` is true (Inception-v3 on
    the CPU takes minutes per 10,000 images). torch-fidelity's file cache is off: nothing is written,
    except the Inception weights' download into torch hub's cache (``resolve_inception_weights``).
    """
    generated, reference = check_images(generated, "generated"), check_images(reference, "reference")
    if generated.shape[1:] != reference.shape[1:]:
        shapes = f"{tuple(generated.shape[1:])} and {tuple(reference.shape[1:])}"
        raise ValueError(f"generated and reference images differ in shape: {shapes}")
    n = min(generated.shape[0], reference.shape[0])
    kid_subset_size = _check_sizes(n, kid_subset_size, kid_subsets, prc_neighborhood)
    if extractor == "classifier":
        register_extractors()
        name, weights = CLASSIFIER_EXTRACTOR, _check_classifier(classifier_path, generated.shape[1])
    elif extractor == "inception":
        register_extractors()
        name, weights = INCEPTION_EXTRACTOR, resolve_inception_weights(inception_weights, progress)
        if generated.shape[1] == 1:  # the Inception network takes RGB only
            generated, reference = generated.expand(-1, 3, -1, -1), reference.expand(-1, 3, -1, -1)
    else:
        raise ConfigError("eval.feature_extractor", extractor, "'classifier' or 'inception'")
    result = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(generated),  # input1 is the generated set: precision is measured on it
        input2=_Uint8Images(reference),
        cuda=cuda,
        batch_size=batch_size,
        fid=True,
        kid=True,
        prc=True,
        feature_extractor=name,
        feature_extractor_weights_path=weights,
        kid_subset_size=kid_subset_size,
        kid_subsets=kid_subsets,
        prc_neighborhood=prc_neighborhood,
        prc_batch_size=PRC_BATCH,
        rng_seed=numpy_seed(generator),
        cache=False,
        save_cpu_ram=True,  # no DataLoader worker processes; precision/recall in row blocks
        verbose=progress,
    )
    return {key: float(result[tf_key]) for tf_key, key in zip(_KEYS, metric_names(extractor))}
