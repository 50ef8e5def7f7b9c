"""Variational auto-encoder (Kingma & Welling, ICLR 2014) with a beta-weighted KL (Higgins et al.,
ICLR 2017) and the importance-weighted likelihood bound of Burda, Grosse & Salakhutdinov (ICLR 2016).

Encoder ``q(z|x) = N(mu(x), diag sigma^2(x))``, prior ``p(z) = N(0, I)``, Gaussian decoder
``p(x|z) = N(m(z), diag s^2)`` whose variance is learned per point or fixed (``decoder_std``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from genlib.methods.base import SampleOptions
from genlib.methods.family import Family, optimize
from genlib.nets.dense import dense
from genlib.params import positive, spec
from genlib.registry import METHODS
from genlib.training.groups import adamw

LOG_2PI = math.log(2 * math.pi)
LOGVAR_RANGE = (-12.0, 6.0)  # the learned decoder variance stays in [6e-6, 400]: no collapse onto a point


@dataclass(frozen=True)
class VAEParams:
    latent_dim: int = spec(2, positive, "a positive integer")
    nunits: int = spec(128, positive, "a positive integer")  # width of the encoder and decoder MLPs
    nlayers: int = spec(3, positive, "a positive integer")  # hidden layers of each
    beta: float = spec(1.0, positive, "a positive number")  # KL weight; 1 is the ELBO (Higgins et al.)
    likelihood: Literal["gaussian"] = "gaussian"
    decoder_var: Literal["learned", "fixed"] = "learned"
    decoder_std: float = spec(0.1, positive, "a positive number")  # s when decoder_var is fixed
    sample_noise: bool = True  # samples are x ~ p(x|z); false: the decoder mean m(z)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(x; mean, diag exp(logvar))`` summed over the last dimension."""
    return -0.5 * ((x - mean).pow(2) / logvar.exp() + logvar + LOG_2PI).sum(-1)


@METHODS.register("vae")
class VAE(Family):
    """Networks ``encoder`` (x -> mu, log sigma^2) and ``decoder`` (z -> m, log s^2); one optimizer."""

    name = "vae"
    Params = VAEParams
    samplers = ("prior",)

    def networks(self, data_shape: tuple[int, ...]) -> nn.ModuleDict:
        p, dim = self.params, data_shape[0]
        out = 2 * dim if p.decoder_var == "learned" else dim
        return nn.ModuleDict({
            "encoder": dense(dim, 2 * p.latent_dim, p.nunits, p.nlayers),
            "decoder": dense(p.latent_dim, out, p.nunits, p.nlayers),
        })

    def optimizers(self, nets: nn.ModuleDict, optim_params) -> dict[str, torch.optim.Optimizer]:
        return {"vae": adamw(nets.parameters(), optim_params)}

    def encode(self, nets: nn.ModuleDict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = nets["encoder"](x).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, nets: nn.ModuleDict, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = nets["decoder"](z)
        if self.params.decoder_var == "learned":
            mean, logvar = out.chunk(2, dim=-1)
            return mean, logvar.clamp(*LOGVAR_RANGE)
        return out, torch.full_like(out, 2 * math.log(self.params.decoder_std))

    def terms(self, nets: nn.ModuleDict, x0: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Per point: ``-log p(x|z)`` at one reparameterised ``z ~ q(z|x)`` (Kingma & Welling, Eq. 7),
        and the closed-form ``KL(q(z|x) || N(0, I))`` per latent dimension (their Appendix B)."""
        mu, logvar = self.encode(nets, x0)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        mean, dec_logvar = self.decode(nets, z)
        recon = -gaussian_log_prob(x0, mean, dec_logvar)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)
        return recon, kl

    def loss(self, net: nn.ModuleDict, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # The negative beta-ELBO (Higgins et al., Eq. 4), averaged over the batch.
        recon, kl = self.terms(net, x0, generator)
        return (recon + self.params.beta * kl.sum(-1)).mean()

    def update(self, nets, optimizers, x0, generator, grad_clip):
        recon, kl = self.terms(nets, x0, generator)
        loss = (recon + self.params.beta * kl.sum(-1)).mean()
        norm = optimize(optimizers["vae"], loss, list(nets.parameters()), grad_clip)
        return {"loss": loss.detach(), "grad_norm": norm, "recon_nll": recon.mean().detach(), "kl": kl.sum(-1).mean().detach()}

    @torch.inference_mode()
    def sample(self, net, shape, steps, generator, options: SampleOptions = SampleOptions(), progress=False):
        """``z ~ N(0, I)``, then ``x ~ p(x|z)`` (or its mean); ``steps`` does not apply."""
        device = generator.device
        z = torch.randn((shape[0], self.params.latent_dim), generator=generator, device=device)
        mean, logvar = self.decode(net, z)
        if not self.params.sample_noise:
            return mean
        return mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator, device=device)

    @torch.inference_mode()
    def iwae_log_likelihood(self, nets, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """Per point, ``log (1/K) sum_k p(x, z_k) / q(z_k|x)`` with ``z_k ~ q(z|x)``: a lower bound on
        ``log p(x)`` that tightens as ``K`` grows (Burda et al., Eq. 8 and Thm. 1)."""
        mu, logvar = self.encode(nets, x)
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device)
        z = mu + (0.5 * logvar).exp() * eps  # (K, B, L)
        mean, dec_logvar = self.decode(nets, z)
        log_w = (gaussian_log_prob(x, mean, dec_logvar) + gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))
                 - gaussian_log_prob(z, mu, logvar))
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    @torch.inference_mode()
    def extra_metrics(self, nets, test: torch.Tensor, generator: torch.Generator, eval_params) -> dict[str, float]:
        """On the test set (in nats per point): the ELBO (beta = 1, one sample of z), the IWAE NLL
        estimate with ``eval.n_importance`` samples, the squared error of the reconstruction through the
        posterior mean, and the KL of each latent dimension (near 0: an unused dimension)."""
        elbo, nll, sq_err, kl_dims = [], [], [], []
        for x in test.split(eval_params.likelihood_batch):
            recon, kl = self.terms(nets, x, generator)
            elbo.append(-(recon + kl.sum(-1)))
            kl_dims.append(kl)
            nll.append(-self.iwae_log_likelihood(nets, x, eval_params.n_importance, generator))
            mean, _ = self.decode(nets, self.encode(nets, x)[0])
            sq_err.append((x - mean).pow(2).sum(-1))
        kl_dim = torch.cat(kl_dims).mean(0)
        out = {
            "elbo": float(torch.cat(elbo).mean()),
            "nll_iwae": float(torch.cat(nll).mean()),
            "recon_mse": float(torch.cat(sq_err).mean()),
            "kl": float(kl_dim.sum()),
        }
        out.update({f"kl_dim{i}": float(v) for i, v in enumerate(kl_dim)})
        return out
