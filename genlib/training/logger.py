"""The sinks of the training curves, behind one small interface, and the folder they write into.

The loop calls ``log(step, values)`` on one object; :class:`Loggers` passes each row on to the
sinks ``run.loggers`` names, each an entry of :data:`genlib.registry.LOGGERS` built as
``sink(folder, cfg)``. Every sink writes its files under ``folder.path``, a fresh folder beside
the curves' output (``plots/train``) that is moved into place whole when training succeeds, so a
failed or killed stage never leaves a mix of two runs. A plugin adds its own sink (wandb, say) by
registering a class with ``log`` and ``close``, without editing genlib:

    @LOGGERS.register("my_sink")
    class MySink(Logger):
        def __init__(self, folder, cfg): ...
        def log(self, step, values): ...

The built-in sinks are offline: ``dvclive`` (the default, the curves DVC plots) and
``tensorboard`` (event files under ``plots/train/tensorboard``).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from genlib import io
from genlib.registry import LOGGERS

STEP_SIGNAL = "DVCLIVE_STEP_COMPLETED"  # dvclive.vscode's signal file for the VS Code extension


class LogFolder:
    """The curves' output folder ``live`` (``plots/train``) and ``path``, the hidden sibling that
    the sinks write into while training runs; :meth:`commit` puts it in ``live``'s place whole."""

    def __init__(self, live: str | Path) -> None:
        self.live = Path(live)
        self.path = self.live.with_name(f".{self.live.name}.partial")
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        io.on_abort(lambda: shutil.rmtree(self.path, ignore_errors=True))  # a failed stage leaves none

    def commit(self) -> None:
        """Replace ``live`` by what the sinks wrote, with the stage's other outputs
        (:func:`genlib.io.outputs_together`, whose journal finishes the swap after a kill)."""
        io.move(self.path, self.live)


class Logger:
    """A sink: receives every logged row of scalars, at its step, in order. ``close`` is called
    once, only when training succeeded, before the folder is committed."""

    def log(self, step: int, values: dict[str, float]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CurveLogger(Logger):
    """dvclive: ``<folder>/plots/metrics/<name>.tsv`` (step, value) for every logged name.

    dvclive appends to its files while training runs. Every ``publish_every`` seconds (and at the
    end) each curve file is copied into the live folder through a temporary file and a rename, so
    the curves can be read while training runs (``dvc plots show``, a notebook, ``tail``) and a
    file found there always holds whole rows, even after a kill. A resumed run replays the history
    it kept in its checkpoint, so its curves start at step 0 again.
    """

    def __init__(self, folder: LogFolder, cfg=None, publish_every: float = 2.0) -> None:
        from dvclive import Live  # imported here: dvclive is slow to import

        self.folder = folder
        # dvcyaml=False, save_dvc_exp=False: inside a DVC stage dvclive must not rewrite dvc.yaml
        # nor create experiments of its own.
        self.live = Live(str(folder.path), dvcyaml=False, save_dvc_exp=False, report=None)
        self.publish_every = publish_every
        self.published = time.monotonic()

    def log(self, step: int, values: dict[str, float]) -> None:
        self.live.step = step
        for name, value in values.items():
            self.live.log_metric(name, value)
        self.live.next_step()
        if time.monotonic() - self.published >= self.publish_every:
            self.publish()

    def publish(self) -> None:
        """Copy the curves written so far into the live folder, each file whole (a rename), and
        remove the curves there that this run has not written (an earlier run's)."""
        source = self.folder.path / "plots" / "metrics"
        target = self.folder.live / "plots" / "metrics"
        names = {f.name for f in source.glob("*.tsv")}
        for name in sorted(names):
            io.copy_file(source / name, target / name)
        for old in target.glob("*.tsv") if target.is_dir() else ():
            if old.name not in names:
                old.unlink()
        self.published = time.monotonic()

    def close(self) -> None:
        try:
            self.live.end()
        except FileNotFoundError as err:
            # dvclive's last act is removing a VS Code signal file under DVC_ROOT, which every
            # worker of `dvc queue start -j N` shares: another worker may have removed it first.
            if Path(err.filename or "").name != STEP_SIGNAL:
                raise


class TensorBoardLogger(Logger):
    """TensorBoard event files in ``<folder>/tensorboard`` (``torch.utils.tensorboard``, offline):
    one scalar per logged name and step. While training runs they are in the hidden folder
    (``tensorboard --logdir plots/.train.partial/tensorboard``), then in ``plots/train/tensorboard``."""

    def __init__(self, folder: LogFolder, cfg=None) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imported here: tensorboard is slow to import

        self.writer = SummaryWriter(log_dir=str(folder.path / "tensorboard"), flush_secs=2)

    def log(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.writer.close()


class Loggers:
    """The sinks named by ``names`` (``run.loggers``), all writing into one :class:`LogFolder`
    of ``directory``; what the training loop logs through. ``last`` is the last row logged."""

    def __init__(self, names, directory: str | Path, cfg=None) -> None:
        self.folder = LogFolder(directory)
        self.sinks = [LOGGERS.get(name)(self.folder, cfg) for name in names]
        self.last: dict[str, float] = {}

    def log(self, step: int, values: dict[str, float]) -> None:
        self.last = dict(values)
        for sink in self.sinks:
            sink.log(step, values)

    def close(self) -> None:
        """Finish every sink and move the folder into place (called only when training succeeded;
        inside a stage, at its end with its other outputs)."""
        for sink in self.sinks:
            sink.close()
        self.folder.commit()


class NullLogger:
    last: dict[str, float] = {}

    def log(self, step: int, values: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass
