"""Per-sample regression losses and their batch aggregation, shared by the heavy-tailed methods.

With alpha-stable noise the regression target has infinite variance (alpha < 2), so the choice of
penalty matters: squared L2 targets the conditional mean but is dominated by rare huge draws; the
L2 norm (DLPM, Prop. 9) is minimised by a spatial median; smooth L1 (Huber) is quadratic for small
errors and linear for large ones (bench/RESULTS.md compares them on sas_grid).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def per_sample_loss(diff: torch.Tensor, kind: str, huber_beta: float = 1.0) -> torch.Tensor:
    """One loss value per sample of the batch of prediction errors ``diff`` (shape ``(B, ...)``);
    smooth L1 is quadratic for errors below ``huber_beta`` and linear beyond."""
    flat = diff.flatten(1)
    if kind == "l2":
        return flat.norm(dim=1)
    if kind == "squared_l2":
        return flat.pow(2).mean(dim=1)
    return F.smooth_l1_loss(flat, torch.zeros_like(flat), reduction="none", beta=huber_beta).mean(dim=1)


def aggregate(losses: torch.Tensor, how: str, groups: int) -> torch.Tensor:
    """Mean, or median of the means of ``groups`` equal chunks (robust to a heavy-tailed batch)."""
    if how == "mean" or losses.numel() < groups:
        return losses.mean()
    usable = losses[: losses.numel() // groups * groups]
    return usable.view(groups, -1).mean(dim=1).median()
