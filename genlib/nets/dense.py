"""Plain MLPs for the non-diffusion families (VAE encoders and decoders, GAN generators and
discriminators): no time input, so they are not registered as ``model.net`` networks."""
from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def dense(d_in: int, d_out: int, units: int, layers: int, spectral: bool = False) -> nn.Sequential:
    """``layers`` hidden layers of ``units`` with SiLU; ``spectral`` wraps every linear layer in
    spectral normalisation (Miyato et al., ICLR 2018)."""
    wrap = spectral_norm if spectral else (lambda m: m)
    sizes = [d_in] + [units] * layers
    body: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        body += [wrap(nn.Linear(a, b)), nn.SiLU()]
    return nn.Sequential(*body, wrap(nn.Linear(sizes[-1], d_out)))
