"""What checking a config needs of a method, without torch: its settings and its limits.

A method's spec names its ``params.yaml`` section (``Params``), its samplers and what it does not
support, refused at the door (:mod:`genlib.config`). The method itself (:mod:`genlib.methods.base`)
inherits its spec and adds the math.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genlib.errors import ConfigError


@dataclass(frozen=True)
class SampleOptions:
    """Sampling-time choices (``eval:`` section); which values apply is up to each method."""

    sampler: str = "default"
    eta: float = 0.0
    clamp_a: float | None = None
    clamp_eps: float | None = None
    clip_x0: float | None = None  # clip the predicted x0 to [-clip_x0, clip_x0] (images: 1)


class MethodSpec:
    """Base of the specs; subclasses set ``name``, ``Params`` (their section) and ``samplers``."""

    name: ClassVar[str]
    Params: ClassVar[type]
    samplers: ClassVar[tuple[str, ...]]
    # True: the method builds its own networks, ignores the ``model:`` section and steps its own
    # optimizers (own_networks.py); its samplers take no reverse steps.
    own_networks: ClassVar[bool] = False
    # True: evaluate loads the trained networks for ``extra_metrics`` and ``analysis``.
    evaluates_networks: ClassVar[bool] = False
    # True: a likelihood family (VAE, hVAE), whose ELBO the evaluation during training may score.
    likelihood_family: ClassVar[bool] = False
    # The ``optim:`` keys the method's own settings replace (the GAN's lr_g, lr_d and betas):
    # they do not key its training.
    replaces_optim: ClassVar[tuple[str, ...]] = ()

    # The analyses of its own that evaluate may run (``eval.analysis`` chooses among them).
    analyses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params) -> None:
        self.params = params

    def check_config(self, cfg) -> None:
        """The method's own limits on the rest of the config, refused before any work (none)."""

    @property
    def diffusion_steps(self) -> int | None:
        """``T``, the time steps the network is trained on; ``None``: continuous time, or no time."""
        return None

    def check_sampling(self, options: SampleOptions, steps: int) -> None:
        """Reject sampling options this method does not support, before any heavy work."""
        if options.sampler != "default" and options.sampler not in self.samplers:
            raise ConfigError(
                "eval.sampler", options.sampler, f"'default' or one of {', '.join(self.samplers)}"
            )
        if not 0.0 <= options.eta <= 1.0:
            raise ConfigError("eval.eta", options.eta, "a number in [0, 1]")
        trained = self.diffusion_steps
        if trained is not None and steps > trained:
            # The network saw only the times t / T of its T training steps.
            raise ConfigError(
                "eval.reverse_steps", steps, f"an integer in [1, {trained}] ({self.name}.diffusion_steps)"
            )

    def check_analysis(self, chosen: tuple[str, ...] | None) -> None:
        """``eval.analysis``: null, or a list of this method's analyses."""
        unknown = [a for a in chosen or () if a not in self.analyses]
        if unknown:
            allowed = f"null (all) or a list of {', '.join(self.analyses)}" if self.analyses else f"null: method {self.name} has no analyses to choose"
            raise ConfigError("eval.analysis", list(chosen), allowed)

    def sampler_name(self, options: SampleOptions) -> str:
        return self.samplers[0] if options.sampler == "default" else options.sampler

    def network_evals(self, steps: int, options: SampleOptions) -> int:
        """Network evaluations per sample of ``sample`` with ``steps`` reverse steps: one per step."""
        return steps

    def teacher_overrides(self) -> dict | None:
        """A model this method learns from (ScoreGAN's data score model), as dotted params over this
        run's; the ``train_teacher`` stage trains it first. ``None``: no teacher."""
        return None

    def check_teacher(self, teacher: "MethodSpec") -> None:
        """This method's params against its teacher's spec, at the door (``teacher_overrides``)."""

    def denoiser_range(self) -> tuple[float, float] | None:
        """The noise levels ``sigma`` at which the network, read as a denoiser of ``x0 + sigma eps``,
        was trained (a teacher's), or ``None`` for any level."""
        return None


class OwnNetworksSpec(MethodSpec):
    """A method that builds and steps its own networks (VAE, hVAE, GAN), for the data it names."""

    own_networks: ClassVar[bool] = True
    data_kinds: ClassVar[tuple[str, ...]] = ("points",)  # the data its networks take: points, images
    # True: its update runs on its share of the batch (own_networks.Share), so it trains on several processes.
    splits_batch: ClassVar[bool] = False

    def check_config(self, cfg) -> None:
        """What these methods do not support yet, refused before any work."""
        if cfg.data_kind not in self.data_kinds:
            allowed = "a 2D point set" if self.data_kinds == ("points",) else f"a dataset of kind {' or '.join(self.data_kinds)}"
            raise ConfigError("data.dataset", cfg.data.dataset, f"{allowed} (method {self.name} has no networks for {cfg.data_kind})")
        if cfg.run.compile:
            raise ConfigError("run.compile", True, f"false (method {self.name} calls its networks one by one)")

    def network_evals(self, steps: int, options: SampleOptions) -> int:
        """One pass of the generative network (decoder, generator) per sample; no reverse steps."""
        return 1

    def check_distributed(self, nproc: int) -> None:
        if not self.splits_batch:
            raise ConfigError("run.nproc_per_node", nproc, f"1: method {self.name} steps its own optimizers on the whole batch")
