"""my_dataset: a 2D dataset of your own (written by `genlib new dataset my_dataset`): points on a
ring of radius 1, the radius blurred by Gaussian noise of ``data.std``.

A dataset draws its points from the generator it is given (seeded from params.yaml), so the
prepared data is the same for the same seed. Use it with, in params.yaml::

    plugins: [my_dataset]
    data: {dataset: my_dataset, std: 0.1}

It takes the 2D sets' ``data:`` keys (``nsamples``, ``ntest``, ``std``, ``normalized``, ...);
``check`` refuses bad values at the door, before any work.
"""
import math

import torch

from genlib.data.toy2d import ToyDataset
from genlib.data.toy2d_spec import ToyParams
from genlib.errors import ConfigError
from genlib.registry import DATASETS


@DATASETS.register("my_dataset")
class MyDataset(ToyDataset):
    name = "my_dataset"

    @classmethod
    def check(cls, p: ToyParams) -> None:
        if not p.std > 0:
            raise ConfigError("data.std", p.std, "a positive number")

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        angle = 2 * math.pi * torch.rand(n, generator=generator, device=generator.device)
        radius = 1 + self.params.std * torch.randn(n, generator=generator, device=generator.device)
        return torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
