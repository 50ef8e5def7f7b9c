"""Step-wise training curves written offline with dvclive (no cloud logger)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from genlib import io

STEP_SIGNAL = "DVCLIVE_STEP_COMPLETED"  # dvclive.vscode's signal file for the VS Code extension


class CurveLogger:
    """Writes ``<dir>/plots/metrics/<name>.tsv`` (step, value) for every logged name.

    dvclive appends to its files while training runs, so it writes into a hidden sibling folder.
    Every ``publish_every`` seconds (and at the end) each curve file is copied into ``<dir>``
    through a temporary file and a rename, so the curves can be read while training runs
    (``dvc plots show``, a notebook, ``tail``) and a file found there always holds whole rows,
    even after a kill. ``close`` moves the finished folder into place. A resumed run replays the
    history it kept in its checkpoint, so its curves start at step 0 again.
    """

    def __init__(self, directory: str | Path, publish_every: float = 2.0) -> None:
        from dvclive import Live  # imported here: dvclive is slow to import

        self.directory = Path(directory)
        self.staging = self.directory.with_name(f".{self.directory.name}.partial")
        shutil.rmtree(self.staging, ignore_errors=True)
        io.on_abort(lambda: shutil.rmtree(self.staging, ignore_errors=True))  # a failed stage leaves none
        # dvcyaml=False, save_dvc_exp=False: inside a DVC stage dvclive must not rewrite dvc.yaml
        # nor create experiments of its own.
        self.live = Live(str(self.staging), dvcyaml=False, save_dvc_exp=False, report=None)
        self.last: dict[str, float] = {}
        self.publish_every = publish_every
        self.published = time.monotonic()

    def log(self, step: int, values: dict[str, float]) -> None:
        self.last = dict(values)
        self.live.step = step
        for name, value in values.items():
            self.live.log_metric(name, value)
        self.live.next_step()
        if time.monotonic() - self.published >= self.publish_every:
            self.publish()

    def publish(self) -> None:
        """Copy the curves written so far into ``<dir>``, each file whole (a rename), and remove
        the curves there that this run has not written (an earlier run's)."""
        source = self.staging / "plots" / "metrics"
        target = self.directory / "plots" / "metrics"
        names = {f.name for f in source.glob("*.tsv")}
        for name in sorted(names):
            io.copy_file(source / name, target / name)
        for old in target.glob("*.tsv") if target.is_dir() else ():
            if old.name not in names:
                old.unlink()
        self.published = time.monotonic()

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
        io.move(self.staging, self.directory)  # with the stage's other outputs (genlib.io.outputs_together)


class NullLogger:
    last: dict[str, float] = {}

    def log(self, step: int, values: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass
