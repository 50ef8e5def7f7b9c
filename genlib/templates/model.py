"""my_model: a network of your own (written by `genlib new model my_model`): an MLP on flat data
that reads the time ``t`` (in [0, 1]) as one more input.

A network maps ``(x, t)`` to an output of ``x``'s shape and knows nothing of noise. Use it with,
in params.yaml::

    plugins: [my_model]
    model: {net: my_model, width: 128, depth: 3}
"""
from dataclasses import dataclass

import torch
from torch import nn

from genlib.params import positive, spec
from genlib.registry import NETS


@dataclass(frozen=True)
class MyModelParams:
    """The ``model:`` keys of this network, checked at the door."""

    width: int = spec(128, positive, "a positive integer")  # hidden units
    depth: int = spec(3, positive, "a positive integer")  # hidden layers


@NETS.register("my_model")
class MyModel(nn.Module):
    Params = MyModelParams
    data_kinds = ("points",)  # flat data (D,); images need a network that keeps their shape

    def __init__(self, data_shape: tuple[int, ...], p: MyModelParams = MyModelParams()) -> None:
        super().__init__()
        sizes = [data_shape[0] + 1] + [p.width] * p.depth
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], data_shape[0]))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, t.view(-1, 1).to(x.dtype)], dim=1))
