"""A hierarchical VAE in one file: its params (the block graph among them), data shape and weights.

``torch.save`` of plain dicts, lists, numbers and tensors, read back with ``weights_only=True``, so
loading runs no pickled code; the model rebuilds from the file alone, without ``params.yaml``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from genlib import io
from genlib.errors import DataError

FORMAT = "genlib-hvae/1"


def save_model(path: str | Path, nets: nn.ModuleDict, params, data_shape: tuple[int, ...]) -> None:
    """Write ``nets`` (the blocks) with the params they were built from (``HVAEParams``)."""
    p = dataclasses.asdict(params)
    p["blocks"] = params.graph.to_list()  # the checked graph; a model file's path means nothing elsewhere
    p["model_file"] = None
    body = {"format": FORMAT, "params": p, "data_shape": list(data_shape),
            "weights": {k: v.detach().cpu() for k, v in nets.state_dict().items()}}
    io.save_torch(path, body)


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """``(method, nets, data_shape)`` rebuilt from a file :func:`save_model` wrote."""
    from genlib.methods.hvae.method import HVAE, HVAEParams

    body = io.load_torch(path)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise DataError(f"{path}: not a genlib hvae model file (format {FORMAT})")
    method = HVAE(HVAEParams(**{**body["params"], "blocks": tuple(body["params"]["blocks"])}))
    data_shape = tuple(body["data_shape"])
    nets = method.networks(data_shape).to(device)
    nets.load_state_dict(body["weights"])
    return method, nets.eval(), data_shape
