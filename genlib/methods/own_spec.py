"""The specs of the GAN and the VAE: their sections of ``params.yaml``, samplers and limits,
without torch (:mod:`genlib.methods.spec`). The networks and losses are in ``gan.py`` and
``vae.py``, whose classes inherit these."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genlib.errors import ConfigError
from genlib.methods.spec import OwnNetworksSpec
from genlib.nets.sizes import check_image_size
from genlib.params import non_negative, positive, spec


def _betas_ok(b: tuple[float, ...]) -> bool:
    return len(b) == 2 and all(0.0 <= x < 1.0 for x in b)


@dataclass(frozen=True)
class GANParams:
    latent_dim: int = spec(8, positive, "a positive integer")
    g_units: int = spec(128, positive, "a positive integer", kind="points")  # generator width
    g_layers: int = spec(3, positive, "a positive integer", kind="points")  # generator hidden layers
    d_units: int = spec(128, positive, "a positive integer", kind="points")  # discriminator width
    d_layers: int = spec(3, positive, "a positive integer", kind="points")  # discriminator hidden layers
    g_channels: int = spec(64, positive, "a positive integer", kind="images")  # images: generator width at the finest level
    d_channels: int = spec(64, positive, "a positive integer", kind="images")  # images: discriminator width at the first halving
    levels: int = spec(2, positive, "a positive integer", kind="images")  # images: halvings of H and W (each divisible by 2^levels)
    lr_g: float = spec(1e-3, positive, "a positive number")  # replaces optim.lr for the generator
    lr_d: float = spec(1e-3, positive, "a positive number")  # and for the discriminator
    betas: tuple[float, ...] = spec((0.5, 0.999), _betas_ok, "two numbers in [0, 1)")  # Adam's, DCGAN's choice
    n_critic: int = spec(1, positive, "a positive integer")  # discriminator steps per generator step
    r1_gamma: float = spec(0.1, non_negative, "a non-negative number")  # R1 weight gamma (0: off)
    spectral_norm: bool = False  # on every linear and convolutional layer of the discriminator


class GANSpec(OwnNetworksSpec):
    replaces_optim = ("lr", "betas")  # by lr_g, lr_d and betas
    splits_batch = True
    name = "gan"
    Params = GANParams
    samplers = ("generator",)
    data_kinds = ("points", "images")

    def check_config(self, cfg) -> None:
        super().check_config(cfg)
        check_image_size(cfg, self.params.levels, "gan.levels")


@dataclass(frozen=True)
class VAEParams:
    latent_dim: int = spec(2, positive, "a positive integer")
    nunits: int = spec(128, positive, "a positive integer", kind="points")  # points: width of the encoder and decoder MLPs
    nlayers: int = spec(3, positive, "a positive integer", kind="points")  # points: hidden layers of each
    channels: int = spec(32, positive, "a positive integer", kind="images")  # images: conv width at the first halving
    levels: int = spec(2, positive, "a positive integer", kind="images")  # images: halvings of H and W (each divisible by 2^levels)
    beta: float = spec(1.0, positive, "a positive number")  # KL weight; 1 is the ELBO (Higgins et al.)
    likelihood: Literal["gaussian", "bernoulli", "discretized_logistic"] = "gaussian"
    decoder_var: Literal["learned", "fixed"] = "learned"  # gaussian only
    decoder_std: float = spec(0.1, positive, "a positive number")  # s when decoder_var is fixed
    sample_noise: bool = spec(True, sampling=True)  # samples are x ~ p(x|z); false: the decoder mean


class VAESpec(OwnNetworksSpec):
    evaluates_networks = True  # extra_metrics: the likelihoods on the test set
    likelihood_family = True
    splits_batch = True
    name = "vae"
    Params = VAEParams
    samplers = ("prior",)
    data_kinds = ("points", "images")

    def check_config(self, cfg) -> None:
        super().check_config(cfg)
        p = self.params
        check_image_size(cfg, p.levels, "vae.levels")
        check_likelihood(cfg, p.likelihood, "vae.likelihood")


def check_likelihood(cfg, likelihood: str, key: str) -> None:
    """``p(x | z)`` (the VAE's and the hVAE's ``likelihood``) against the data it models."""
    if cfg.data_kind == "points" and likelihood != "gaussian":
        raise ConfigError(key, likelihood, "gaussian on 2D points (bernoulli needs data in [0, 1], discretized_logistic 8-bit images)")
    if likelihood == "discretized_logistic" and cfg.data.dequantization == "gaussian":
        raise ConfigError("data.dequantization", "gaussian", f"none or uniform with {key} discretized_logistic "
                          "(it reads the 8-bit levels back; Gaussian noise moves some into a neighbour's bin)")


@dataclass(frozen=True)
class DiscrFlowParams:
    steps: int = spec(16, positive, "a positive integer")  # N, the flow's steps in training and sampling
    eta: float = spec(20.0, positive, "a positive number")  # the flow's length: each step moves eta / N along v
    loss: Literal["vanilla", "ipm"] = "vanilla"
    grad_penalty: float = spec(0.0, non_negative, "a non-negative number")  # lambda of the interpolates' penalty
    entropy_reg: float = spec(0.0, non_negative, "a non-negative number")  # noise of variance entropy_reg / N per step
    prior_mean: float = spec(0.0)
    prior_std: float = spec(1.0, positive, "a positive number")
    emb_size: int = spec(64, positive, "a positive integer")  # the sinusoidal time embedding
    d_units: int = spec(128, positive, "a positive integer", kind="points")  # 2D: the critic MLP's width
    d_layers: int = spec(3, positive, "a positive integer", kind="points")
    d_channels: int = spec(32, positive, "a positive integer", kind="images")  # images: width at the first halving
    levels: int = spec(2, positive, "a positive integer", kind="images")
    lr: float = spec(2e-4, positive, "a positive number")  # replaces optim.lr
    betas: tuple[float, ...] = spec((0.5, 0.999), _betas_ok, "two numbers in [0, 1)")  # replaces optim.betas

class DiscrFlowSpec(OwnNetworksSpec):
    splits_batch = True
    name = "discr_flow"
    Params = DiscrFlowParams
    samplers = ("flow",)
    data_kinds = ("points", "images")
    replaces_optim = ("lr", "betas")

    def check_config(self, cfg) -> None:
        super().check_config(cfg)
        check_image_size(cfg, self.params.levels, "discr_flow.levels")
        if self.params.loss == "ipm" and self.params.grad_penalty == 0:
            raise ConfigError("discr_flow.grad_penalty", 0.0, "a positive number with loss: ipm (an unpenalised critic is unbounded)")

    def network_evals(self, steps: int, options) -> int:
        return self.params.steps  # one gradient of D per step of the flow


TEACHERS = ("edm", "ddpm")  # methods whose network is a denoiser D(x; sigma) (methods/edm.py, ddpm.py)


def _teacher_ok(t: dict) -> bool:
    return isinstance(t, dict) and t.get("method") in TEACHERS


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{"training": {"epochs": 5}}`` -> ``{"training.epochs": 5}``; dotted keys stay as written."""
    out: dict = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@dataclass(frozen=True)
