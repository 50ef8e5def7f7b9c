"""Methods with networks of their own (VAE, hVAE, GAN), which step their own optimizers.

Such a method builds its networks from its own ``params.yaml`` section (``networks``; the
``model:`` section does not apply), names an optimizer for each group of parameters
(``optimizers``) and performs the whole update of one training step (``update_networks``, under
the run's autocast), returning its detached loss terms: ``loss`` (checked for NaN and logged as
the ``loss`` curve), ``grad_norm`` and any others (logged as curves of their own). The trainer's
EMA, checkpoints, resume and NaN restore cover every network and optimizer. Sampling draws from
the prior or the generator; ``eval.reverse_steps`` does not apply.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from genlib.device import autocast
from genlib.methods.base import Method, StepContext
from genlib.methods.spec import OwnNetworksSpec


class OwnNetworksMethod(OwnNetworksSpec, Method):
    """A method that builds and steps its own networks: it implements ``networks``,
    ``optimizers``, ``update_networks`` and ``sample``, and names the data it takes (its spec)."""

    def networks(self, data_shape: tuple[int, ...]) -> nn.ModuleDict:
        raise NotImplementedError

    def optimizers(self, nets: nn.ModuleDict, optim_params) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def update(self, nets: nn.ModuleDict, optimizers: Mapping[str, torch.optim.Optimizer], x0: torch.Tensor,
               generator: torch.Generator, step: StepContext) -> dict[str, torch.Tensor]:
        """The whole update under autocast: every forward pass of it, the backward passes too."""
        with autocast(step.device, step.precision):
            return self.update_networks(nets, optimizers, x0, generator, step.grad_clip)

    def update_networks(self, nets: nn.ModuleDict, optimizers: Mapping[str, torch.optim.Optimizer], x0: torch.Tensor,
                        generator: torch.Generator, grad_clip: float | None) -> dict[str, torch.Tensor]:
        """One training step of the method's networks on the batch ``x0`` (see :meth:`Method.update`)."""
        raise NotImplementedError


def optimize(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor],
             grad_clip: float | None) -> torch.Tensor:
    """One step of ``optimizer`` down ``loss``, the gradient clipped to ``grad_clip``; its norm."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = nn.utils.clip_grad_norm_(params, grad_clip or math.inf)
    optimizer.step()
    return norm
