"""Per-step schedules of a loss weight, by name (registry :data:`genlib.registry.SCHEDULES`).

A schedule maps where training is, a :class:`Ramp`, to the fraction of the weight's final value
that applies at that step; past ``ramp.steps`` the weight is final, so a schedule is only asked
for ``0 <= step < steps``. ``hvae.kl_schedule`` names the one of the hVAE's KL weight. A plugin
registers its own the same way::

    from genlib.registry import SCHEDULES

    @SCHEDULES.register("halfway")
    def halfway(ramp):
        return ramp.start if ramp.step < ramp.steps // 2 else 1.0

This module reads no torch: ``genlib check`` checks the names without it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

CYCLES, RATIO = 4, 0.5  # cyclical's defaults: Fu et al.'s M = 4 cycles, R = 0.5 of each rising


@dataclass(frozen=True)
class Ramp:
    """Step ``step`` of a schedule ``steps`` long, whose weight starts at ``start`` (a fraction of
    the final one); ``cycles`` and ``ratio`` are the cyclical schedule's."""

    step: int
    steps: int
    start: float = 0.0
    cycles: int = CYCLES
    ratio: float = RATIO


def linear(r: Ramp) -> float:
    """From ``start`` to 1 in a straight line (the KL warm-up of Sønderby et al., NeurIPS 2016,
    Sec. 2.3; Bowman et al., CoNLL 2016)."""
    return r.start + (1 - r.start) * r.step / r.steps


def cosine(r: Ramp) -> float:
    """From ``start`` to 1 along half a cosine: flat at both ends (the cosine annealing of
    Loshchilov & Hutter, ICLR 2017, Eq. 5, run upwards)."""
    return r.start + (1 - r.start) * (1 - math.cos(math.pi * r.step / r.steps)) / 2


def cyclical(r: Ramp) -> float:
    """Cyclical annealing (Fu et al., NAACL 2019, Sec. 3): the steps split into ``cycles`` cycles of
    ``T / M`` steps; in each, with ``tau`` the share of the cycle gone, the weight rises linearly
    from ``start`` to 1 over the first ``ratio`` of it (``tau <= R``) and stays at 1 for the rest."""
    period = r.steps / r.cycles
    tau = (r.step % period) / period
    return r.start + (1 - r.start) * min(tau / r.ratio, 1.0)
