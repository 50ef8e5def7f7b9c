"""Hooks into the training loop: a callback overrides the ones it needs; each default does nothing.

Callbacks are entries of :data:`genlib.registry.CALLBACKS`, named in ``training.callbacks`` and
built as ``cls(cfg)``; a plugin registers its own with ``@CALLBACKS.register("name")``. The loop
calls, in order of the list:

- ``on_train_start(state)`` once, before the first step (``state.step`` > 0 on a resumed run);
- ``on_epoch_end(epoch, state)`` after the last step of each epoch (1 for the first). After a
  non-finite loss the loop rolls back and redoes steps, so an epoch may end twice;
- ``on_log(step, row, state)`` at every logged step, with the row the sinks received;
- ``on_eval(step, metrics, state)`` after each evaluation during training (``training.eval_every``),
  with the validation metrics, which are also in that step's row;
- ``should_stop(state)`` at every logged step, after the hooks above: true from any callback ends
  training there, as if it were the last step (the checkpoint is that step's state);
- ``on_train_end(state)`` once, when training ends (at its last step or stopped by a callback;
  not when it is interrupted).

A callback should keep no state of its own that a resumed run needs: the state's ``history``
(every logged row, replayed on resume) holds what the loop logged. Under several processes every
process calls the callbacks alike, so a stop must follow from what every process sees.
"""
from __future__ import annotations

import math

from genlib.registry import CALLBACKS
from genlib.training.validation_metrics import DIRECTION


class Callback:
    def on_train_start(self, state) -> None:
        pass

    def on_epoch_end(self, epoch: int, state) -> None:
        pass

    def on_log(self, step: int, row: dict[str, float], state) -> None:
        pass

    def on_eval(self, step: int, metrics: dict[str, float], state) -> None:
        pass

    def should_stop(self, state) -> bool:
        return False

    def on_train_end(self, state) -> None:
        pass


def build_callbacks(cfg) -> list[Callback]:
    """The callbacks ``training.callbacks`` names, then early stopping when ``training.patience`` is set."""
    out = [CALLBACKS.get(name)(cfg) for name in cfg.training.callbacks]
    if cfg.training.patience > 0:
        out.append(EarlyStopping(cfg.training.monitor, cfg.training.patience))
    return out


# The badness of a value for each way a metric is better (validation_metrics.DIRECTION): smaller is better.
BADNESS = {"lower": lambda v: v, "higher": lambda v: -v, "near 0": abs}


class EarlyStopping(Callback):
    """Stop when the validation metric ``monitor`` (a column of the logged rows, ``val_<metric>``)
    has not improved on its best for ``patience`` evaluations in a row. Computed from the state's
    history alone, so a resumed run stops where an uninterrupted one would."""

    def __init__(self, monitor: str, patience: int, direction: str = "") -> None:
        self.column, self.patience = f"val_{monitor}", patience
        self.badness = BADNESS[direction or DIRECTION[monitor]]

    def _scores(self, state) -> list[tuple[int, float]]:
        """(step, badness) of every evaluation logged so far; a non-finite value is the worst."""
        rows = [(step, self.badness(row[self.column])) for step, row in state.history if self.column in row]
        return [(step, s if math.isfinite(s) else math.inf) for step, s in rows]

    def best_step(self, state) -> int | None:
        """The step of the best evaluation so far (the first of equal bests), None before any."""
        scores = self._scores(state)
        return min(scores, key=lambda r: r[1])[0] if scores else None

    def should_stop(self, state) -> bool:
        scores = self._scores(state)
        if len(scores) <= self.patience:
            return False
        best = min(range(len(scores)), key=lambda i: scores[i][1])  # the first of equal bests
        return len(scores) - 1 - best >= self.patience

