"""Step-wise training curves written offline with dvclive (no cloud logger)."""
from __future__ import annotations

import shutil
from pathlib import Path

from genlib import io

STEP_SIGNAL = "DVCLIVE_STEP_COMPLETED"  # dvclive.vscode's signal file for the VS Code extension


class CurveLogger:
    """Writes ``<dir>/plots/metrics/<name>.tsv`` (step, value) for every logged name.

    dvclive appends to its files while training runs, so it writes into a hidden sibling folder;
    ``close`` moves the finished folder into place, and a kill never leaves a partial curve at
    ``<dir>`` (a resumed run replays the history it kept in the checkpoint).
    """

    def __init__(self, directory: str | Path) -> None:
        from dvclive import Live  # imported here: dvclive is slow to import

        self.directory = Path(directory)
        self.staging = self.directory.with_name(f".{self.directory.name}.partial")
        shutil.rmtree(self.staging, ignore_errors=True)
        io.on_abort(lambda: shutil.rmtree(self.staging, ignore_errors=True))  # a failed stage leaves none
        # dvcyaml=False, save_dvc_exp=False: inside a DVC stage dvclive must not rewrite dvc.yaml
        # nor create experiments of its own.
        self.live = Live(str(self.staging), dvcyaml=False, save_dvc_exp=False, report=None)
        self.last: dict[str, float] = {}

    def log(self, step: int, values: dict[str, float]) -> None:
        self.last = dict(values)
        self.live.step = step
        for name, value in values.items():
            self.live.log_metric(name, value)
        self.live.next_step()

    def close(self) -> None:
        """Finish the files and move them into place (called only when training succeeded; inside
        a stage, at its end with its other outputs)."""
        try:
            self.live.end()
        except FileNotFoundError as err:
            # dvclive's last act is removing a VS Code signal file under DVC_ROOT, which every
            # worker of `dvc queue start -j N` shares: another worker may have removed it first.
            if Path(err.filename or "").name != STEP_SIGNAL:
                raise
        io.at_commit(self._swap)  # with the stage's other outputs (genlib.io.outputs_together)

    def _swap(self) -> None:
        old = self.directory.with_name(f".{self.directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        self.staging.rename(self.directory)
        shutil.rmtree(old, ignore_errors=True)


class NullLogger:
    last: dict[str, float] = {}

    def log(self, step: int, values: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass
