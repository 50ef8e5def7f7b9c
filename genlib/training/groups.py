"""The named optimizers of a method (and their schedules), which the training state holds as one.

A method names its optimizers (``Method.optimizers``: ``net`` for a diffusion's network, a GAN's
``generator`` and ``discriminator``); the state, the checkpoint and the NaN restore see one object
with ``state_dict`` and ``load_state_dict``, keyed by those names.
"""
from __future__ import annotations

from typing import Any

from genlib.training.lr import make_scheduler


class OptimizerGroup(dict):
    """``name -> optimizer``; its state dict is ``name -> that optimizer's state dict``."""

    def state_dict(self) -> dict[str, Any]:
        return {name: opt.state_dict() for name, opt in self.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, opt in self.items():
            opt.load_state_dict(state[name])


class SchedulerGroup:
    """One ``optim.schedule`` per optimizer of a group, stepped together; ``start`` steps already
    taken (a continued run, :mod:`genlib.pipeline.continued`)."""

    def __init__(self, optimizers: OptimizerGroup, optim_params, total_steps: int, start: int = 0) -> None:
        self.schedulers = {name: make_scheduler(opt, optim_params, total_steps, start) for name, opt in optimizers.items()}

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

