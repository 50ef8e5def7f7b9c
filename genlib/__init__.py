"""genlib: a DVC-native experiment manager for deep generative models.

``genlib.load`` (a trained model to sample from) and ``genlib.load_config`` (a params file) are
:mod:`genlib.api`'s, imported on first use: the stages import ``genlib`` too, and their code
dependencies must not grow by the API's modules (:mod:`genlib.pipeline.code`).
"""
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genlib")
except PackageNotFoundError:  # a source tree on the path without `pip install -e .`
    __version__ = "unknown (not installed)"
_API = ("load", "load_config")


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module("genlib.api"), name)
    raise AttributeError(f"module 'genlib' has no attribute {name!r}")
