"""Where the network runs and how (``run:`` section): the device, bf16 autocast and torch.compile.

``run.device`` is checked against this machine before any work, ``run.precision: bf16`` against
the device's bfloat16 support, and both fail with a one-line :class:`~genlib.errors.ConfigError`.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from genlib import sizes
from genlib.errors import ConfigError


def _mps_available() -> bool:
    return torch.backends.mps.is_available()


def available() -> list[str]:
    """The ``run.device`` values that work here."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; an explicit choice must exist on this machine."""
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if choice not in available():
        raise ConfigError("run.device", choice, f"one of {', '.join(available())} on this machine")
    return torch.device(choice)


def free_memory(device: torch.device) -> tuple[int | None, str]:
    """Bytes free for tensors on ``device`` and what says so: the GPU's free memory, the CPU's
    ``MemAvailable``; None (not known) on MPS."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0], f"free on {device}"
    if device.type == "cpu":
        return sizes.available_memory(), "MemAvailable"
    return None, ""


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)  # Ampere and newer
    if device.type == "mps":
        try:
            torch.ones(1, device=device, dtype=torch.bfloat16)  # macOS 14 and newer
        except (RuntimeError, TypeError):
            return False
    return True  # the CPU's autocast computes bfloat16 everywhere (slowly without AVX512-BF16)


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "bf16" and not bf16_supported(device):
        raise ConfigError("run.precision", precision, f"'fp32' on {device} (it has no native bfloat16)")


@contextlib.contextmanager
def denormals_flushed(device: torch.device) -> Iterator[None]:
    """On the CPU, flush denormal floats (below 1.2e-38) to zero while the block runs, then put the
    processor's previous mode back (the flag is global: it also governs Python's own floats).
    Heavy-tailed noise drives SiLU's exponentials into that range, where x86 arithmetic is several
    times slower (a 2D DLPM sampling step spent 40% longer in SiLU than on Gaussian inputs);
    values that small change no result that matters."""
    if device.type != "cpu":
        yield
        return
    before = flushing_denormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def flushing_denormals() -> bool:
    """Whether the CPU flushes denormals now (torch has no getter: a denormal is made and looked at)."""
    return float(torch.tensor([1e-39], dtype=torch.float32) * 2) == 0.0


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bfloat16 autocast of the network's forward pass (matmuls in bf16, reductions in fp32); in
    fp32 no context at all (a disabled autocast still saves and restores its state every step)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def compiled(net: nn.Module, compile: bool) -> nn.Module:
    """``net`` as the forward pass calls it. The compiled wrapper's state_dict prefixes every key
    with ``_orig_mod.``, so states and checkpoints keep ``net`` itself and only calls go through this."""
    return torch.compile(net) if compile else net
