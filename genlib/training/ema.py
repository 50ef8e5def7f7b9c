"""Exponential moving averages of the weights, one per rate, with a warm-up of the decay."""
from __future__ import annotations

import copy

import torch
from torch import nn


def warmed_decay(rate: float, step: int) -> float:
    """The decay used at optimiser step ``step`` (1 for the first): ``min(rate, (1 + n) / (10 + n))``.

    The ``num_updates`` rule of TensorFlow's ``tf.train.ExponentialMovingAverage`` (also the EMA of
    Song et al.'s score_sde code), with ``n`` the optimiser steps taken including this one: the
    average forgets the random initial weights within a few steps (the decay is 2/11 at the first
    step, 0.9 at step 80) and reaches ``rate`` at ``n = (10 rate - 1) / (1 - rate)`` (890 steps
    for 0.99, 1790 for 0.995)."""
    return min(rate, (1.0 + step) / (10.0 + step))


class EMA:
    """``theta_ema <- d * theta_ema + (1 - d) * theta`` after every optimiser step, with
    ``d = warmed_decay(rate, step)``. The step is the training state's, so a resumed or restored
    run averages with the same decays as an uninterrupted one."""

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
    def update(self, step: int) -> None:
        """Move towards the current weights of the model this EMA was built from, after optimiser
        step ``step`` (1 for the first)."""
        for rate in self.rates:
            torch._foreach_lerp_(self._targets[rate], self._source, 1.0 - warmed_decay(rate, step))
            if self._source_buffers:
                torch._foreach_copy_(self._target_buffers[rate], self._source_buffers)

    def state_dict(self) -> dict[str, dict]:
        return {str(rate): ema.state_dict() for rate, ema in self.models.items()}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        for rate, ema in self.models.items():
            ema.load_state_dict(state[str(rate)])
