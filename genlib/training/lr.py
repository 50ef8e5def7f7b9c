"""Learning-rate schedules as multipliers of ``optim.lr`` by step."""
from __future__ import annotations

import math

import torch


def lr_lambda(schedule: str, total_steps: int, warmup: int, step_size: int, gamma: float, floor: float):
    """``none``: constant; ``step``: times ``gamma`` every ``step_size`` steps; ``cosine``: linear
    warmup over ``warmup`` steps then a half cosine down to ``floor`` (Loshchilov & Hutter, 2017)."""
    if schedule == "none":
        return lambda step: 1.0
    if schedule == "step":
        return lambda step: gamma ** (step // step_size)

    def cosine(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total_steps - warmup, 1), 1.0)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return cosine


def make_scheduler(optimizer: torch.optim.Optimizer, optim_params, total_steps: int, start: int = 0):
    """The schedule of ``optim_params`` over ``total_steps``, at step ``start``: each group's
    learning rate is then its ``initial_lr`` (which it must hold when ``start > 0``) times the
    multiplier at ``start``, as after ``start`` steps of a scheduler built at step 0."""
    p = optim_params
    fn = lr_lambda(p.schedule, total_steps, p.warmup, p.step_size, p.gamma, p.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn, last_epoch=start - 1)
