"""The method interface: a method owns the math, the network is passed into every call.

``loss(net, x0, generator)`` returns a scalar training loss for a batch of data;
``sample(net, shape, steps, generator, options)`` runs a reverse process from noise. The loss is
written in two parts, ``corrupt`` (every random draw: the times, the noise, the network's input
and target) and ``batch_loss`` (the penalty on the network's output), so that several training
processes can draw the corruption of the whole batch alike and each run the network on its share
(:meth:`Method.shard_loss`, :mod:`genlib.training.distributed`). A network maps ``(x, t)`` to an
output of ``x``'s shape, ``t`` being the time rescaled to ``[0, 1]``; it knows nothing of noise.
The trainer knows nothing of either's insides.

Every hook the stages and the trainer call is declared here with its default (the config checks
on the method's spec, :mod:`genlib.methods.spec`, which ``genlib check`` reads without torch),
which is what a diffusion method needs: the ``model:`` section's network (``networks`` is
``None``), one AdamW over it (``optimizers``) and the step down ``loss`` (``update``). A method with networks of its
own (:mod:`genlib.methods.own_networks`: VAE, hVAE, GAN, ``own_networks``) overrides the three.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn

from genlib.device import autocast
from genlib.errors import ConfigError
from genlib.methods.schedules import StableSchedule
from genlib.methods.spec import MethodSpec, SampleOptions
from genlib.optim import adamw

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | nn.Module


@dataclass(frozen=True)
class StepContext:
    """What the training loop hands :meth:`Method.update` besides the networks and the batch."""

    model: Net  # the network as the forward pass calls it (DDP, compiled); the update steps the plain one
    shard: slice | None = None  # this process's rows of the batch; None: one process, the whole batch
    sync: bool = True  # the loop reads the loss and the gradient norm at this step
    grad_clip: float | None = None  # training.grad_clip
    device: torch.device = torch.device("cpu")  # and run.precision: the autocast of the forward pass
    precision: str = "fp32"
    step: int = 1  # the training step being taken, from 1 (a method's per-step schedule reads it)


class Method(MethodSpec):
    """Base class: the spec (:mod:`genlib.methods.spec`: ``Params``, ``samplers``, the checks)
    and the math; a built-in method inherits its own spec first."""

    def __init__(self, params) -> None:
        super().__init__(params)
        self._schedules: dict[tuple[int, str], StableSchedule] = {}

    def networks(self, data_shape: tuple[int, ...]) -> nn.ModuleDict | None:
        """The method's own named networks, or ``None`` for the ``model:`` section's network."""
        return None

    def optimizers(self, net: nn.Module, optim_params) -> dict[str, torch.optim.Optimizer]:
        """The named optimizers of the networks (each gets its own ``optim.schedule``): one AdamW."""
        return {"net": adamw(net.parameters(), optim_params)}

    def update(self, net: nn.Module, optimizers: Mapping[str, torch.optim.Optimizer], x0: torch.Tensor,
               generator: torch.Generator, step: StepContext) -> dict[str, torch.Tensor]:
        """One training step on the batch ``x0``; the loss terms, detached: ``loss`` (checked for
        NaN and logged), ``grad_norm`` (needed at a sync step) and any others (logged as curves).

        The diffusion step: this process's loss under autocast, its gradient (DDP averages it over
        the processes), clipped to ``grad_clip``, and a step of the optimizers. Without clipping
        the norm is only checked and logged, so it is computed at sync steps alone."""
        with autocast(step.device, step.precision):
            loss = self.shard_loss(step.model, x0, generator, step.shard)
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        terms = {"loss": loss.detach()}
        if step.grad_clip is not None or step.sync:
            terms["grad_norm"] = nn.utils.clip_grad_norm_(net.parameters(), step.grad_clip or math.inf)
        for opt in optimizers.values():
            opt.step()
        return terms

    def extra_metrics(self, nets, test: torch.Tensor, generator: torch.Generator, eval_params) -> dict[str, float]:
        """Metrics the method computes on the test set itself (``evaluates_networks``); none."""
        return {}

    def elbo(self, nets, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per point of ``x`` (the network's input), the ELBO at beta = 1 with one draw of the
        latents: a likelihood family's (``likelihood_family``) validation metric during training."""
        raise NotImplementedError(f"method {self.name} has no ELBO")

    @property
    def metric_docs(self) -> dict[str, str]:
        """One line of meaning per metric ``extra_metrics`` writes (the report's meaning column)."""
        return {}

    def representation_metrics(self, nets, splits, generator: torch.Generator, eval_params) -> dict[str, float]:
        """Metrics of what the method's latents hold, from the prepared ``splits``
        (:class:`genlib.data.splits.Splits`, uint8 images as stored, labels where the set has
        them; ``evaluates_networks``): none."""
        return {}

    def analysis(self, nets, test: torch.Tensor, generator: torch.Generator, out_dir, eval_params, meta,
                 metrics: dict) -> list[tuple[str, str]]:
        """Figures of the method's own in ``out_dir`` (``evaluates_networks``), as (caption, file name)."""
        return []

    def export(self, nets: nn.Module, folder, data_shape: tuple[int, ...]) -> None:
        """Write a self-contained model file beside the checkpoint after training (none)."""

    def set_teacher(self, method: "Method", build_net: Callable[[tuple[int, ...]], nn.Module]) -> None:
        """The teacher's method and a builder of its (untrained) network, given when the method is
        built from a config that has a teacher (``genlib.config.build_method``)."""

    def bind_teacher(self, net: nn.Module) -> None:
        """The teacher's trained network, frozen, before training starts (``train`` loads it)."""

    @property
    def alpha(self) -> float:
        """Stability index of the method's noise (2 for Gaussian methods)."""
        return 2.0

    def schedule(self, steps: int, device: torch.device | str) -> StableSchedule:
        """The ``steps``-step schedule on ``device``, computed once and kept."""
        key = (steps, str(device))
        if key not in self._schedules:
            self._schedules[key] = StableSchedule(steps, self.alpha, device)
        return self._schedules[key]

    def corrupt(self, x0: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_t, t, target)`` for a batch: the network's input and time, and what it should output."""
        raise NotImplementedError

    def batch_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The scalar loss of a batch of network outputs; a mean over the samples unless a method
        says otherwise in :meth:`check_distributed`."""
        raise NotImplementedError

    def loss(self, net: Net, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x_t, t, target = self.corrupt(x0, generator)
        return self.batch_loss(net(x_t, t), target)

    def shard_loss(self, net: Net, x0: torch.Tensor, generator: torch.Generator, shard: slice | None) -> torch.Tensor:
        """This process's loss for the batch ``x0``: the whole batch is corrupted with the
        generator's draws, then the network sees the rows ``shard`` only (all: ``loss``)."""
        if shard is None:
            return self.loss(net, x0, generator)
        x_t, t, target = self.corrupt(x0, generator)
        return self.batch_loss(net(x_t[shard], t[shard]), target[shard])

    def check_distributed(self, nproc: int) -> None:
        """Several processes each take a share of the batch and DDP averages their gradients, which
        gives the gradient of the whole batch's loss only if that loss is ``batch_loss`` of
        ``corrupt``'s output and a mean over the samples."""
        if type(self).loss is not Method.loss:
            raise ConfigError(
                "run.nproc_per_node", nproc, f"1: method {self.name} computes its loss in one piece (no corrupt/batch_loss)"
            )

    def sample(
        self,
        net: Net,
        shape: tuple[int, ...],
        steps: int,
        generator: torch.Generator,
        options: SampleOptions = SampleOptions(),
        progress: bool = False,
    ) -> torch.Tensor:
        raise NotImplementedError


