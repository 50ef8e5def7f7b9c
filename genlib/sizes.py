"""What sizes in the params imply, checked at the door: training steps, set sizes the metrics can
measure, and the memory the points take.

Each check raises :class:`~genlib.errors.ConfigError` naming the key, its value and what is
allowed; :mod:`genlib.config` calls them once the params are typed. The memory estimate counts the
points alone (float32), so it is a floor of what a stage holds, compared with the ``MemAvailable``
of ``/proc/meminfo``; where that file is not readable the check is skipped.
"""
from __future__ import annotations

from pathlib import Path

from genlib.errors import ConfigError

MAX_STEPS = 10**9  # more training steps than this: about 4 months at 100 steps/s, never meant
FLOAT32 = 4
IMAGE_PRC_K = 3  # k of the image precision and recall (genlib.metrics.fidelity); Kynkaanniemi et al. 2019


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches only, so every step sees ``batch_size`` points (at least one step)."""
    return max(n // batch_size, 1)


def check_batch(batch_size: int, n: int, where: str) -> None:
    """A batch no larger than the training set (``where`` names the set's size, e.g. ``data.nsamples = 1024``)."""
    if batch_size > n:
        raise ConfigError("training.batch_size", batch_size, f"at most the {n} training items ({where}); a larger batch would be the whole set")


def check_steps(epochs: int, n: int, batch_size: int) -> int:
    """The total steps, ``epochs * steps_per_epoch``, at most :data:`MAX_STEPS`; returns it."""
    per_epoch = steps_per_epoch(n, batch_size)
    total = epochs * per_epoch
    if total > MAX_STEPS:
        raise ConfigError("training.epochs", epochs, f"at most {MAX_STEPS // per_epoch} ({epochs} epochs of {per_epoch} steps, "
                                                     f"batch {batch_size} of {n} items, are {total:.3g} steps; the bound is {MAX_STEPS:.0e})")
    return total


def check_point_metrics(nsamples: int, ntest: int, k: int, n_mmd: int) -> None:
    """Sizes at which every sample metric of 2D points (:mod:`genlib.metrics.sample_metrics`) is a
    number (``eval.nsamples >= 2`` is checked for every kind of data): two test points for any of
    them, two for the unbiased MMD's ``n (n - 1)``, and ``k + 1`` on each side for the k-NN radii
    behind precision, recall, density and coverage."""
    if ntest < 2:
        raise ConfigError("data.ntest", ntest, "an integer >= 2 (with fewer test points every metric is NaN)")
    if n_mmd < 2:
        raise ConfigError("eval.n_mmd", n_mmd, "an integer >= 2 (the unbiased MMD divides by n (n - 1))")
    if k >= min(nsamples, ntest):
        raise ConfigError("eval.k", k, f"an integer below eval.nsamples = {nsamples} and data.ntest = {ntest} "
                                       f"(k-NN radii need k + 1 points; precision, recall, density and coverage would be NaN)")


def check_image_metrics(nsamples: int, max_test: int | None, kid_subset_size: int | None) -> None:
    """Sizes at which the image metrics (:mod:`genlib.metrics.fidelity`) can be computed, as far as
    the params tell them (the test set's size is known here only from ``data.max_test``):
    ``k + 1`` images on each side for precision and recall, KID subsets within both sets."""
    if nsamples < IMAGE_PRC_K + 1:
        raise ConfigError("eval.nsamples", nsamples, f"an integer >= {IMAGE_PRC_K + 1} on images (precision and recall take k = {IMAGE_PRC_K} neighbours)")
    if max_test is not None and max_test < IMAGE_PRC_K + 1:
        raise ConfigError("data.max_test", max_test, f"null or an integer >= {IMAGE_PRC_K + 1} (precision and recall take k = {IMAGE_PRC_K} neighbours)")
    smaller = min(nsamples, max_test or nsamples)
    if kid_subset_size is not None and not 2 <= kid_subset_size <= smaller:
        raise ConfigError("eval.kid_subset_size", kid_subset_size, f"null or an integer from 2 to {smaller} (the smaller image set)")


def available_memory(meminfo: str | Path = "/proc/meminfo") -> int | None:
    """Bytes the kernel says can be allocated without swapping (``MemAvailable``), or None."""
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return ""


# The exact W1 (POT's network simplex, genlib.metrics.wasserstein) peaked at 5.1 float64 n x n
# matrices (the cost matrix and the solver's arcs) for n = 3000 on this machine: 6 is counted.
EMD_MATRICES = 6


def exact_w1_bytes(n_exact: int, nsamples: int, nref: int) -> tuple[int, int]:
    """The points the exact W1 compares (``n_exact`` capped by both sets) and the bytes it holds."""
    n = min(n_exact, nsamples, nref)
    return n, EMD_MATRICES * 8 * n * n


def check_fits(key: str, value: int, nbytes: int, what: str, available: int | None) -> None:
    """``nbytes`` (``what``, set by ``key``) no more than the memory available."""
    if available is not None and nbytes > available:
        raise ConfigError(key, value, f"a size that fits in memory: {what} take about {_bytes(nbytes)}, "
                                      f"{_bytes(available)} is available (MemAvailable)")
