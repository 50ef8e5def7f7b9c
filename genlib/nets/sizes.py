"""Image sizes the convolutional networks can halve through, checked without torch (at the door
for a fixed ``data.image_size``, when the networks are built for a native size)."""
from __future__ import annotations

from genlib.errors import ConfigError


def bottom_size(data_shape: tuple[int, ...], levels: int, key: str) -> tuple[int, int]:
    """``(H, W) / 2**levels``; ConfigError naming ``key`` if the image cannot be halved that often."""
    if len(data_shape) != 3:
        raise ConfigError(key, levels, f"a setting for images (C, H, W); got data shape {tuple(data_shape)}")
    _, h, w = data_shape
    factor = 2**levels
    if h % factor or w % factor:
        fits = [n for n in range(1, 7) if h % 2**n == 0 and w % 2**n == 0]
        allowed = f"one of {', '.join(map(str, fits))}" if fits else "none fits: resize with data.image_size"
        raise ConfigError(key, levels, f"a number of halvings {h}x{w} images take ({allowed})")
    return h // factor, w // factor


def check_image_size(cfg, levels: int, key: str) -> None:
    """At the door, when ``data.image_size`` fixes the size; a native size is checked when the
    networks are built (the start of ``train``), as the U-Net's."""
    size = cfg.data.image_size if cfg.data_kind == "images" else None
    if size is not None:
        bottom_size((1, size, size), levels, key)
