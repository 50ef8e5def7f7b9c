"""Hooks into the training loop: a callback overrides the ones it needs; each default does nothing.

Callbacks are entries of :data:`genlib.registry.CALLBACKS`, named in ``training.callbacks`` and
built as ``cls(cfg)``; a plugin registers its own with ``@CALLBACKS.register("name")``. The loop
calls, in order of the list:

- ``on_train_start(state)`` once, before the first step (``state.step`` > 0 on a resumed run);
- ``on_epoch_end(epoch, state)`` after the last step of each epoch (1 for the first, also in a run
  continued from another, ``training.init_from``). After a
  non-finite loss the loop rolls back and redoes steps, so an epoch may end twice;
- ``on_log(step, row, state)`` at every logged step, with the row the sinks received;
- ``on_eval(step, metrics, state)`` after each evaluation during training (``training.eval_every``),
  with the validation metrics, which are also in that step's row;
- ``should_stop(state)`` at every logged step, after the hooks above: true from any callback ends
  training there, as if it were the last step (the checkpoint is that step's state);
- ``on_train_end(state)`` once, when training ends (at its last step or stopped by a callback;
  not when it is interrupted).

Two built-in callbacks follow the named ones, added from params rather than by name:
:class:`KeepWeights` (``training.keep_every``, ``training.select``) and :class:`EarlyStopping`
(``training.patience``).

A callback should keep no state of its own that a resumed run needs: the state's ``history``
(every logged row, replayed on resume) holds what the loop logged, and ``state.kept`` the
weights kept. Under several processes every
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
    """The callbacks ``training.callbacks`` names, then the kept weights (``training.keep_every``,
    ``training.select``) and early stopping (``training.patience``) when they are set."""
    t = cfg.training
    out = [CALLBACKS.get(name)(cfg) for name in t.callbacks]
    if t.keep_every > 0 or t.select is not None:
        out.append(KeepWeights(t.keep_every, t.select))
    if t.patience > 0:
        out.append(EarlyStopping(t.monitor, t.patience))
    return out


# The badness of a value for each way a metric is better (validation_metrics.DIRECTION): smaller is better.
BADNESS = {"lower": lambda v: v, "higher": lambda v: -v, "near 0": abs,
           "near 1": lambda v: abs(math.log(v)) if v > 0 else math.inf}  # a ratio: 0 is the worst


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


class KeepWeights(Callback):
    """Keep the weights (raw and every EMA) in ``state.kept``: as ``step_<n>`` every ``keep_every``
    steps (0 = none), and as ``best`` those of the evaluation that scored best on ``select`` (the
    first of equal bests). The state carries them, so a resumed run keeps what an uninterrupted
    one would; the train stage writes each to ``data/model/kept/<name>.pt``."""

    def __init__(self, keep_every: int, select: str | None) -> None:
        self.keep_every = keep_every
        self.best = EarlyStopping(select, 0) if select is not None else None

    def on_log(self, step: int, row: dict[str, float], state) -> None:
        if self.keep_every and step % self.keep_every == 0:
            state.kept[f"step_{step}"] = _weights(state)

    def on_eval(self, step: int, metrics: dict[str, float], state) -> None:
        if self.best is not None and self.best.best_step(state) == step:
            state.kept["best"] = _weights(state)


def _weights(state) -> dict:
    """A copy of the state's weights now: ``{"step", "net", "ema"}``."""
    copy = lambda sd: {k: v.detach().clone() for k, v in sd.items()}
    return {"step": state.step, "net": copy(state.net.state_dict()),
            "ema": {rate: copy(sd) for rate, sd in state.ema.state_dict().items()}}
