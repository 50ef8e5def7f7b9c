"""A hierarchical VAE in one file: its params (the block graph among them), data shape and weights.

``torch.save`` of plain dicts, lists, numbers and tensors, read back with ``weights_only=True``, so
loading runs no pickled code; the model rebuilds from the file alone, without ``params.yaml``.
A block of a plugin's type (:mod:`genlib.methods.hvae.custom`) is recorded by its type name and
config in the graph, and the file names the module that registered it (``block_modules``): loading
imports no code, so that module must be imported first (listed under ``plugins:``), or loading
fails with one line naming it.
The file holds the digests of its tensors (:func:`genlib.weights.with_digests`), checked at load.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from genlib import io
from genlib.errors import ConfigError, DataError
from genlib.methods.hvae.graph import TYPES
from genlib.params import build
from genlib.registry import HVAE_BLOCKS
from genlib.weights import digest_problem, listing, load_into, with_digests

FORMAT = "genlib-hvae/1"
REMAKE = "rerun training to remake it (dvc repro)"


def save_model(path: str | Path, nets: nn.ModuleDict, params, data_shape: tuple[int, ...]) -> None:
    """Write ``nets`` (the blocks) with the params they were built from (``HVAEParams``)."""
    p = dataclasses.asdict(params)
    p["blocks"] = params.graph.to_list()  # the checked graph; a model file's path means nothing elsewhere
    p["model_file"] = None
    modules = {b.type: HVAE_BLOCKS.get(b.type).__module__ for b in params.graph.blocks if b.type not in TYPES}
    body = {"format": FORMAT, "params": p, "data_shape": list(data_shape), "block_modules": modules,
            "weights": {k: v.detach().cpu() for k, v in nets.state_dict().items()}}
    io.save_torch(path, with_digests(body))


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """``(method, nets, data_shape)`` rebuilt from a file :func:`save_model` wrote; a file of
    another structure is refused with one line naming it and what is wrong."""
    from genlib.methods.hvae.method import HVAE, HVAEParams

    body = io.load_torch(path, "hvae model file", REMAKE)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise DataError(f"{path}: not a genlib hvae model file (format {FORMAT}); {REMAKE}")
    problem = _malformed(body, [f.name for f in dataclasses.fields(HVAEParams)])
    if problem:
        raise DataError(f"{path}: {problem}; {REMAKE}")
    data_shape = tuple(body["data_shape"])
    missing = _missing_block_types(body)
    if missing:
        raise DataError(f"{path}: {missing}")
    try:
        method = HVAE(build(HVAEParams, {**body["params"], "blocks": tuple(body["params"]["blocks"])}, "params."))
        nets = method.networks(data_shape)
    except ConfigError as err:
        raise DataError(f"{path}: its {err.key} {err.value!r} is not allowed (expected {err.allowed}); {REMAKE}") from None
    load_into(nets, body["weights"], path, "the weights", REMAKE)
    problem = digest_problem(body)
    if problem:
        raise DataError(f"{path}: {problem}; {REMAKE}")
    return method, nets.to(device).eval(), data_shape


def _missing_block_types(body: dict) -> str:
    """What keeps a plugin's block type the file uses from being known here; '' if nothing."""
    modules = body.get("block_modules") or {}
    for block in body["params"]["blocks"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if isinstance(kind, str) and kind not in TYPES and kind not in HVAE_BLOCKS:
            where = f"plugin module {modules[kind]!r}" if kind in modules else "a plugin module"
            return f"its block {block.get('name')!r} is of type {kind!r}, registered by {where}, which is not loaded (import it, or list it under plugins:)"
    return ""


def _malformed(body: dict, fields: list[str]) -> str:
    """What keeps ``body`` from being the body :func:`save_model` writes; '' if nothing."""
    missing = [k for k in ("params", "data_shape", "weights") if k not in body]
    if missing:
        return f"no {', '.join(missing)} in it (expected format, params, data_shape and weights)"
    params, shape = body["params"], body["data_shape"]
    if not isinstance(params, dict):
        return f"its params are {type(params).__name__}, not a mapping"
    absent = [k for k in fields if k not in params]
    if absent:
        return f"its params lack {listing(absent)} (expected {', '.join(fields)})"
    extra = [k for k in params if k not in fields]
    if extra:
        return f"its params hold {listing(extra)}, which an hvae does not have"
    if not isinstance(params["blocks"], (list, tuple)):
        return f"its params' blocks are {type(params['blocks']).__name__}, not a list"
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d > 0 for d in shape):
        return f"its data_shape {shape!r} is not a list of positive integers"
    return ""
