"""Variational auto-encoder (Kingma & Welling, ICLR 2014) with a beta-weighted KL (Higgins et al.,
ICLR 2017) and the importance-weighted likelihood bound of Burda, Grosse & Salakhutdinov (ICLR 2016).

Encoder ``q(z|x) = N(mu(x), diag sigma^2(x))``, prior ``p(z) = N(0, I)``, decoder likelihood
``p(x|z)`` by name (:mod:`genlib.methods.likelihoods`): Gaussian with a variance learned per
dimension or fixed (``decoder_std``), Bernoulli, or discretized logistic. MLPs on points,
convolutional networks (:mod:`genlib.nets.conv`) on images.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from genlib.methods.base import SampleOptions
from genlib.methods.likelihoods import Likelihood, bits_per_dim, gaussian_log_prob, likelihood
from genlib.methods.own_networks import OwnNetworksMethod, Share, optimize
from genlib.methods.own_spec import VAEParams, VAESpec  # noqa: F401  (VAEParams: its section)
from genlib.nets.conv import ConvDecoder, ConvEncoder
from genlib.nets.dense import dense
from genlib.optim import adamw

KL_DIMS_LISTED = 16  # kl_dim{i} metrics up to this many latent dimensions (active_units always)
ACTIVE_VARIANCE = 0.01  # Burda et al., Sec. 5.2: a unit is active when Cov_x(E_q[z_i]) > 0.01
IWAE_CHUNK = 2**20  # decoder outputs per pass of the importance-weighted bound (bounds the memory)


class VAE(VAESpec, OwnNetworksMethod):
    """Networks ``encoder`` (x -> mu, log sigma^2) and ``decoder`` (z -> the likelihood's
    parameters); one optimizer."""

    @property
    def metric_docs(self) -> dict[str, str]:
        """The meaning of :meth:`extra_metrics`' keys, for the report."""
        dims = self.params.latent_dim
        per_dim = {f"kl_dim{i}": f"KL of latent dimension {i} on the test set, nats; near 0: an unused dimension"
                   for i in range(dims if dims <= KL_DIMS_LISTED else 0)}
        return {
            "elbo": "ELBO on the test set (beta = 1, one draw of z), nats per point; higher is better",
            "nll_iwae": "importance-weighted NLL bound on the test set (Burda et al. 2016, eval.n_importance draws), nats per point",
            "recon_mse": "squared error of the test points' reconstructions through the posterior mean, summed over a point's dimensions",
            "kl": "KL(q(z|x) || N(0, I)) on the test set, nats per point",
            "active_units": f"latent dimensions whose posterior mean varies over the test set by more than {ACTIVE_VARIANCE} (Burda et al., Sec. 5.2)",
            "bits_per_dim": "images: nll_iwae in bits per dimension of the 8-bit data (an upper bound, README)",
            **per_dim,
        }

    def likelihood(self, event_dims: int) -> Likelihood:
        """The decoder likelihood for data points of ``event_dims`` axes (1: points, 3: images)."""
        p = self.params
        return likelihood(p.likelihood, event_dims, p.decoder_var == "learned", p.decoder_std)

    def networks(self, data_shape: tuple[int, ...]) -> nn.ModuleDict:
        p = self.params
        per_dim = self.likelihood(len(data_shape)).params_per_dim
        if len(data_shape) == 1:
            dim = data_shape[0]
            return nn.ModuleDict({
                "encoder": dense(dim, 2 * p.latent_dim, p.nunits, p.nlayers),
                "decoder": dense(p.latent_dim, per_dim * dim, p.nunits, p.nlayers),
            })
        return nn.ModuleDict({
            "encoder": ConvEncoder(data_shape, 2 * p.latent_dim, p.channels, p.levels, "vae.levels"),
            "decoder": ConvDecoder(p.latent_dim, data_shape, per_dim * data_shape[0], p.channels, p.levels, "vae.levels"),
        })

    def optimizers(self, nets: nn.ModuleDict, optim_params) -> dict[str, torch.optim.Optimizer]:
        return {"vae": adamw(nets.parameters(), optim_params)}

    def encode(self, nets: nn.ModuleDict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = nets["encoder"](x).chunk(2, dim=-1)
        return mu, logvar

    def terms(self, nets: nn.ModuleDict, x0: torch.Tensor, generator: torch.Generator,
              share: Share | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per point of ``share``'s rows of ``x0`` (all by default): ``-log p(x|z)`` at one
        reparameterised ``z ~ q(z|x)`` (Kingma & Welling, Eq. 7), and the closed-form
        ``KL(q(z|x) || N(0, I))`` per latent dimension (their Appendix B)."""
        share = share or Share(x0.shape[0])
        lik = self.likelihood(x0.ndim - 1)
        x0 = lik.observe(share.of(x0))
        mu, logvar = self.encode(nets, x0)
        eps = share.randn(mu.shape[1:], generator, mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        recon = -lik.log_prob(x0, nets["decoder"](z))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)
        return recon, kl

    def loss(self, net: nn.ModuleDict, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # The negative beta-ELBO (Higgins et al., Eq. 4), averaged over the batch.
        recon, kl = self.terms(net, x0, generator)
        return (recon + self.params.beta * kl.sum(-1)).mean()

    def update_networks(self, nets, optimizers, x0, generator, grad_clip, share):
        recon, kl = self.terms(nets, x0, generator, share)
        loss = (recon + self.params.beta * kl.sum(-1)).mean()  # a mean over the rows: it splits across processes
        norm = optimize(optimizers["vae"], loss, list(nets.parameters()), grad_clip, share)
        return {"loss": loss.detach(), "grad_norm": norm, "recon_nll": recon.mean().detach(), "kl": kl.sum(-1).mean().detach()}

    @torch.inference_mode()
    def sample(self, net, shape, steps, generator, options: SampleOptions = SampleOptions(), progress=False):
        """``z ~ N(0, I)``, then ``x ~ p(x|z)`` (or its mean); ``steps`` does not apply."""
        lik = self.likelihood(len(shape) - 1)
        z = torch.randn((shape[0], self.params.latent_dim), generator=generator, device=generator.device)
        out = net["decoder"](z)
        return lik.sample(out, generator) if self.params.sample_noise else lik.mean(out)

    @torch.inference_mode()
    def iwae_log_likelihood(self, nets, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """Per point, ``log (1/K) sum_k p(x, z_k) / q(z_k|x)`` with ``z_k ~ q(z|x)``: a lower bound on
        ``log p(x)`` that tightens as ``K`` grows (Burda et al., Eq. 8 and Thm. 1). The decoder
        takes the ``K`` samples in chunks of at most ``IWAE_CHUNK`` data values."""
        lik = self.likelihood(x.ndim - 1)
        x = lik.observe(x)
        mu, logvar = self.encode(nets, x)
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device)
        z = mu + (0.5 * logvar).exp() * eps  # (K, B, L)
        chunk = max(1, IWAE_CHUNK // x.numel())
        log_px = torch.cat([lik.log_prob(x, nets["decoder"](part)) for part in z.split(chunk)])
        log_w = log_px + gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z)) - gaussian_log_prob(z, mu, logvar)
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    @torch.inference_mode()
    def elbo(self, nets, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        recon, kl = self.terms(nets, x, generator)
        return -(recon + kl.sum(-1))

    @torch.inference_mode()
    def extra_metrics(self, nets, test: torch.Tensor, generator: torch.Generator, eval_params) -> dict[str, float]:
        """On the test set (in nats per point): the ELBO (beta = 1, one sample of z), the IWAE NLL
        estimate with ``eval.n_importance`` samples, the squared error of the reconstruction
        through the posterior mean (summed over the dimensions of a point), the KL of each latent
        dimension (near 0: an unused dimension; listed up to ``KL_DIMS_LISTED`` dimensions) and
        the number of active units (Burda et al., Sec. 5.2). On images (``test`` in ``[-1, 1]``,
        dequantized uniformly for a density), also the IWAE NLL in bits per dimension, except for
        the Bernoulli, which is no distribution over the 8-bit levels."""
        lik = self.likelihood(test.ndim - 1)
        elbo, nll, sq_err, kl_dims, post_means = [], [], [], [], []
        for x in test.split(eval_params.likelihood_batch):
            recon, kl = self.terms(nets, x, generator)
            elbo.append(-(recon + kl.sum(-1)))
            kl_dims.append(kl)
            nll.append(-self.iwae_log_likelihood(nets, x, eval_params.n_importance, generator))
            x = lik.observe(x)
            mu = self.encode(nets, x)[0]
            post_means.append(mu)
            sq_err.append((x - lik.mean(nets["decoder"](mu))).pow(2).flatten(1).sum(-1))
        kl_dim = torch.cat(kl_dims).mean(0)
        out = {
            "elbo": float(torch.cat(elbo).mean()),
            "nll_iwae": float(torch.cat(nll).mean()),
            "recon_mse": float(torch.cat(sq_err).mean()),
            "kl": float(kl_dim.sum()),
            "active_units": int((torch.cat(post_means).var(0) > ACTIVE_VARIANCE).sum()),
        }
        if test.ndim > 2 and lik.name != "bernoulli":
            out["bits_per_dim"] = bits_per_dim(out["nll_iwae"], test[0].numel(), lik.discrete)
        if kl_dim.numel() <= KL_DIMS_LISTED:
            out.update({f"kl_dim{i}": float(v) for i, v in enumerate(kl_dim)})
        return out
