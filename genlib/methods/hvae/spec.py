"""The hierarchical VAE's spec: its section of ``params.yaml`` (the block graph, parsed and checked
by :mod:`genlib.methods.hvae.graph`) and samplers, without torch (:mod:`genlib.methods.spec`). The
method is :class:`genlib.methods.hvae.method.HVAE`, which inherits it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genlib.errors import ConfigError
from genlib.methods.hvae.graph import Graph, parse_graph, read_model_file
from genlib.methods.own_spec import check_likelihood
from genlib.methods.spec import OwnNetworksSpec
from genlib.params import non_negative, positive, spec, unit_interval
from genlib.registry import SCHEDULES
from genlib.schedules import CYCLES, RATIO, Ramp

# Three latent layers of 2 dimensions on 2D data: a top layer, two VDVAE residual layers.
DEFAULT_BLOCKS = (
    {"name": "x", "type": "input", "width": 128, "depth": 2},
    {"name": "z3", "type": "top", "input": "x", "latent": 2, "width": 128},
    {"name": "z2", "type": "residual", "input": "z3", "latent": 2, "width": 128},
    {"name": "z1", "type": "residual", "input": "z2", "latent": 2, "width": 128},
    {"name": "out", "type": "output", "input": "z1", "width": 128, "depth": 2},
)


@dataclass(frozen=True)
class HVAEParams:
    blocks: tuple[dict, ...] = DEFAULT_BLOCKS  # the block graph (graph.py); replaced by model_file's
    model_file: str | None = None  # a YAML file holding blocks: [...], relative to the project root
    beta: float = spec(1.0, positive, "a positive number")  # KL weight; 1 is the ELBO
    free_bits: float = spec(0.5, non_negative, "a non-negative number")  # nats per layer (Kingma et al. 2016); 0: off; 0.5: docs/RESULTS.md
    kl_schedule: str = "linear"  # how the KL weight goes to beta over kl_warmup_steps (registry SCHEDULES: linear, cosine, cyclical)
    kl_warmup_steps: int = spec(0, non_negative, "a non-negative integer")  # the schedule's length in steps, then beta; 0: off (beta throughout)
    kl_warmup_start: float = spec(0.0, unit_interval, "a number in [0, 1)")  # the KL weight at step 0 (and each cycle's start), as a fraction of beta
    kl_cycles: int | None = spec(None, positive, "a positive integer")  # cyclical: cycles over kl_warmup_steps (default 4, Fu et al. 2019)
    kl_ratio: float | None = spec(None, lambda r: 0 < r <= 1, "a number in (0, 1]")  # cyclical: the share of each cycle rising (default 0.5)
    likelihood: Literal["gaussian", "bernoulli", "discretized_logistic"] = "gaussian"  # p(x|z) of the output block
    sample_noise: bool = True  # samples are x ~ p(x|z); false: the output block's mean

    def __post_init__(self) -> None:
        # The file's blocks replace ``blocks``, so the resolved config (checkpoint, resume key)
        # records the graph itself and an edited file is seen as other training params.
        if self.model_file is not None:
            object.__setattr__(self, "blocks", tuple(read_model_file(self.model_file)))
        where = f"hvae.model_file {self.model_file}: blocks" if self.model_file else "hvae.blocks"
        object.__setattr__(self, "_graph", parse_graph(self.blocks, where))
        self._check_schedule()

    def _check_schedule(self) -> None:
        if self.kl_schedule not in SCHEDULES:
            raise ConfigError("hvae.kl_schedule", self.kl_schedule, f"one of {', '.join(SCHEDULES.names())} (a plugin's: registered in SCHEDULES)")
        if self.kl_schedule != "linear" and self.kl_warmup_steps == 0:
            raise ConfigError("hvae.kl_schedule", self.kl_schedule, "linear (the default), or a positive hvae.kl_warmup_steps "
                                                                    "for it to run over (0: the KL weight is beta throughout)")
        for key in ("kl_cycles", "kl_ratio"):
            if getattr(self, key) is not None and self.kl_schedule in ("linear", "cosine"):
                raise ConfigError(f"hvae.{key}", getattr(self, key), f"no value: it sets the cyclical schedule (hvae.kl_schedule is {self.kl_schedule})")
        if self.kl_schedule == "cyclical" and self.ramp(0).cycles > self.kl_warmup_steps:
            raise ConfigError("hvae.kl_cycles", self.ramp(0).cycles, f"at most hvae.kl_warmup_steps = {self.kl_warmup_steps} cycles (a step each at least)")

    def ramp(self, step: int) -> Ramp:
        """Where the KL weight's schedule is at training step ``step``."""
        return Ramp(step, self.kl_warmup_steps, self.kl_warmup_start, self.kl_cycles or CYCLES, self.kl_ratio or RATIO)

    @property
    def graph(self) -> Graph:
        return self._graph


class HVAESpec(OwnNetworksSpec):
    evaluates_networks = True  # extra_metrics: the likelihoods on the test set
    likelihood_family = True
    splits_batch = True
    name = "hvae"
    Params = HVAEParams
    samplers = ("prior",)
    data_kinds = ("points", "images")
    analyses = ("decodability", "traversals", "receptive_fields", "most_exciting")  # eval.analysis

    def check_config(self, cfg) -> None:
        super().check_config(cfg)
        check_likelihood(cfg, self.params.likelihood, "hvae.likelihood")
