"""What sizes in the params imply, checked at the door: training steps, set sizes the metrics can
measure, and the memory the points take.

Each check raises :class:`~genlib.errors.ConfigError` naming the key, its value and what is
allowed; :mod:`genlib.config` calls them once the params are typed. The memory estimates count
the data alone: 2D points as float32, an image set as its uint8 pixels twice (the resized copy
and the one in the networks' layout), generated images as float32 twice (the batches and their
concatenation). They are floors of what a stage holds, compared with the ``MemAvailable`` of
``/proc/meminfo``; where that file is not readable the check is skipped. The U-Net's activations
for a batch (:func:`unet_activations`) are an upper estimate, checked by the train and generate
stages against the memory of the device they run on, before they load anything.
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


def check_fits(key: str, value: int, nbytes: int, what: str, available: int | None, where: str = "MemAvailable") -> None:
    """``nbytes`` (``what``, set by ``key``) no more than the memory available (``where``: what says so)."""
    if available is not None and nbytes > available:
        raise ConfigError(key, value, f"a size that fits in memory: {what} take about {_bytes(nbytes)}, "
                                      f"{_bytes(available)} is available ({where})")


LARGE_IMAGE = 1024  # FFHQ's height, the largest of the usual benchmarks: a folder set's images are at most this, as far as blame goes
UINT8_COPIES = 2  # an image set while prepared: resize_images' (N, H, W, C) array and its (N, C, H, W) copy
SAMPLE_COPIES = 2  # generated images: the batches and their concatenation (float32)


def image_set(p, native: dict) -> tuple[tuple[int, int, int] | None, int | None, int | None]:
    """The shape ``(C, H, W)`` and the training and test images an image set's params give, each
    None where unknown before its files are read: ``native`` (``genlib.data.images_spec.NATIVE``)
    knows the built-in sets; a folder has at most 3 channels, ``data.image_size`` square and
    ``data.max_train``/``data.max_test`` images."""
    shape, ntrain, ntest = native.get(p.dataset, ((3, None, None), None, None))
    if p.image_size is not None:
        shape = (shape[0], p.image_size, p.image_size)
    if p.imbalance is not None:
        ntrain = None  # the long tail keeps fewer
    return (shape if shape[1] is not None else None), _capped(ntrain, p.max_train), _capped(ntest, p.max_test)


def _capped(n: int | None, cap: int | None) -> int | None:
    """A set of ``n`` images (None: unknown) after ``data.max_*`` = ``cap`` (None: no cap)."""
    if n is None or cap is None:
        return cap if n is None else n
    return min(n, cap)


def check_image_memory(p, native: dict, nsamples: int, available: int | None) -> None:
    """The image set (its uint8 pixels) and the generated images (float32) within the memory
    available. A set too large is blamed on ``data.image_size`` when it enlarges a built-in
    set's images or exceeds :data:`LARGE_IMAGE`, else on the larger of ``data.max_train`` and
    ``data.max_test`` (None: the set's own size)."""
    shape, ntrain, ntest = image_set(p, native)
    if shape is None:
        return
    pixels = shape[0] * shape[1] * shape[2]
    shown = "x".join(map(str, shape))
    if ntrain is not None and ntest is not None:
        native_height = native.get(p.dataset, ((0, LARGE_IMAGE),))[0][1]
        if p.image_size is not None and p.image_size > native_height:
            key, value = "data.image_size", p.image_size
        else:
            key, value = ("data.max_train", p.max_train) if ntrain >= ntest else ("data.max_test", p.max_test)
        check_fits(key, value, UINT8_COPIES * (ntrain + ntest) * pixels,
                   f"{ntrain} training and {ntest} test images of {shown} (uint8, {UINT8_COPIES} copies while prepared)", available)
    check_fits("eval.nsamples", nsamples, SAMPLE_COPIES * nsamples * pixels * FLOAT32,
               f"{nsamples} generated images of {shown} (float32, {SAMPLE_COPIES} copies)", available)


def unet_activations(shape: tuple[int, ...], p) -> tuple[int, int]:
    """Bytes per image of the U-Net (``genlib.nets.unet``, params ``p``) on float32 images of
    ``shape``: what autograd keeps for the backward pass of a training step, and the most a
    sampling step holds at once.

    Counted block by block, as the network is built. Training: per residual block 3 tensors of
    its input's width and 5 of its output's (norms, activations, the convolutions' inputs, the
    scale and shift), per attention block 7 of its width and the attention weights (heads x
    positions^2, which the plain attention keeps; a fused kernel keeps less), and a convolution's
    input at each down- and upsampling. Against the tensors autograd keeps on the CPU this is
    1.09x to 1.10x on five U-Nets (tests/test_unet.py): an upper estimate of the activations,
    which leaves out the weights, their gradients and the optimizer's state (fixed, not per image).
    Sampling: the skip connections, all alive at the bottom, plus the largest block's own
    tensors (4 of its width, and the attention's weights), not measured.
    """
    c, h, w = shape
    levels = len(p.channel_mult)
    heights = [h // 2**i for i in range(levels)]
    attention = p.attention_resolutions if p.attention_resolutions is not None else tuple(heights[1:2])
    area = {s: s * (w * s // h) for s in heights}
    kept, skipped, largest = c * area[heights[0]], 0, 0

    def block(cin: int, cout: int, s: int, attend: bool) -> None:
        nonlocal kept, largest
        n = area[s]
        weights = p.num_heads * n * n if attend else 0
        kept += (3 * cin + 5 * cout) * n + (7 * cout * n + p.num_heads * n + weights if attend else 0)
        largest = max(largest, 4 * max(cin, cout) * n + (6 * cout * n + weights if attend else 0))

    width = p.channels
    skips = [width]
    skipped += width * area[heights[0]]
    for level, (mult, s) in enumerate(zip(p.channel_mult, heights)):
        for _ in range(p.num_res_blocks):
            block(width, p.channels * mult, s, s in attention)
            width = p.channels * mult
            skips.append(width)
            skipped += width * area[s]
        if level < levels - 1:
            kept += width * area[s]
            skips.append(width)
            skipped += width * area[heights[level + 1]]
    block(width, width, heights[-1], True)  # the middle: residual, attention, residual
    block(width, width, heights[-1], False)
    for level in reversed(range(levels)):
        mult, s = p.channel_mult[level], heights[level]
        for _ in range(p.num_res_blocks + 1):
            block(width + skips.pop(), p.channels * mult, s, s in attention)
            width = p.channels * mult
        if level > 0:
            kept += width * area[heights[level - 1]]
    kept += 3 * width * area[heights[0]]
    return FLOAT32 * kept, FLOAT32 * (skipped + largest)


def check_activations(cfg, shape: tuple[int, ...], training: bool, available: int | None, where: str, per_process: bool = False) -> None:
    """The U-Net's activations (:func:`unet_activations`) for one training batch (``training``)
    or one sampling batch within ``available`` bytes (``where``: what says so); ``per_process``:
    each process's share of the training batch on memory of its own."""
    if cfg.model_net != "unet" or len(shape) != 3:
        return
    train_each, sample_each = unet_activations(shape, cfg.model)
    shown = "x".join(map(str, shape))
    if training:
        t = cfg.training
        n = max(t.batch_size // cfg.run.nproc_per_node, 1) if per_process else t.batch_size
        check_fits("training.batch_size", t.batch_size, n * train_each,
                   f"the U-Net's activations for {n} images of {shown} in training (an upper estimate, {_bytes(train_each)} each)", available, where)
    else:
        e = cfg.eval
        n = min(e.batch_size, e.nsamples)
        check_fits("eval.batch_size", e.batch_size, n * sample_each,
                   f"the U-Net's activations for {n} images of {shown} in sampling (an estimate, {_bytes(sample_each)} each)", available, where)
