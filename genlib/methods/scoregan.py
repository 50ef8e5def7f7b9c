"""ScoreGAN (Franceschi et al., "Unifying GANs and Score-Based Diffusion as Generative Particle
Models", NeurIPS 2023, Sec. 4): a generator trained with a score-based model of the data in
place of a discriminator.

**The teacher.** A trained EDM denoiser ``D_data`` of the data (``scoregan.teacher``: dotted or
nested params over this run's, ``method: edm``), which the ``train_teacher`` stage trains first
into ``data/teacher`` (a DVC dependency of ``train``). Its score at noise level ``sigma`` is
``s_data(x) = (D_data(x; sigma) - x) / sigma^2`` (Karras et al. 2022, Eq. 3).

**The generated distribution's score.** A second denoiser ``D_gen`` of the teacher's architecture,
trained online on the generator's samples by denoising score matching with EDM's preconditioning
and weighting, ``n_score`` steps per generator step.

**The generator step.** For ``x = G(z)`` and ``x~ = x + sigma eps``, with ``sigma`` drawn on the rho-spaced
levels between ``sigma_min`` and ``sigma_max`` (Karras et al., Eq. 5, at a uniform position), the
generator is moved along ``sigma (w_data s_data - w_gen s_gen)(x~)``: the surrogate loss
``<x~, g>`` with ``g = sigma (w_gen s_gen - w_data s_data)`` held fixed has exactly that gradient in
``x``, the difference of scores that makes the generated law flow towards the data's (the paper's
particle view of the generator, with the KL gradient flow's vector field).
Sampling is ``G(z)``, ``z ~ N(0, I)``: one network evaluation.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from genlib.errors import ConfigError
from genlib.methods.base import Method, SampleOptions, per_sample
from genlib.methods.own_networks import OwnNetworksMethod, Share, optimize
from genlib.methods.own_spec import ScoreGANParams, ScoreGANSpec  # noqa: F401  (ScoreGANParams: its section)
from genlib.nets.conv import ConvDecoder
from genlib.nets.dense import dense
from genlib.optim import adamw

class ScoreGAN(ScoreGANSpec, OwnNetworksMethod):
    """Networks ``generator`` and ``fake_score`` (D_gen); the teacher ``D_data`` is bound, frozen."""

    def __init__(self, params: ScoreGANParams) -> None:
        super().__init__(params)
        self.teacher_method: Method | None = None
        self.build_teacher_net: Callable[[tuple[int, ...]], nn.Module] | None = None
        self.data_score: nn.Module | None = None

    def set_teacher(self, method: Method, build_net: Callable[[tuple[int, ...]], nn.Module]) -> None:
        self.teacher_method, self.build_teacher_net = method, build_net

    def bind_teacher(self, net: nn.Module) -> None:
        self.data_score = net.eval().requires_grad_(False)

    def networks(self, data_shape: tuple[int, ...]) -> nn.ModuleDict:
        p = self.params
        if self.build_teacher_net is None:
            raise ConfigError("method", self.name, "a method built from a config (genlib.config.build_method), which names its teacher")
        if len(data_shape) == 1:
            generator = dense(p.latent_dim, data_shape[0], p.g_units, p.g_layers)
        else:
            generator = ConvDecoder(p.latent_dim, data_shape, data_shape[0], p.g_channels, p.levels, "scoregan.levels",
                                    act=nn.ReLU, batch_norm=True, out_act=nn.Tanh)
        return nn.ModuleDict({"generator": generator, "fake_score": self.build_teacher_net(data_shape)})

    def optimizers(self, nets: nn.ModuleDict, optim_params) -> dict[str, torch.optim.Optimizer]:
        p = self.params
        return {
            "generator": adamw(nets["generator"].parameters(), optim_params, p.lr_g, p.betas),
            "fake_score": adamw(nets["fake_score"].parameters(), optim_params, p.lr_score, p.betas),
        }

    def latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn((n, self.params.latent_dim), generator=generator, device=generator.device)

    def fakes(self, nets: nn.ModuleDict, generator: torch.Generator, share: Share) -> torch.Tensor:
        """``share``'s rows of ``G(z)`` for a whole batch of latents (the generator's BatchNorm, on
        images, normalises by the whole batch's statistics)."""
        return share.of(nets["generator"](self.latents(share.size, generator)))

    def noise_levels(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Per sample, a level of Eq. 5's rho-spacing at a uniform position in [0, 1]."""
        p = self.params
        u = torch.rand((n,), generator=generator, device=generator.device)
        hi, lo = p.sigma_max ** (1 / p.rho), p.sigma_min ** (1 / p.rho)
        return (hi + u * (lo - hi)) ** p.rho

    def noisy(self, x: torch.Tensor, generator: torch.Generator, share: Share | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` at a noise level per row; the rows being ``share``'s of a training batch, the
        levels and the noise of the whole batch are drawn."""
        share = share or Share(x.shape[0])
        sigma = share.of(self.noise_levels(share.size, generator)).to(x.dtype)
        eps = share.randn(x.shape[1:], generator, x.dtype)
        return x + per_sample(sigma, x.shape) * eps, sigma

    def score_loss(self, fake_score: nn.Module, x: torch.Tensor, generator: torch.Generator, share: Share) -> torch.Tensor:
        """Denoising score matching of ``D_gen`` on generated ``x`` (``share``'s rows), EDM's
        weighting (a plain MSE on F)."""
        x_noisy, sigma = self.noisy(x, generator, share)
        net_in, c_noise, target = self.teacher_method.denoising_pair(x, x_noisy, sigma)
        return (fake_score(net_in, c_noise) - target).pow(2).mean()

    def score_gap(self, fake_score: nn.Module, x_noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``g = sigma (w_gen s_gen - w_data s_data) = (w_gen (D_gen - x~) - w_data (D_data - x~)) / sigma``."""
        p, teacher = self.params, self.teacher_method
        s = per_sample(sigma, x_noisy.shape)
        d_data = teacher.denoise(self.data_score, x_noisy, sigma)
        d_gen = teacher.denoise(fake_score, x_noisy, sigma)
        return (p.weight_gen * (d_gen - x_noisy) - p.weight_data * (d_data - x_noisy)) / s

    def update_networks(self, nets, optimizers, x0, generator, grad_clip, share):
        if self.data_score is None:
            raise ConfigError("method", self.name, "a run whose train stage binds the teacher (data/teacher)")
        g_params, s_params = list(nets["generator"].parameters()), list(nets["fake_score"].parameters())
        for _ in range(self.params.n_score):
            with torch.no_grad():
                fake = self.fakes(nets, generator, share)
            loss_s = self.score_loss(nets["fake_score"], fake, generator, share)
            norm_s = optimize(optimizers["fake_score"], loss_s, s_params, grad_clip, share)
        x_noisy, sigma = self.noisy(self.fakes(nets, generator, share), generator, share)
        with torch.no_grad():
            gap = self.score_gap(nets["fake_score"], x_noisy, sigma)
        loss_g = (x_noisy * gap).flatten(1).sum(1).mean()
        norm_g = optimize(optimizers["generator"], loss_g, g_params, grad_clip, share)
        return {"loss": loss_s.detach(), "grad_norm": torch.hypot(norm_s, norm_g),
                "score_gap": gap.pow(2).flatten(1).mean(1).mean()}

    @torch.inference_mode()
    def sample(self, net, shape, steps, generator, options: SampleOptions = SampleOptions(), progress=False):
        """``G(z)`` with ``z ~ N(0, I)``; ``steps`` does not apply."""
        return net["generator"](self.latents(shape[0], generator))
