"""Generative adversarial network with the non-saturating loss (Goodfellow et al., NeurIPS 2014,
Sec. 3), an optional R1 gradient penalty on real data (Mescheder, Geiger & Nowozin, ICML 2018,
Eq. 9) and optional spectral normalisation of the discriminator (Miyato et al., ICLR 2018).

MLPs on points; on images the DCGAN architecture (Radford, Metz & Chintala, ICLR 2016, Sec. 3):
a generator of transposed convolutions with BatchNorm and ReLU and a tanh output, a discriminator
of strided convolutions with LeakyReLU(0.2), both initialised from N(0, 0.02). The discriminator
has no BatchNorm: the R1 penalty is a per-image gradient, which batch statistics would couple
across the batch (as Gulrajani et al., NeurIPS 2017, Sec. 4, note for their gradient penalty).
The generator's BatchNorm uses the statistics of the batch it generates, when sampling too (as
the PyTorch DCGAN example does): running statistics gathered under the trained weights would not
fit the EMA's weights that sampling uses (``eval.ema``; BigGAN, Brock et al., ICLR 2019, meets
the same problem with "standing statistics"). A sample is therefore reproducible from its seed
and its batch (``eval.batch_size``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlib.methods.base import SampleOptions
from genlib.methods.own_networks import OwnNetworksMethod, Share, optimize
from genlib.methods.own_spec import GANParams, GANSpec  # noqa: F401  (GANParams: its section)
from genlib.nets.conv import ConvDecoder, ConvEncoder, dcgan_init
from genlib.nets.dense import dense
from genlib.optim import adamw


class GAN(GANSpec, OwnNetworksMethod):
    """Networks ``generator`` (z -> x) and ``discriminator`` (x -> logit), one optimizer each."""

    def networks(self, data_shape: tuple[int, ...]) -> nn.ModuleDict:
        p = self.params
        if len(data_shape) == 1:
            dim = data_shape[0]
            return nn.ModuleDict({
                "generator": dense(p.latent_dim, dim, p.g_units, p.g_layers),
                "discriminator": dense(dim, 1, p.d_units, p.d_layers, spectral=p.spectral_norm),
            })
        nets = nn.ModuleDict({
            "generator": ConvDecoder(p.latent_dim, data_shape, data_shape[0], p.g_channels, p.levels, "gan.levels",
                                     act=nn.ReLU, batch_norm=True, out_act=nn.Tanh),
            "discriminator": ConvEncoder(data_shape, 1, p.d_channels, p.levels, "gan.levels",
                                         act=lambda: nn.LeakyReLU(0.2), spectral=p.spectral_norm),
        })
        dcgan_init(nets)
        return nets

    def optimizers(self, nets: nn.ModuleDict, optim_params) -> dict[str, torch.optim.Optimizer]:
        p = self.params
        return {
            "generator": adamw(nets["generator"].parameters(), optim_params, p.lr_g, p.betas),
            "discriminator": adamw(nets["discriminator"].parameters(), optim_params, p.lr_d, p.betas),
        }

    def latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn((n, self.params.latent_dim), generator=generator, device=generator.device)

    def discriminator_loss(self, nets: nn.ModuleDict, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``-log D(x) - log(1 - D(G(z)))`` (Goodfellow et al., Eq. 1) and the R1 penalty
        ``gamma / 2 E ||grad_x D(x)||^2`` on the real points (Mescheder et al., Eq. 9)."""
        real = real.detach().requires_grad_(self.params.r1_gamma > 0)
        d_real = nets["discriminator"](real)
        loss = F.softplus(-d_real).mean() + F.softplus(nets["discriminator"](fake)).mean()
        if self.params.r1_gamma == 0:
            return loss, torch.zeros((), device=real.device)
        (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        r1 = 0.5 * self.params.r1_gamma * grad.pow(2).flatten(1).sum(1).mean()
        return loss + r1, r1

    def generator_loss(self, nets: nn.ModuleDict, fake: torch.Tensor) -> torch.Tensor:
        # The non-saturating loss -log D(G(z)) (Goodfellow et al., Sec. 3).
        return F.softplus(-nets["discriminator"](fake)).mean()

    def fakes(self, nets: nn.ModuleDict, generator: torch.Generator, share: Share) -> torch.Tensor:
        """``share``'s rows of ``G(z)`` for a whole batch of latents: the generator makes the whole
        batch on every process, as its BatchNorm (images) normalises by the whole batch's statistics."""
        return share.of(nets["generator"](self.latents(share.size, generator)))

    def update_networks(self, nets, optimizers, x0, generator, grad_clip, share):
        """``n_critic`` discriminator steps on the batch (fresh latents each), then one generator
        step; the discriminator sees ``share``'s rows of the real and the generated points."""
        d_params, g_params = list(nets["discriminator"].parameters()), list(nets["generator"].parameters())
        real = share.of(x0)
        for _ in range(self.params.n_critic):
            with torch.no_grad():
                fake = self.fakes(nets, generator, share)
            loss_d, r1 = self.discriminator_loss(nets, real, fake)
            norm_d = optimize(optimizers["discriminator"], loss_d, d_params, grad_clip, share)
        loss_g = self.generator_loss(nets, self.fakes(nets, generator, share))
        norm_g = optimize(optimizers["generator"], loss_g, g_params, grad_clip, share)
        return {
            "loss": (loss_d + loss_g).detach(), "grad_norm": torch.hypot(norm_d, norm_g),
            "loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "r1": r1.detach(),
        }

    @torch.inference_mode()
    def sample(self, net, shape, steps, generator, options: SampleOptions = SampleOptions(), progress=False):
        """``G(z)`` with ``z ~ N(0, I)``; ``steps`` does not apply."""
        return net["generator"](self.latents(shape[0], generator))