def per_sample(values: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """View a per-sample tensor ``(B,)`` so it broadcasts against a batch of ``shape``."""
    return values.view(-1, *([1] * (len(shape) - 1)))


def clipped_eps(x: torch.Tensor, eps: torch.Tensor, bar_gamma: float, bar_sigma: float, clip: float | None) -> torch.Tensor:
    """The noise implied by the predicted ``x0 = (x - bar_sigma eps) / bar_gamma`` clipped to
    ``[-clip, clip]`` (Ho et al. 2020's ``clip_denoised``; ``eps`` itself when ``clip`` is None).

    Near ``t = T`` an error in ``eps`` reaches ``x0`` multiplied by ``bar_sigma / bar_gamma``, about
    100 at the schedule's end for alpha = 1.8 (64 for DDPM's sqrt(alpha_bar)): on MNIST a U-Net's
    small bias there sends the predicted x0 far below -1, and many samples end black (README,
    "Images"). Clipping keeps every step's x0 in the data's range. DLPM's and LIM's samplers use it
    (``x = bar_gamma x0 + bar_sigma eps`` in both)."""
    if clip is None:
        return eps
    x0 = ((x - bar_sigma * eps) / bar_gamma).clamp(-clip, clip)
    return (x - bar_gamma * x0) / bar_sigma
