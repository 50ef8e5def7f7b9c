"""Weights read from a file, checked against the network they are for before they load.

``load_state_dict`` reports a misfit as a traceback of many lines (one per mis-shaped tensor);
here it is one line naming the file: the missing, unexpected or mis-shaped tensors (the first
few by name, then how many more) and those holding NaN or inf, which training never saves (a
non-finite loss restores the last good state).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlib.errors import DataError


def listing(keys: list, shown: int = 3) -> str:
    """Up to ``shown`` names, quoted, and how many more."""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(repr(k) for k in keys[:shown]) + more


def nonfinite(weights: Mapping) -> list:
    """The names of the floating-point tensors in ``weights`` that hold NaN or inf."""
    return [k for k, v in weights.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def misfit(module: nn.Module, weights: Any) -> str:
    """What keeps ``weights`` from loading into ``module`` exactly, in a few words; '' if nothing."""
    if not isinstance(weights, Mapping):
        return f"the weights are {type(weights).__name__}, not a mapping of names to tensors"
    expected = module.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    not_tensors = [k for k in expected if k in weights and not isinstance(weights[k], torch.Tensor)]
    shapes = [k for k in expected if isinstance(weights.get(k), torch.Tensor) and weights[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} of the network's {len(expected)} tensors ({listing(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} tensor{'s' * (len(unexpected) > 1)} the network does not have ({listing(unexpected)})")
    if not_tensors:
        problems.append(f"not tensors: {listing(not_tensors)}")
    if shapes:
        k = shapes[0]
        more = f" (and {len(shapes) - 1} more of another shape)" if len(shapes) > 1 else ""
        problems.append(f"{k!r} is {tuple(weights[k].shape)}, the network's is {tuple(expected[k].shape)}{more}")
    bad = nonfinite(weights)
    if bad:
        problems.append(f"NaN or inf in {listing(bad)}")
    return "; ".join(problems)


def load_into(module: nn.Module, weights: Any, file: str | Path, what: str, remake: str) -> nn.Module:
    """Load ``weights`` (``what`` of ``file``) into ``module``, or refuse them with one line."""
    problem = misfit(module, weights)
    if problem:
        raise DataError(f"{file}: {what} do not fit the network the config builds: {problem}; {remake}")
    module.load_state_dict(weights)
    return module
