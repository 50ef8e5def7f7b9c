"""The optimiser the ``optim:`` section describes, for a method to build over its parameters."""
from __future__ import annotations

import torch


def adamw(params, optim_params, lr: float | None = None, betas: tuple[float, ...] | None = None) -> torch.optim.AdamW:
    """AdamW (Loshchilov & Hutter, ICLR 2019) with ``optim``'s settings, the learning rate and
    betas replaceable by a method's own."""
    o = optim_params
    return torch.optim.AdamW(params, lr=o.lr if lr is None else lr, betas=tuple(o.betas if betas is None else betas),
                             weight_decay=o.weight_decay)
