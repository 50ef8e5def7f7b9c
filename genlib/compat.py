"""Make torchvision importable next to a CPU-only torch.

The registry's torchvision wheel is built for CUDA. Next to the CPU torch wheel its compiled
extension fails to load, and ``import torchvision`` then dies registering fake kernels for
``torchvision::nms``, an operator nobody defined. When (and only when) the real extension cannot be
loaded, we define the two operators' schemas ourselves so the Python package imports; the
detection ops then stay unusable, which genlib never needs. Where the extension loads, this module
does nothing beyond loading it, which torchvision would do itself a moment later.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

_LIBRARY = None  # keeps the fallback library alive for the life of the process


def _extension_path() -> Path | None:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidates = sorted(Path(next(iter(spec.submodule_search_locations))).glob("_C*.so"))
    return candidates[0] if candidates else None


def _ops_defined() -> bool:
    try:
        torch.ops.torchvision.nms.default
        return True
    except (AttributeError, RuntimeError):
        return False


def ensure_torchvision_ops() -> None:
    """Load torchvision's extension, or define ``nms`` and ``qnms`` so the package imports."""
    global _LIBRARY
    if _LIBRARY is not None or _ops_defined():
        return
    path = _extension_path()
    if path is not None:
        try:
            torch.ops.load_library(str(path))
        except OSError:
            pass
        if _ops_defined():
            return
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define(
        "qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor"
    )


ensure_torchvision_ops()
