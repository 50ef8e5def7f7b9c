"""The specs of the diffusion methods (DDPM, DLPM, LIM, EDM, t-EDM): their sections of ``params.yaml`` and
samplers, without torch (:mod:`genlib.methods.spec`). The math is in ``ddpm.py``, ``dlpm.py`` and
``lim.py``, whose classes inherit these."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from genlib.errors import ConfigError
from genlib.methods import cosine
from genlib.methods.spec import MethodSpec, SampleOptions
from genlib.params import non_negative, positive, spec

LossKind = Literal["l2", "squared_l2", "smooth_l1"]  # the penalties of genlib.methods.losses


def _alpha_ok(a: float) -> bool:
    return 0.0 < a <= 2.0


def _t_min_ok(t: float) -> bool:
    return 0.0 < t < 0.5


@dataclass(frozen=True)
class DDPMParams:
    diffusion_steps: int = spec(100, positive, "a positive integer")  # T, training time steps


class DDPMSpec(MethodSpec):
    name = "ddpm"
    Params = DDPMParams
    samplers = ("ddpm", "ddim")

    @property
    def diffusion_steps(self) -> int:
        return self.params.diffusion_steps

    def denoiser_range(self) -> tuple[float, float]:
        """The noise levels ``sigma`` of ``x0 + sigma eps`` the network was trained at, as a
        denoiser (``genlib.methods.ddpm``): its times ``1/T`` to ``1``."""
        return cosine.ve_sigma(1 / self.params.diffusion_steps), cosine.ve_sigma(1.0)


@dataclass(frozen=True)
class DLPMParams:
    alpha: float = spec(1.8, _alpha_ok, "a number in (0, 2]")  # stability index of the noise
    diffusion_steps: int = spec(100, positive, "a positive integer")  # T, training time steps
    isotropic: bool = True  # one A per sample (isotropic noise) or one per coordinate
    a_scale: float = spec(1.0, positive, "a positive number")  # A's value at alpha = 2
    clamp_a: float | None = spec(None, positive, "a positive number or null")  # cap on a_t in training
    clamp_eps: float | None = spec(None, positive, "a positive number or null")  # cap on |eps| in training
    # Per-sample loss on eps_theta - eps: the paper's L2 norm (Prop. 9), squared L2 (mean over
    # coordinates, the DDPM loss), or smooth L1 (Huber). The L2 norm is minimised by a spatial
    # median of eps given x_t, which starves rare modes; squared L2 is the conditional mean but
    # heavy-tailed targets make it unstable; smooth L1 is quadratic for small errors and linear
    # for large ones, and did best on sas_grid (bench/RESULTS.md).
    loss: LossKind = "smooth_l1"
    huber_beta: float = spec(1.0, positive, "a positive number")  # smooth L1: quadratic below, linear above
    # How the batch of per-sample losses is aggregated: mean, or median of means over groups.
    monte_carlo: Literal["mean", "median_of_means"] = "mean"
    mom_groups: int = spec(8, positive, "a positive integer")


class DLPMSpec(MethodSpec):
    name = "dlpm"
    Params = DLPMParams
    samplers = ("dlpm", "dlim")

    @property
    def diffusion_steps(self) -> int:
        return self.params.diffusion_steps


@dataclass(frozen=True)
class LIMParams:
    alpha: float = spec(1.8, _alpha_ok, "a number in (0, 2]")  # stability index of the noise
    t_min: float = spec(1e-5, _t_min_ok, "a number in (0, 0.5)")  # training times are U(t_min, 1]; sampling ends at t_min
    a_scale: float = spec(1.0, positive, "a positive number")  # noise N(0, a_scale I) at alpha = 2
    clamp_a: float | None = spec(None, positive, "a positive number or null")  # cap on A in training
    clamp_eps: float | None = spec(None, positive, "a positive number or null")  # cap on |eps| in training
    loss: LossKind = "smooth_l1"  # penalty on s_theta - target (see genlib/methods/losses.py)


class LIMSpec(MethodSpec):
    name = "lim"
    Params = LIMParams
    samplers = ("sde", "ode")


@dataclass(frozen=True)
class EDMCoreParams:
    """The settings EDM shares with its variants (t-EDM): preconditioning, training and noise levels."""

    sigma_data: float = spec(0.5, positive, "a positive number")  # sigma_d, the data's std
    p_mean: float = spec(-1.2)  # training: ln sigma ~ N(p_mean, p_std^2)
    p_std: float = spec(1.2, positive, "a positive number")
    sigma_min: float = spec(0.002, positive, "a positive number", sampling=True)
    sigma_max: float = spec(80.0, positive, "a positive number", sampling=True)
    rho: float = spec(7.0, positive, "a positive number", sampling=True)


@dataclass(frozen=True)
class EDMParams(EDMCoreParams):
    s_churn: float = spec(40.0, non_negative, "a number >= 0", sampling=True)  # stochastic sampler
    s_tmin: float = spec(0.05, non_negative, "a number >= 0", sampling=True)
    s_tmax: float = spec(50.0, non_negative, "a number >= 0", sampling=True)
    s_noise: float = spec(1.003, positive, "a positive number", sampling=True)


class EDMSpec(MethodSpec):
    name = "edm"
    Params = EDMParams
    samplers = ("heun", "stochastic")

    def check_config(self, cfg) -> None:
        self.check_levels()
        p = self.params
        if p.s_tmin > p.s_tmax:
            raise ConfigError("edm.s_tmin", p.s_tmin, f"a number at most edm.s_tmax ({p.s_tmax})")

    def check_levels(self) -> None:
        """The noise levels run down from ``sigma_max`` to ``sigma_min``."""
        p = self.params
        if p.sigma_min >= p.sigma_max:
            raise ConfigError(f"{self.name}.sigma_min", p.sigma_min, f"a number below {self.name}.sigma_max ({p.sigma_max})")

    def check_sampling(self, options: SampleOptions, steps: int) -> None:
        super().check_sampling(options, steps)
        if steps < 2:
            raise ConfigError("eval.reverse_steps", steps, "an integer >= 2 (EDM's noise levels run from sigma_max to sigma_min)")

    def network_evals(self, steps: int, options: SampleOptions) -> int:
        """Both samplers evaluate ``D`` twice per step, except at the last step to ``sigma = 0``."""
        return 2 * steps - 1


def _nu_ok(v: float) -> bool:
    return math.isfinite(v) and v > 2


@dataclass(frozen=True)
class TEDMParams(EDMCoreParams):
    # Degrees of freedom of the Student-t noise; the preconditioning needs its variance nu / (nu - 2).
    nu: float = spec(5.0, _nu_ok, "a finite number > 2 (the noise's variance nu / (nu - 2) must be finite)")


class TEDMSpec(EDMSpec):
    """t-EDM: EDM with Student-t noise; Heun's sampler only (no churn for this kernel)."""

    name = "tedm"
    Params = TEDMParams
    samplers = ("heun",)

    def check_config(self, cfg) -> None:
        self.check_levels()
