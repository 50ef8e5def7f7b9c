"""Which experiments are one configuration, and what they measure together.

A configuration is the values of the params that differ between experiments, the seed left out:
experiments that differ only in ``seed`` are repeats and become one point (mean, min, max, n). A
param in another method's section (``lim.alpha`` for a DLPM run) does not apply to the run, so
it does not split it from the others. A series of a plot against ``x_key`` is a configuration
with ``x_key`` also left out.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from genlib.compare.experiments import Experiment

SEED = "seed"
ALPHA = "alpha"  # the x-axis "alpha": each experiment's own ``<method>.alpha``


@dataclass(frozen=True)
class Stat:
    """A metric over the seeds of one configuration."""

    mean: float
    lo: float
    hi: float
    n: int


@dataclass
class Group:
    label: str  # "method=ddpm, training.epochs=5"
    values: dict[str, object]  # the differing params that apply, key -> value
    exps: list[Experiment]

    def stat(self, metric: str) -> Stat | None:
        return aggregate([e.metrics[metric] for e in self.exps if metric in e.metrics])


def aggregate(values: list[float]) -> Stat | None:
    """Mean, min, max and count of the finite values (a NaN run does not hide the others)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    return Stat(sum(finite) / len(finite), min(finite), max(finite), len(finite))


def x_value(e: Experiment, x_key: str):
    """The experiment's value of ``x_key``; ``alpha`` means its own method's ``<method>.alpha``."""
    if x_key == ALPHA:
        return e.params.get(f"{e.params.get('method')}.alpha")
    return e.params.get(x_key)


def applies(e: Experiment, key: str, methods: set[str]) -> bool:
    """False for a key of another method's section (``lim.*`` in a DLPM run)."""
    section = key.split(".", 1)[0]
    return "." not in key or section not in methods or section == e.params.get("method")


def _shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def config_of(e: Experiment, keys: list[str], methods: set[str]) -> dict[str, object]:
    return {k: e.params.get(k) for k in keys if applies(e, k, methods)}


def label(values: dict[str, object]) -> str:
    return ", ".join(f"{k}={_shown(v)}" for k, v in values.items()) or "all experiments"


def distinct_runs(exps: list[Experiment]) -> list[Experiment]:
    """The experiments, each set of params once: a run that repeats another's params (an
    experiment restored from the run cache of its baseline) is not a second seed."""
    seen: set[str] = set()
    out = []
    for e in exps:
        key = json.dumps(e.params, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def methods_of(exps: list[Experiment]) -> set[str]:
    return {str(e.params["method"]) for e in exps if "method" in e.params}


def _order(values: dict[str, object], keys: list[str]) -> tuple:
    """Numbers by value, then text, then a param that does not apply."""
    return tuple((0, v, "") if _numeric(v) else (1, 0, _shown(v)) if k in values else (2, 0, "") for k in keys
                 for v in [values.get(k)])


def group(exps: list[Experiment], keys: list[str], methods: set[str] | None = None) -> list[Group]:
    """The experiments by their values of ``keys`` (which should not hold the seed), sorted by
    those values; ``methods`` (default: those of ``exps``) name the method sections."""
    methods = methods_of(exps) if methods is None else methods
    groups: dict[str, Group] = {}
    for e in exps:
        values = config_of(e, keys, methods)
        key = json.dumps(values, sort_keys=True, default=str)
        groups.setdefault(key, Group(label(values), values, [])).exps.append(e)
    return sorted(groups.values(), key=lambda g: _order(g.values, keys))


def series_keys(varying: list[str], x_key: str, methods: set[str]) -> list[str]:
    """The params a series is keyed on: every differing one but the x-axis (against alpha: each
    method's ``<method>.alpha``) and the seed."""
    drop = {SEED, x_key} | ({f"{m}.alpha" for m in methods} if x_key == ALPHA else set())
    return [k for k in varying if k not in drop]


@dataclass(frozen=True)
class Point:
    x: float
    stat: Stat


def series(exps: list[Experiment], varying: list[str], x_key: str, metric: str) -> dict[str, list[Point]]:
    """Metric against ``x_key``: one series per configuration, one point per x (its seeds
    aggregated), sorted by x. Experiments without a numeric x or the metric are left out."""
    methods = methods_of(exps)
    usable = [e for e in exps if metric in e.metrics and _numeric(x_value(e, x_key)) and applies(e, x_key, methods)]
    out = {}
    for g in group(usable, series_keys(varying, x_key, methods), methods):
        by_x: dict[float, list[float]] = {}
        for e in g.exps:
            by_x.setdefault(float(x_value(e, x_key)), []).append(e.metrics[metric])
        points = [Point(x, aggregate(v)) for x, v in sorted(by_x.items())]
        out[g.label] = [p for p in points if p.stat is not None]
    return {k: v for k, v in out.items() if v}


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
