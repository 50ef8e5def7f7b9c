"""Methods that are not diffusions: named networks, named optimizers, their own update step.

A family method builds its networks from its own ``params.yaml`` section (``networks``), names an
optimizer for each group of parameters (``optimizers``) and performs the whole update of one
training step (``update``), returning its detached loss terms: ``loss`` (checked for NaN and
logged as the ``loss`` curve), ``grad_norm`` and any others (logged as curves of their own). The
trainer's EMA, checkpoints, resume and NaN restore cover every network and optimizer. Sampling
draws from the prior or the generator; ``eval.reverse_steps`` does not apply.
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from genlib.errors import ConfigError
from genlib.methods.base import Method


class Family(Method):
    steps_itself: ClassVar[bool] = True
    data_kinds: ClassVar[tuple[str, ...]] = ("points",)  # the data its networks take: points, images

    def networks(self, data_shape: tuple[int, ...]) -> nn.ModuleDict:
        raise NotImplementedError

    def optimizers(self, nets: nn.ModuleDict, optim_params) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def update(self, nets: nn.ModuleDict, optimizers, x0: torch.Tensor, generator: torch.Generator,
               grad_clip: float | None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def check_config(self, cfg) -> None:
        """What the families do not support yet, refused before any work."""
        if cfg.data_kind not in self.data_kinds:
            allowed = "a 2D point set" if self.data_kinds == ("points",) else f"a dataset of kind {' or '.join(self.data_kinds)}"
            raise ConfigError("data.dataset", cfg.data.dataset, f"{allowed} (method {self.name} has no networks for {cfg.data_kind})")
        if cfg.run.compile:
            raise ConfigError("run.compile", True, f"false (method {self.name} calls its networks one by one)")

    def check_distributed(self, nproc: int) -> None:
        raise ConfigError("run.nproc_per_node", nproc, f"1: method {self.name} steps its own optimizers (no DDP yet)")


def optimize(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor],
             grad_clip: float | None) -> torch.Tensor:
    """One step of ``optimizer`` down ``loss``, the gradient clipped to ``grad_clip``; its norm."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = nn.utils.clip_grad_norm_(params, grad_clip or math.inf)
    optimizer.step()
    return norm
