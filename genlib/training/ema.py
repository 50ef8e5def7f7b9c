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
        # The tensors are updated in place (optimiser, lerp, load_state_dict), so the lists are
        # built once instead of on every step.
        self._source = [p.detach() for p in model.parameters()]
        self._source_buffers = list(model.buffers())
        self._targets = {rate: list(ema.parameters()) for rate, ema in self.models.items()}
        self._target_buffers = {rate: list(ema.buffers()) for rate, ema in self.models.items()}

    @torch.no_grad()
    def update(self) -> None:
        """One step towards the current weights of the model this EMA was built from."""
        for rate in self.rates:
            torch._foreach_lerp_(self._targets[rate], self._source, 1.0 - rate)
            if self._source_buffers:
                torch._foreach_copy_(self._target_buffers[rate], self._source_buffers)

    def state_dict(self) -> dict[str, dict]:
        return {str(rate): ema.state_dict() for rate, ema in self.models.items()}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        for rate, ema in self.models.items():
            ema.load_state_dict(state[str(rate)])
