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
    name = "vae"
    Params = VAEParams
    samplers = ("prior",)
    data_kinds = ("points", "images")

    def check_config(self, cfg) -> None:
        super().check_config(cfg)
        p = self.params
        check_image_size(cfg, p.levels, "vae.levels")
        if cfg.data_kind == "points" and p.likelihood != "gaussian":
            raise ConfigError("vae.likelihood", p.likelihood, "gaussian on 2D points (bernoulli needs data in [0, 1], "
                              "discretized_logistic 8-bit images)")
        if p.likelihood == "discretized_logistic" and cfg.data.dequantization == "gaussian":
            raise ConfigError("data.dequantization", "gaussian", "none or uniform with vae.likelihood discretized_logistic "
                              "(it reads the 8-bit levels back; Gaussian noise moves some into a neighbour's bin)")
