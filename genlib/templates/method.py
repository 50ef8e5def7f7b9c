"""my_method: a method of your own (written by `genlib new method my_method`): flow matching with
straight paths (Lipman et al., ICLR 2023, Sec. 4.1, the optimal-transport path with time reversed;
Liu et al., ICLR 2023, rectified flow).

The network ``v(x_t, t)`` learns the velocity ``eps - x0`` of ``x_t = (1 - t) x0 + t eps``, and
sampling integrates ``dx/dt = v`` from noise at ``t = 1`` to data at ``t = 0`` with Euler steps.
Use it with, in params.yaml::

    plugins: [my_method]
    method: my_method
    my_method: {noise_scale: 1.0}

``corrupt`` draws everything random, ``batch_loss`` is a mean over the samples, so several
processes can share a batch; edit both, and ``sample``, to make it your own.
"""
from dataclasses import dataclass

import torch

from genlib.methods.base import Method
from genlib.params import positive, spec
from genlib.progress import steps_bar
from genlib.registry import METHODS


@dataclass(frozen=True)
class MyMethodParams:
    """The ``my_method:`` section of params.yaml, checked at the door."""

    noise_scale: float = spec(1.0, positive, "a positive number")  # std of the noise the flow starts from


@METHODS.register("my_method")
class MyMethod(Method):
    name = "my_method"
    Params = MyMethodParams
    samplers = ("euler",)

    def corrupt(self, x0: torch.Tensor, generator: torch.Generator):
        t = torch.rand(x0.shape[0], generator=generator, device=x0.device)
        eps = self.params.noise_scale * torch.randn(x0.shape, generator=generator, device=x0.device)
        tb = t.view(-1, *([1] * (x0.dim() - 1)))
        return (1 - tb) * x0 + tb * eps, t, eps - x0

    def batch_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).pow(2).flatten(1).mean(1).mean()

    @torch.no_grad()
    def sample(self, net, shape, steps, generator, options=None, progress=False) -> torch.Tensor:
        device = next(net.parameters()).device
        x = self.params.noise_scale * torch.randn(shape, generator=generator, device=device)
        for k in steps_bar(steps, progress):  # k = steps, ..., 1: from t = k / steps down to (k - 1) / steps
            t = torch.full((shape[0],), k / steps, device=device)
            x = x - net(x, t) / steps
        return x
