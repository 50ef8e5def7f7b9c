"""Weights read from a file, checked against the network they are for before they load.

``load_state_dict`` reports a misfit as a traceback of many lines (one per mis-shaped tensor);
here it is one line naming the file: the missing, unexpected or mis-shaped tensors (the first
few by name, then how many more) and those holding NaN or inf, which training never saves (a
non-finite loss restores the last good state).

A file genlib writes (the checkpoint, the resume file, ``hvae.pt``) also holds the SHA-256 of
each of its tensors (:func:`with_digests`), checked when it is read (:func:`digest_problem`):
bytes overwritten in a tensor, which torch loads without a word, are then one line naming the
file and the tensor. The digests follow from the tensors, so identical runs still write
identical bytes.
"""
from __future__ import annotations

import hashlib
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


DIGESTS = "tensor_sha256"  # the key of a body's digests: dotted tensor path -> SHA-256 (hex)


def _tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in the nested dicts and lists of ``obj``, by dotted path."""
    if isinstance(obj, torch.Tensor):
        return {prefix.rstrip("."): obj}
    found: dict[str, torch.Tensor] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if k != DIGESTS:
                found.update(_tensors(v, f"{prefix}{k}."))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found.update(_tensors(v, f"{prefix}{i}."))
    return found


def tensor_digest(t: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (as stored: contiguous, on the CPU)."""
    h = hashlib.sha256(f"{t.dtype} {tuple(t.shape)} ".encode())
    flat = t.detach().cpu().contiguous().reshape(-1)
    h.update(flat.view(torch.uint8).numpy() if flat.numel() else b"")
    return h.hexdigest()


def with_digests(body: dict) -> dict:
    """``body`` and the digest of each of its tensors, under :data:`DIGESTS`."""
    return {**body, DIGESTS: {name: tensor_digest(t) for name, t in _tensors(body).items()}}


def digest_problem(body: Any) -> str:
    """What differs between ``body``'s tensors and the digests written with them; '' if nothing."""
    if not isinstance(body, Mapping) or not isinstance(body.get(DIGESTS), Mapping):
        return "it holds no digests of its tensors (written by an older genlib, or not by genlib)"
    saved, tensors = body[DIGESTS], _tensors(body)
    changed = [k for k, t in tensors.items() if saved.get(k) != tensor_digest(t)]
    gone = [k for k in saved if k not in tensors]
    if changed:
        return (f"its tensors do not match the digests written with them: {listing(changed)} ({len(changed)} of "
                f"{len(tensors)}) changed since it was written (the file was altered or damaged)")
    if gone:
        return f"tensors written with it are gone: {listing(gone)} ({len(gone)} of {len(saved)})"
    return ""
