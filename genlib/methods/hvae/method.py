"""Hierarchical VAE with top-down inference (Sønderby et al., NeurIPS 2016; Kingma et al.,
NeurIPS 2016, Sec. 6; Child, ICLR 2021), built from the block graph of its params section.

Generative model ``p(z_L) prod_l p(z_l | z_>l) p(x | z)``; posterior ``prod_l q(z_l | z_>l, x)``
computed along the same top-down pass, each layer reading a bottom-up feature of ``x``. The loss
is the negative ELBO with a ``beta``-weighted KL, summed over the layers in closed form for each
layer given the sampled layers above it.

Layers are numbered top-down: layer 0 is the top block, the last one feeds the output block.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from genlib.errors import ConfigError
from genlib.device import autocast
from genlib.methods.base import SampleOptions, StepContext
from genlib.methods.hvae.blocks import TRANSFORMS, Gaussian, Observation
from genlib.methods.hvae.build import build_blocks
from genlib.methods.hvae.graph import BlockSpec, Graph, inferred, role
from genlib.methods.hvae.spec import HVAEParams, HVAESpec  # noqa: F401  (HVAEParams: its section)
from genlib.methods.likelihoods import bits_per_dim, likelihood
from genlib.methods.own_networks import OwnNetworksMethod, Share, optimize
from genlib.methods.vae import IWAE_CHUNK
from genlib.optim import adamw
from genlib.registry import SCHEDULES


class Layer(NamedTuple):
    """One latent layer of a top-down pass: its value, posterior (``None`` without ``x``) and prior."""

    z: torch.Tensor
    q: Gaussian | None
    p: Gaussian


class HVAE(HVAESpec, OwnNetworksMethod):
    """One network per block (an ``nn.ModuleDict`` keyed by the block names); one optimizer."""

    @property
    def graph(self) -> Graph:
        return self.params.graph

    @property
    def metric_docs(self) -> dict[str, str]:
        """The meaning of :meth:`extra_metrics`' keys, for the report."""
        layers = {f"kl_layer{i}": f"KL of latent layer {i} ({b.name}; 0 is the top) on the test set; near 0: unused"
                  + ("" if inferred(b.type) else " (0 by construction: no posterior, z from the prior)")
                  for i, b in enumerate(self.graph.latents)}
        probes = {f"decodability_layer{i}": f"test accuracy of a linear probe of the labels from layer {i}'s ({b.name}) "
                                            "posterior means (without labels: R^2 of the input); README, Hierarchical VAE"
                  for i, b in enumerate(self.graph.latents)}
        return {
            "elbo": "ELBO on the test set (beta = 1, one draw of every layer), nats per point; higher is better",
            "nll_iwae": "importance-weighted NLL bound on the test set (eval.n_importance draws), nats per point",
            "recon_mse": "squared error of the test points' reconstructions through the posterior means",
            "kl": "KL(q || p) summed over the latent layers on the test set, nats per point",
            "bits_per_dim": "images: nll_iwae in bits per dimension of the 8-bit data (an upper bound, README)",
            "decodability_chance": "the share of the commonest test label: a probe's accuracy that says nothing",
            **layers, **probes,
        }

    def networks(self, data_shape: tuple[int, ...]) -> nn.ModuleDict:
        if len(data_shape) not in (1, 3):
            raise ConfigError("data.dataset", f"data of shape {tuple(data_shape)}", "points (D,) or images (C, H, W)")
        return build_blocks(self.graph, tuple(data_shape), self.params.likelihood)

    def optimizers(self, nets: nn.ModuleDict, optim_params) -> dict[str, torch.optim.Optimizer]:
        return {"hvae": adamw(nets.parameters(), optim_params)}

    def bottom_up(self, nets: nn.ModuleDict, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The deterministic features of ``x``, by block name."""
        feats: dict[str, torch.Tensor] = {}
        for b in self.graph.bottom_up:
            if b.type == "input":
                feats[b.name] = nets[b.name](x)
            else:
                inputs = [feats[b.input]] + ([condition(b, feats[b.input2])] if b.input2 is not None else [])
                feats[b.name] = nets[b.name](*inputs)
        return feats

    def top_down(self, nets: nn.ModuleDict, n: int, generator: torch.Generator, feats: dict | None = None,
                 posterior_layers: int | None = None, mean: bool = False,
                 fixed: dict[int, torch.Tensor] | None = None, share: Share | None = None) -> tuple[list[Layer], Observation]:
        """One pass from the top prior to ``p(x | z)`` for ``n`` points.

        With ``feats`` (the bottom-up pass of ``x``) the first ``posterior_layers`` layers (all by
        default) draw ``z_l ~ q(z_l | z_>l, x)``, the others ``z_l ~ p(z_l | z_>l)``; ``mean``
        takes each layer's mean instead of a draw, and ``fixed[l]`` sets layer ``l``'s value. A layer
        without a posterior (``top_simple``, ``gen_prior``) draws from its prior throughout, and
        a deterministic block (``simple``) maps the state alone, a top-down ``dual`` the state
        and the output of a block above. The points being ``share``'s rows
        of a training batch, each layer's noise is the whole batch's."""
        layers: list[Layer] = []
        state = None
        infer = len(self.graph.latents) if posterior_layers is None else posterior_layers
        latent = iter(range(len(self.graph.latents)))
        outputs: dict[str, torch.Tensor] = {}  # each top-down block's state, for a dual further down
        for b in self.graph.top_down:
            block = nets[b.name]
            if b.type == "dual":  # the state joined with the output of a block above (its condition)
                state = outputs[b.name] = block(state, condition(b, outputs[b.input2]))
                continue
            if role(b.type) == "deterministic":
                state = outputs[b.name] = block(state)
                continue
            i = next(latent)
            p, extra = block.prior(state, n)
            q = block.posterior(state, condition(b, feats[b.skip or b.input])) if feats is not None and block.inferred else None
            dist = q if q is not None and i < infer else p
            if fixed is not None and i in fixed:
                z = fixed[i]
            else:
                z = dist.mu if mean else dist.sample(generator, share)
            layers.append(Layer(z, q, p))
            state = outputs[b.name] = block.next_state(state, z, extra)
        return layers, nets[self.graph.output.name](state)

    def terms(self, nets: nn.ModuleDict, x0: torch.Tensor, generator: torch.Generator,
              share: Share | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per point of ``share``'s rows of ``x0`` (all by default): ``-log p(x|z)`` at one draw of
        every ``z_l ~ q``, and ``KL(q_l || p_l)`` per layer in closed form given the drawn layers
        above (``(B, L)``; the ELBO of Sønderby et al., Eq. 4, with analytic KLs as in VDVAE)."""
        share = share or Share(x0.shape[0])
        x = self.observe(share.of(x0))
        layers, px = self.top_down(nets, x.shape[0], generator, self.bottom_up(nets, x), share=share)
        none = x.new_zeros(x.shape[0])  # a layer without a posterior: z ~ p, no KL
        kl = torch.stack([layer.q.kl(layer.p) if layer.q is not None else none for layer in layers], dim=-1)
        return -px.log_prob(x), kl

    def observe(self, x: torch.Tensor) -> torch.Tensor:
        """The data as the output likelihood reads them, and the bottom-up pass sees them (the
        discretized logistic: each value at its 8-bit level's centre)."""
        return likelihood(self.params.likelihood, x.dim() - 1).observe(x)

    def kl_weight(self, step: int) -> float:
        """The KL weight at training step ``step`` (from 1): ``beta`` after the first
        ``kl_warmup_steps`` steps, over which it goes from ``kl_warmup_start * beta`` to ``beta``
        along ``kl_schedule`` (:mod:`genlib.schedules`; linear by default, the warm-up of
        Sønderby et al., NeurIPS 2016, Sec. 2.3, and Bowman et al., CoNLL 2016: the top layers
        are used before the KL pulls their posteriors onto the priors)."""
        p = self.params
        if step >= p.kl_warmup_steps:
            return p.beta
        return p.beta * SCHEDULES.get(p.kl_schedule)(p.ramp(step))

    def objective(self, recon: torch.Tensor, kl: torch.Tensor, share: Share | None = None,
                  kl_weight: float | None = None) -> torch.Tensor:
        """The batch's negative beta-ELBO (``kl_weight``, by default ``beta``); with free bits,
        each layer's KL (averaged over the batch) counts as at least ``free_bits`` nats, so no
        layer gains by dropping below it (Kingma et al., NeurIPS 2016, Eq. 15, a group per layer).
        On ``share``'s rows of a batch, a mean over them whose mean over the processes is the whole
        batch's: whether a layer is held at ``free_bits`` is decided by the whole batch's KL of the layer."""
        kl_layer = kl.mean(0)
        if self.params.free_bits > 0:
            whole = (share or Share(kl.shape[0])).mean(kl_layer)
            kl_layer = torch.where(whole > self.params.free_bits, kl_layer, self.params.free_bits)
        return recon.mean() + (self.params.beta if kl_weight is None else kl_weight) * kl_layer.sum()

    def loss(self, net: nn.ModuleDict, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.objective(*self.terms(net, x0, generator))

    def update(self, nets, optimizers, x0, generator, step: StepContext):
        """The update at the KL weight of this step (:meth:`kl_weight`)."""
        with autocast(step.device, step.precision):
            return self.update_networks(nets, optimizers, x0, generator, step.grad_clip,
                                        Share(x0.shape[0], step.shard), self.kl_weight(step.step))

    def update_networks(self, nets, optimizers, x0, generator, grad_clip, share, kl_weight: float | None = None):
        recon, kl = self.terms(nets, x0, generator, share)
        loss = self.objective(recon, kl, share, kl_weight)
        norm = optimize(optimizers["hvae"], loss, list(nets.parameters()), grad_clip, share)
        kl_mean = kl.detach().mean(0)
        out = {"loss": loss.detach(), "grad_norm": norm, "recon_nll": recon.mean().detach(), "kl": kl_mean.sum()}
        out.update({f"kl_l{i}": v for i, v in enumerate(kl_mean)})
        if self.params.kl_warmup_steps:
            out["kl_weight"] = torch.tensor(self.params.beta if kl_weight is None else kl_weight)
        return out

    @torch.inference_mode()
    def sample(self, net, shape, steps, generator, options: SampleOptions = SampleOptions(), progress=False):
        """Ancestral sampling from the top prior down, then ``x ~ p(x|z)`` (or its mean)."""
        _, px = self.top_down(net, shape[0], generator)
        return px.sample(generator) if self.params.sample_noise else px.mu

    @torch.inference_mode()
    def iwae_log_likelihood(self, nets, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """Per point, ``log (1/K) sum_k p(x, z^k) / q(z^k | x)`` with every layer of ``z^k`` drawn
        from the top-down posterior (Burda et al., ICLR 2016, Eq. 8): a lower bound on
        ``log p(x)``, at least as tight as the ELBO and tightening with ``K`` (their Thm. 1). The
        ``K`` draws go down in chunks of at most ``IWAE_CHUNK`` data values, which bounds the
        memory (64 draws of 1,000 MNIST images at once ran out of 24 GB)."""
        x = self.observe(x)
        feats = self.bottom_up(nets, x)
        chunk = max(1, IWAE_CHUNK // x.numel())
        sizes = [chunk] * (k // chunk) + ([k % chunk] if k % chunk else [])
        log_w = torch.cat([self._log_weights(nets, x, feats, c, generator) for c in sizes])
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    def _log_weights(self, nets, x: torch.Tensor, feats: dict, c: int, generator: torch.Generator) -> torch.Tensor:
        """``log p(x, z) - log q(z | x)`` for ``c`` draws of every layer per point, ``(c, B)``."""
        layers, px = self.top_down(nets, c * x.shape[0], generator, {name: _repeat(h, c) for name, h in feats.items()})
        log_w = px.log_prob(_repeat(x, c)) + sum(layer.p.log_prob(layer.z) - layer.q.log_prob(layer.z)
                                                 for layer in layers if layer.q is not None)  # z ~ p elsewhere: a ratio of 1
        return log_w.view(c, x.shape[0])

    @torch.no_grad()
    def reconstruct(self, nets, x: torch.Tensor, generator: torch.Generator, posterior_layers: int | None = None) -> torch.Tensor:
        """The mean of ``p(x|z)`` at the posterior means of the top ``posterior_layers`` layers
        (all by default) and the prior means below them."""
        _, px = self.top_down(nets, x.shape[0], generator, self.bottom_up(nets, self.observe(x)), posterior_layers, mean=True)
        return px.mu

    @torch.inference_mode()
    def elbo(self, nets, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        recon, kl = self.terms(nets, x, generator)
        return -(recon + kl.sum(-1))

    @torch.inference_mode()
    def extra_metrics(self, nets, test: torch.Tensor, generator: torch.Generator, eval_params) -> dict[str, float]:
        """On the test set (nats per point): the ELBO (beta = 1, one draw), the IWAE NLL estimate
        with ``eval.n_importance`` samples, the squared error of the reconstruction through the
        posterior means, the KL and the KL of each layer (near 0: an unused layer)."""
        elbo, nll, sq_err, kls = [], [], [], []
        for x in test.split(eval_params.likelihood_batch):
            recon, kl = self.terms(nets, x, generator)
            elbo.append(-(recon + kl.sum(-1)))
            kls.append(kl)
            nll.append(-self.iwae_log_likelihood(nets, x, eval_params.n_importance, generator))
            sq_err.append((self.observe(x) - self.reconstruct(nets, x, generator)).pow(2).flatten(1).sum(1))
        kl_layer = torch.cat(kls).mean(0)
        out = {
            "elbo": float(torch.cat(elbo).mean()),
            "nll_iwae": float(torch.cat(nll).mean()),
            "recon_mse": float(torch.cat(sq_err).mean()),
            "kl": float(kl_layer.sum()),
        }
        out.update({f"kl_layer{i}": float(v) for i, v in enumerate(kl_layer)})
        lik = likelihood(self.params.likelihood, test.dim() - 1)
        if test.dim() == 4 and lik.name != "bernoulli":  # a density on dequantized pixels, or a mass on the levels
            out["bits_per_dim"] = bits_per_dim(out["nll_iwae"], test[0].numel(), lik.discrete)
        return out

    def representation_metrics(self, nets, splits, generator: torch.Generator, eval_params) -> dict[str, float]:
        """The decodability of each layer (:mod:`genlib.methods.hvae.probes`): a linear probe of
        the labels (or, without them, of the input) from its posterior means, fitted on the
        training split and scored on the test split."""
        from genlib.methods.hvae.probes import decodability

        if not _runs("decodability", eval_params):
            return {}
        return decodability(self, nets, splits.train, splits.test, splits.train_labels, splits.test_labels, generator)

    def analysis(self, nets, test: torch.Tensor, generator: torch.Generator, out_dir: Path, eval_params, meta,
                 metrics: dict) -> list[tuple[str, str]]:
        from genlib.methods.hvae.analysis import write_figures  # matplotlib: only when evaluating

        chosen = {a for a in self.analyses if _runs(a, eval_params)}
        return write_figures(self, nets, test, generator, out_dir, metrics, chosen)  # kl_layer{i}, decodability_layer{i}

    def export(self, nets: nn.ModuleDict, folder: Path, data_shape: tuple[int, ...]) -> None:
        """The whole model in one file, ``folder/hvae.pt``: graph, params and weights."""
        from genlib.methods.hvae.serialise import save_model

        save_model(folder / "hvae.pt", nets, self.params, data_shape)


def condition(b: BlockSpec, h: torch.Tensor) -> torch.Tensor:
    """A block's second input, its condition (``skip``'s feature, or ``input2``'s), as
    ``condition_transform`` makes it (hVAE's condition transform; default: as it is)."""
    return TRANSFORMS[b.condition_transform or "identity"](h)


def _runs(analysis: str, eval_params) -> bool:
    """Whether ``eval.analysis`` (null: all) asks for ``analysis``."""
    return eval_params.analysis is None or analysis in eval_params.analysis


def _repeat(x: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` copies of a batch, one after the other, ``(k * B, ...)``."""
    return x.repeat(k, *([1] * (x.dim() - 1)))
