"""Methods with networks of their own (VAE, hVAE, GAN), which step their own optimizers.

Such a method builds its networks from its own ``params.yaml`` section (``networks``; the
``model:`` section does not apply), names an optimizer for each group of parameters
(``optimizers``) and performs the whole update of one training step (``update_networks``, under
the run's autocast), returning its detached loss terms: ``loss`` (checked for NaN and logged as
the ``loss`` curve), ``grad_norm`` and any others (logged as curves of their own). The trainer's
EMA, checkpoints, resume and NaN restore cover every network and optimizer. Sampling draws from
the prior or the generator; ``eval.reverse_steps`` does not apply.

Several processes (:mod:`genlib.training.distributed`) hand each method the whole batch and a
:class:`Share` of it: the method runs its networks on its rows, draws every random number for the
whole batch and keeps its rows' part, and its losses are means over its rows. ``optimize``
averages the gradients over the processes before clipping them (an all-reduce, not DDP: DDP
wraps one forward pass, where these updates call several networks, several times, and the R1
penalty differentiates a gradient), which is the gradient of the whole batch's mean. The weights
then stay equal on every process, and to one process's up to the order of float additions. A
method whose update does this says so with ``splits_batch`` (its spec).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.distributed as dist
from torch import nn

from genlib.device import autocast
from genlib.methods.base import Method, StepContext
from genlib.methods.spec import OwnNetworksSpec


@dataclass(frozen=True)
class Share:
    """This process's rows of a training batch of ``size`` rows: ``rows``, or all of them (``None``,
    one process)."""

    size: int
    rows: slice | None = None

    def of(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's rows of a tensor over the whole batch."""
        return batch if self.rows is None else batch[self.rows]

    def randn(self, tail: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Standard normal noise of shape ``(rows, *tail)``: drawn for the whole batch, so that N
        processes draw what one does, and cut to the rows."""
        whole = torch.randn((self.size, *tail), generator=generator, device=generator.device, dtype=dtype)
        return self.of(whole)

    def rand(self, tail: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Uniform noise on ``[0, 1)`` of shape ``(rows, *tail)``, drawn for the whole batch as :meth:`randn`."""
        return self.of(torch.rand((self.size, *tail), generator=generator, device=generator.device, dtype=dtype))

    def mean(self, local: torch.Tensor) -> torch.Tensor:
        """The whole batch's mean, from ``local``, the mean over this process's rows (detached; the
        processes' rows are equally many)."""
        if self.rows is None:
            return local.detach()
        total = local.detach().clone()
        dist.all_reduce(total)
        return total / dist.get_world_size()

    def average_grads(self, params: list[torch.Tensor]) -> None:
        """Replace each gradient of ``params`` by its mean over the processes, in one all-reduce."""
        grads = [p.grad for p in params if p.grad is not None]
        if self.rows is None or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))


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
            return self.update_networks(nets, optimizers, x0, generator, step.grad_clip, Share(x0.shape[0], step.shard))

    def update_networks(self, nets: nn.ModuleDict, optimizers: Mapping[str, torch.optim.Optimizer], x0: torch.Tensor,
                        generator: torch.Generator, grad_clip: float | None, share: Share) -> dict[str, torch.Tensor]:
        """One training step of the method's networks on ``share``'s rows of the batch ``x0`` (see
        :meth:`Method.update`); the loss terms are means over those rows."""
        raise NotImplementedError


def optimize(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor],
             grad_clip: float | None, share: Share) -> torch.Tensor:
    """One step of ``optimizer`` down ``loss``, the gradient averaged over the processes and
    clipped to ``grad_clip``; its norm."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    share.average_grads(params)
    norm = nn.utils.clip_grad_norm_(params, grad_clip or math.inf)
    optimizer.step()
    return norm
