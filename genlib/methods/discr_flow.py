"""Discriminator Flow (Franceschi, Gartrell, Dos Santos, Issenhuth, de Bézenac, Chen &
Rakotomamonjy, "Unifying GANs and Score-Based Diffusion as Generative Particle Models", NeurIPS
2023, Sec. 4): a GAN without a generator. Particles drawn from a prior follow the gradient of a
time-conditioned discriminator ``D(x, t)``, and the discriminator is trained at every time of the
flow to tell the particles there from the data.

**The flow.** ``N`` steps (``discr_flow.steps``) of size ``eta / N`` at the times ``t_k = k / N``:
``z_0 ~ N(m, s^2 I)``, ``z_{k+1} = z_k + (eta / N) v(z_k, t_k) + sqrt(entropy_reg / N) xi_k`` (no noise at
the last step), where ``v = -grad_z l_G(z, t)`` is the negative gradient of the generator's
pointwise loss, as a generator would be pushed by it: ``l_G = softplus(-D)`` for the
non-saturating GAN (``loss: vanilla``), so ``v = sigmoid(-D) grad_z D``; ``l_G = -D`` for an IPM
critic (``loss: ipm``, which needs the gradient penalty to be bounded).

**Training.** Each step draws, per data point, a step ``k ~ U{0, ..., N-1}``, runs the flow with
the current discriminator (no gradient to its weights) up to the largest ``k`` drawn and takes
``z_k``; then one step of the discriminator's loss at ``t_k`` on that particle against the data
point at the same time: ``softplus(-D(x, t)) + softplus(D(z, t))`` (vanilla) or ``D(z, t) - D(x, t)``
(ipm), plus ``lambda (|grad D(x_hat, t)| - 1)^2`` on interpolates ``x_hat`` (Gulrajani et al., NeurIPS
2017) when ``grad_penalty = lambda > 0``. Sampling is the flow, ``N`` gradient evaluations of
``D`` per sample; ``eval.reverse_steps`` does not apply (the discriminator knows only the ``N``
training times).
"""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import nn

from genlib.methods.base import SampleOptions
from genlib.methods.own_networks import OwnNetworksMethod, Share, optimize
from genlib.methods.own_spec import DiscrFlowParams, DiscrFlowSpec  # noqa: F401  (DiscrFlowParams: its section)
from genlib.nets.critic import image_critic, point_critic
from genlib.optim import adamw


class DiscrFlow(DiscrFlowSpec, OwnNetworksMethod):
    """One network, ``discriminator`` ``(x, t) -> logit``; the sampler ``flow``."""

    def networks(self, data_shape: tuple[int, ...]) -> nn.ModuleDict:
        p = self.params
        if len(data_shape) == 1:
            critic = point_critic(data_shape[0], p.emb_size, p.d_units, p.d_layers)
        else:
            critic = image_critic(data_shape, p.emb_size, p.d_channels, p.levels, "discr_flow.levels")
        return nn.ModuleDict({"discriminator": critic})

    def optimizers(self, nets: nn.ModuleDict, optim_params) -> dict[str, torch.optim.Optimizer]:
        return {"discriminator": adamw(nets["discriminator"].parameters(), optim_params, self.params.lr, self.params.betas)}

    def velocity(self, critic: nn.Module, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``v = -grad_z l_G(z, t)``; no gradient reaches the critic's weights."""
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            logits = critic(z, t)
            pointwise = F.softplus(-logits) if self.params.loss == "vanilla" else -logits
            (grad,) = torch.autograd.grad(pointwise.sum(), z)
        return -grad

    def flow_step(self, critic: nn.Module, z: torch.Tensor, k: int, generator: torch.Generator,
                  share: Share | None = None) -> torch.Tensor:
        """Step ``k`` of the flow for the particles ``z`` (``share``'s rows of a training batch: the
        noise of the whole batch is drawn)."""
        p = self.params
        t = torch.full((z.shape[0],), k / p.steps, device=z.device)
        z = z + (p.eta / p.steps) * self.velocity(critic, z, t)
        if p.entropy_reg > 0 and k < p.steps - 1:
            z = z + math.sqrt(p.entropy_reg / p.steps) * (share or Share(z.shape[0])).randn(z.shape[1:], generator)
        return z.detach()

    def prior(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        p = self.params
        return p.prior_mean + p.prior_std * torch.randn(shape, generator=generator, device=generator.device)

    def particles(self, critic: nn.Module, like: torch.Tensor, generator: torch.Generator,
                  share: Share | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row of ``share`` (of a batch of rows like ``like``'s; all by default), a step
        ``k ~ U{0..N-1}`` and the particle ``z_k`` of the current flow: ``(z, t)``. The flow runs to
        the largest ``k`` of the whole batch, so that every process draws its noise as often as
        one process does."""
        share = share or Share(like.shape[0])
        ks_all = torch.randint(0, self.params.steps, (share.size,), generator=generator, device=generator.device)
        ks = share.of(ks_all)
        z = share.of(self.prior((share.size, *like.shape[1:]), generator))
        out = z.clone()
        for k in range(int(ks_all.max())):
            z = self.flow_step(critic, z, k, generator, share)
            out[ks == k + 1] = z[ks == k + 1]
        return out, ks.to(like.dtype) / self.params.steps

    def discriminator_loss(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, t: torch.Tensor,
                           generator: torch.Generator, share: Share) -> tuple[torch.Tensor, torch.Tensor]:
        """The critic's loss on ``share``'s rows of a batch, a mean over them."""
        d_real, d_fake = critic(real, t), critic(fake, t)
        if self.params.loss == "vanilla":
            loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        else:
            loss = d_fake.mean() - d_real.mean()
        if self.params.grad_penalty == 0:
            return loss, torch.zeros((), device=real.device)
        u = share.of(torch.rand((share.size,) + (1,) * (real.dim() - 1), generator=generator, device=real.device))
        mixed = (u * real + (1 - u) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed, t).sum(), mixed, create_graph=True)
        penalty = self.params.grad_penalty * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
        return loss + penalty, penalty

    def update_networks(self, nets, optimizers, x0, generator, grad_clip, share):
        critic = nets["discriminator"]
        fake, t = self.particles(critic, x0, generator, share)
        loss, penalty = self.discriminator_loss(critic, share.of(x0), fake, t, generator, share)
        norm = optimize(optimizers["discriminator"], loss, list(critic.parameters()), grad_clip, share)
        return {"loss": loss.detach(), "grad_norm": norm, "penalty": penalty.detach()}

    def sample(self, net, shape, steps, generator, options: SampleOptions = SampleOptions(), progress=False):
        """The flow from the prior, ``discr_flow.steps`` steps; ``steps`` does not apply."""
        critic = net["discriminator"]
        z = self.prior(shape, generator)
        for k in range(self.params.steps):
            z = self.flow_step(critic, z, k, generator)
        return z
