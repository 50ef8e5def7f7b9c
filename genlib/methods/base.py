"""The method interface: a method owns the math, the network is passed into every call.

``loss(net, x0, generator)`` returns a scalar training loss for a batch of data;
``sample(net, shape, steps, generator, options)`` runs a reverse process from noise. The loss is
written in two parts, ``corrupt`` (every random draw: the times, the noise, the network's input
and target) and ``batch_loss`` (the penalty on the network's output), so that several training
processes can draw the corruption of the whole batch alike and each run the network on its share
(:mod:`genlib.training.distributed`). A network
maps ``(x, t)`` to an output of ``x``'s shape, ``t`` being the time rescaled to ``[0, 1]``; it
knows nothing of noise. The trainer knows nothing of either's insides.

Methods that are not diffusions (:mod:`genlib.methods.family`: VAE, GAN) declare their own
networks and optimizers and perform their own update step; ``steps_itself`` tells the trainer.
A diffusion method uses the one network the ``model:`` section names (``networks`` is ``None``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from genlib.errors import ConfigError
from genlib.methods.schedules import StableSchedule

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | nn.Module


@dataclass(frozen=True)
class SampleOptions:
    """Sampling-time choices (``eval:`` section); which values apply is up to each method."""

    sampler: str = "default"
    eta: float = 0.0
    clamp_a: float | None = None
    clamp_eps: float | None = None


class Method:
    """Base class; subclasses set ``Params`` (their ``params.yaml`` section) and ``samplers``."""

    name: ClassVar[str]
    Params: ClassVar[type]
    samplers: ClassVar[tuple[str, ...]]
    steps_itself: ClassVar[bool] = False  # True: ``update`` steps its own optimizers (family.py)

    def __init__(self, params) -> None:
        self.params = params
        self._schedules: dict[tuple[int, str], StableSchedule] = {}

    # True: evaluate loads the trained networks for ``extra_metrics`` and ``analysis``.
    evaluates_networks: ClassVar[bool] = False

    def networks(self, data_shape: tuple[int, ...]) -> nn.ModuleDict | None:
        """The method's own named networks, or ``None`` for the ``model:`` section's network."""
        return None

    def check_config(self, cfg) -> None:
        """The method's own limits on the rest of the config, refused before any work (none)."""

    def extra_metrics(self, nets, test: torch.Tensor, generator: torch.Generator, eval_params) -> dict[str, float]:
        """Metrics the method computes on the test set itself (``evaluates_networks``); none."""
        return {}

    @property
    def metric_docs(self) -> dict[str, str]:
        """One line of meaning per metric ``extra_metrics`` writes (the report's meaning column)."""
        return {}

    def analysis(self, nets, test: torch.Tensor, generator: torch.Generator, out_dir, eval_params, meta,
                 metrics: dict) -> list[tuple[str, str]]:
        """Figures of the method's own in ``out_dir`` (``evaluates_networks``), as (caption, file name)."""
        return []

    def export(self, nets: nn.Module, folder, data_shape: tuple[int, ...]) -> None:
        """Write a self-contained model file beside the checkpoint after training (none)."""

    @property
    def alpha(self) -> float:
        """Stability index of the method's noise (2 for Gaussian methods)."""
        return getattr(self.params, "alpha", 2.0)

    def schedule(self, steps: int, device: torch.device | str) -> StableSchedule:
        """The ``steps``-step schedule on ``device``, computed once and kept."""
        key = (steps, str(device))
        if key not in self._schedules:
            self._schedules[key] = StableSchedule(steps, self.alpha, device)
        return self._schedules[key]

    def check_sampling(self, options: SampleOptions, steps: int) -> None:
        """Reject sampling options this method does not support, before any heavy work."""
        if options.sampler != "default" and options.sampler not in self.samplers:
            raise ConfigError(
                "eval.sampler", options.sampler, f"'default' or one of {', '.join(self.samplers)}"
            )
        if not 0.0 <= options.eta <= 1.0:
            raise ConfigError("eval.eta", options.eta, "a number in [0, 1]")
        trained = getattr(self.params, "diffusion_steps", None)
        if trained is not None and steps > trained:
            # The network saw only the times t / T of its T training steps.
            raise ConfigError(
                "eval.reverse_steps", steps, f"an integer in [1, {trained}] ({self.name}.diffusion_steps)"
            )

    def sampler_name(self, options: SampleOptions) -> str:
        return self.samplers[0] if options.sampler == "default" else options.sampler

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
