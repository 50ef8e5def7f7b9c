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

from genlib.registry import CALLBACKS


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
    """The callbacks ``training.callbacks`` names."""
    return [CALLBACKS.get(name)(cfg) for name in cfg.training.callbacks]
