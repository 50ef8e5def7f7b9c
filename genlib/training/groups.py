"""Several named optimizers (and their schedules) that the training state holds as one.

A method with several networks (a GAN's generator and discriminator) steps each optimizer itself;
the state, the checkpoint and the NaN restore see one object with ``state_dict`` and
``load_state_dict``, keyed by the optimizers' names.
"""
from __future__ import annotations

from typing import Any

import torch

from genlib.training.lr import make_scheduler


class OptimizerGroup(dict):
    """``name -> optimizer``; its state dict is ``name -> that optimizer's state dict``."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.values():
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {name: opt.state_dict() for name, opt in self.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, opt in self.items():
            opt.load_state_dict(state[name])


class SchedulerGroup:
    """One ``optim.schedule`` per optimizer of a group, stepped together."""

    def __init__(self, optimizers: OptimizerGroup, optim_params, total_steps: int) -> None:
        self.schedulers = {name: make_scheduler(opt, optim_params, total_steps) for name, opt in optimizers.items()}

    def step(self) -> None:
        for s in self.schedulers.values():
            s.step()

    def get_last_lr(self) -> list[float]:
        """The first optimizer's learning rate first (the one the ``lr`` curve shows)."""
        return [s.get_last_lr()[0] for s in self.schedulers.values()]

    def state_dict(self) -> dict[str, Any]:
        return {name: s.state_dict() for name, s in self.schedulers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, s in self.schedulers.items():
            s.load_state_dict(state[name])


def adamw(params, optim_params, lr: float | None = None, betas: tuple[float, ...] | None = None) -> torch.optim.AdamW:
    """AdamW with ``optim``'s settings, the learning rate and betas replaceable by a method's own."""
    o = optim_params
    return torch.optim.AdamW(params, lr=o.lr if lr is None else lr, betas=tuple(o.betas if betas is None else betas),
                             weight_decay=o.weight_decay)
