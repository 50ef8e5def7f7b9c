"""The hierarchical VAE (``method: hvae``): blocks, their graph, the method, one-file models.

``HVAE``, ``HVAEParams``, ``load_model`` and ``save_model`` are imported on first use: the graph
and the spec are read without torch by ``genlib check``, and importing them runs this file.
"""
from importlib import import_module

_LAZY = {"HVAE": "method", "HVAEParams": "spec", "load_model": "serialise", "save_model": "serialise"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"genlib.methods.hvae.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'genlib.methods.hvae' has no attribute {name!r}")
