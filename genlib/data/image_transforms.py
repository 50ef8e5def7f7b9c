"""Pixels in and out of the model: uint8 images <-> float32 in ``[-1, 1]``, and square resizing.

``to_model`` dequantizes and rescales, ``to_uint8`` undoes it. The affine map is the usual one
(Ho et al., 2020, Sec. 3.3: data scaled linearly to ``[-1, 1]``). Uniform dequantization adds
``U[0, 1)`` to each integer level and divides by 256 (Theis et al., 2016; Ho et al., 2020), so level
``k`` fills the bin ``[k/256, (k+1)/256)``; ``to_uint8`` maps a value back to the bin it lies in,
that is, it rounds to the nearest bin centre ``(k + 1/2) / 256``. Plain ``x / 255`` levels fall
inside their own bin too (``k/255 * 256 = k + k/255``), so one inverse serves every mode and the
round trip is exact for ``none`` and for ``uniform``.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from genlib.data.images_spec import DEFAULT_DEQUANT_STD

# The uniform offset is drawn on a grid of 2**16 steps in [0, 1): with levels below 2**8, the sum
# level + offset then needs at most 24 significant bits, so it is exact in float32 and can never
# round up into the next level's bin (float32 torch.rand has 24 bits and could).
_UNIFORM_STEPS = 2**16

DEQUANTIZATIONS = ("none", "uniform", "gaussian")


def flip_mask(batch: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """A bool per image, true with probability 1/2: the images to mirror."""
    return torch.rand(batch, generator=generator, device=device) < 0.5


def to_model(
    batch: torch.Tensor,
    generator: torch.Generator,
    dequantization: str = "uniform",
    flip: bool = False,
    dequant_std: float = DEFAULT_DEQUANT_STD,
) -> torch.Tensor:
    """uint8 images ``(B, C, H, W)`` to float32 in ``[-1, 1]``, drawing only from ``generator``.

    ``flip`` mirrors each image along the width with probability 1/2 (Ho et al., 2020, use random
    horizontal flips on CIFAR-10). ``dequantization``: ``none`` is ``x / 255``; ``uniform`` is
    ``(x + u) / 256`` with ``u ~ U[0, 1)``; ``gaussian`` is ``x / 255 + N(0, dequant_std^2)``
    clamped to ``[0, 1]``. The generator must live on the batch's device.
    """
    if batch.dtype != torch.uint8 or batch.ndim != 4:
        raise ValueError(f"to_model takes uint8 images (B, C, H, W), got {batch.dtype} {tuple(batch.shape)}")
    if dequantization not in DEQUANTIZATIONS:
        raise ValueError(f"dequantization must be one of {', '.join(DEQUANTIZATIONS)}, got {dequantization!r}")
    device = batch.device
    if flip:
        mirror = flip_mask(batch.shape[0], generator, device)
        batch = torch.where(mirror[:, None, None, None], batch.flip(-1), batch)
    x = batch.float()
    if dequantization == "uniform":
        steps = torch.randint(0, _UNIFORM_STEPS, x.shape, generator=generator, device=device)
        v = (x + steps.float() / _UNIFORM_STEPS) / 256.0
    elif dequantization == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=device)
        v = (x / 255.0 + dequant_std * noise).clamp(0.0, 1.0)
    else:
        v = x / 255.0
    return 2.0 * v - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Values in ``[-1, 1]`` to uint8: the 256-bin inverse of :func:`to_model`, clamped to 0..255.

    Computed in float64, where ``(x + 1) * 128`` is exact for a float32 ``x``.
    """
    levels = torch.floor((x.double() + 1.0) * 128.0)
    return levels.clamp(0, 255).to(torch.uint8)


def center_crop_resize(image: Image.Image, size: int) -> Image.Image:
    """The largest centred square of ``image``, resized to ``size x size`` (bicubic, antialiased).

    The centre crop is how CelebA and LSUN are brought to a square in DDPM (Ho et al., 2020, App. B).
    """
    w, h = image.size
    side = min(w, h)
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if side == size:
        return image
    return image.resize((size, size), Image.Resampling.BICUBIC)


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` centre-cropped and resized to ``(N, C, size, size)`` with PIL."""
    n, c, h, w = images.shape
    if h == size and w == size:
        return images
    mode = "L" if c == 1 else "RGB"
    out = np.empty((n, size, size, c), dtype=np.uint8)
    pixels = images.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        array = pixels[i, :, :, 0] if c == 1 else pixels[i]
        resized = np.asarray(center_crop_resize(Image.fromarray(array, mode), size))
        out[i] = resized.reshape(size, size, c)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