class ScoreGANParams:
    teacher: dict = spec({"method": "edm"}, _teacher_ok, f"a mapping with method: {' or '.join(TEACHERS)} and other params of the teacher")
    latent_dim: int = spec(16, positive, "a positive integer")
    g_units: int = spec(256, positive, "a positive integer", kind="points")  # 2D: the generator MLP
    g_layers: int = spec(3, positive, "a positive integer", kind="points")
    g_channels: int = spec(64, positive, "a positive integer", kind="images")  # images: DCGAN generator width
    levels: int = spec(2, positive, "a positive integer", kind="images")
    n_score: int = spec(5, positive, "a positive integer")  # D_gen steps per generator step
    sigma_min: float = spec(0.1, positive, "a positive number")  # the generator's noise levels
    sigma_max: float = spec(10.0, positive, "a positive number")
    rho: float = spec(3.0, positive, "a positive number")
    weight_data: float = spec(1.0, positive, "a positive number")
    weight_gen: float = spec(1.0, positive, "a positive number")
    lr_g: float = spec(1e-3, positive, "a positive number")  # replace optim.lr
    lr_score: float = spec(1e-3, positive, "a positive number")
    betas: tuple[float, ...] = spec((0.9, 0.999), _betas_ok, "two numbers in [0, 1)")  # replace optim.betas

class ScoreGANSpec(OwnNetworksSpec):
    splits_batch = True
    name = "scoregan"
    Params = ScoreGANParams
    samplers = ("generator",)
    data_kinds = ("points", "images")
    replaces_optim = ("lr", "betas")

    def teacher_overrides(self) -> dict:
        return flatten(self.params.teacher)

    def check_teacher(self, teacher) -> None:
        """The generator's noise levels lie where the teacher was trained (a DDPM teacher's times
        1/T to 1 cover a bounded range of sigma; EDM's any)."""
        span, p = teacher.denoiser_range(), self.params
        if span is None:
            return
        lo, hi = span
        if p.sigma_min < lo:
            raise ConfigError("scoregan.sigma_min", p.sigma_min, f"a number >= {lo:.4g}, the lowest noise level of the {teacher.name} teacher")
        if p.sigma_max > hi:
            raise ConfigError("scoregan.sigma_max", p.sigma_max, f"a number <= {hi:.4g}, the highest noise level of the {teacher.name} teacher")

    def check_config(self, cfg) -> None:
        super().check_config(cfg)
        check_image_size(cfg, self.params.levels, "scoregan.levels")
        if self.params.sigma_min >= self.params.sigma_max:
            raise ConfigError("scoregan.sigma_min", self.params.sigma_min, f"a number below scoregan.sigma_max ({self.params.sigma_max})")
