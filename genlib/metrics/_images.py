"""Input checks shared by the image metrics: images are uint8 (N, C, H, W), labels int64 (N,)."""
from __future__ import annotations

import torch

_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def check_images(images: torch.Tensor, name: str = "images", channels: int | None = None) -> torch.Tensor:
    """Check that ``images`` is a uint8 (N, C, H, W) tensor with C in (1, 3) (or ``channels``); return it on CPU."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.dtype != torch.uint8:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a uint8 (N, C, H, W) torch.Tensor, got {got}")
    allowed = (1, 3) if channels is None else (channels,)
    if images.shape[1] not in allowed:
        raise ValueError(f"{name} has {images.shape[1]} channels; expected {' or '.join(map(str, allowed))}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return images.detach().cpu()


def check_labels(labels: torch.Tensor, n: int | None, num_classes: int, name: str = "labels") -> torch.Tensor:
    """Check that ``labels`` is an integer (n,) tensor (any length if ``n`` is None) with values in
    [0, num_classes); return it as int64 on CPU."""
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype not in _INTEGER_DTYPES:
        got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"{name} must be an integer (N,) torch.Tensor, got {got}")
    if n is not None and labels.shape[0] != n:
        raise ValueError(f"{name} has {labels.shape[0]} entries but there are {n} images")
    labels = labels.detach().cpu().long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]")
    return labels
