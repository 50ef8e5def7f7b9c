"""Exponential moving averages of the weights, one per rate."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``theta_ema <- rate * theta_ema + (1 - rate) * theta`` after every optimiser step."""

    def __init__(self, model: nn.Module, rates: tuple[float, ...]) -> None:
        self.rates = tuple(rates)
        self.models = {rate: copy.deepcopy(model).eval().requires_grad_(False) for rate in self.rates}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        params = [p.detach() for p in model.parameters()]
        for rate, ema in self.models.items():
            torch._foreach_lerp_(list(ema.parameters()), params, 1.0 - rate)
            for b_ema, b in zip(ema.buffers(), model.buffers()):
                b_ema.copy_(b)

    def state_dict(self) -> dict[str, dict]:
        return {str(rate): ema.state_dict() for rate, ema in self.models.items()}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        for rate, ema in self.models.items():
            ema.load_state_dict(state[str(rate)])
