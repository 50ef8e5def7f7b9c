"""How a stage runs: check ``params.yaml`` at the door, set its compute threads (``run.threads``),
check the stage's key, run it, and turn the errors a user can fix into one line (exit 2; 130 for
a stop: a Ctrl-C, or a training stopped with a resume checkpoint left)."""
from __future__ import annotations

import errno
import os
import sys
from typing import Callable

from genlib.errors import ConfigError, DataError, DiskFull, NonFiniteLoss, Stopped, TrainingInterrupted, WorkersFailed, YAMLSyntaxError
from genlib.registry import UnknownNameError


def fail(message: str) -> None:
    """Print one line naming the problem and exit non-zero."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def stage_main(stage: str, step: Callable, params_path: str = "params.yaml") -> None:
    """Load and check ``params.yaml``, set the threads, check that ``data/keys/<stage>.json`` (when
    the ``config`` stage wrote one) holds these params, then run ``step(cfg)``. The stage is in the
    register of running pipelines (:mod:`genlib.pipeline.threads`) from before its params are
    read, so that two stages started together count each other."""

    def work() -> None:
        import genlib.implementations  # noqa: F401  (the methods, datasets and networks a stage runs: its code deps)
        from genlib.pipeline.keys import check_key
        from genlib.pipeline.paths import Paths
        from genlib.pipeline.threads import registered, resolve, threads_set
        from genlib.progress import say

        with registered():
            cfg = _load(params_path, stage)
            n, reason = resolve(cfg.run.threads)
            say(cfg.run.progress, f"threads: {n} ({reason})")
            with threads_set(n):
                if stage != "config":
                    check_key(cfg, stage, Paths())
                try:
                    step(cfg)
                except ConfigError as err:  # a param the stage checks against what it finds (the data, the device)
                    raise (err.in_file(params_path) if err.file == "params" else err) from None

    run_stage(work)


STOPPED = "stopped by SIGINT (Ctrl-C) before its outputs were written; every output is as it was: run the stage again (dvc repro)"
NO_SPACE = "the disk is full (no space left on device); every output is as it was: free space and run the stage again (dvc repro)"


def _load(params_path: str, stage: str):
    """The checked config. The ``config`` stage, first in the pipeline, checks the params of every
    stage, so its error says so: DVC goes on to say only "failed to reproduce 'config'"."""
    from genlib.config import load

    try:
        return load(params_path)
    except ConfigError as err:
        if stage != "config" or isinstance(err, YAMLSyntaxError):
            raise
        raise ConfigError(err.key, err.value, f"{err.allowed} (the config stage checks the params of every stage before any runs)", err.file) from None


def run_stage(work: Callable[[], object], quiet: bool = False, quiet_stop: bool | None = None) -> None:
    """Run ``work`` with its outputs written together (:func:`genlib.io.outputs_together`); a
    known error exits with one line, or with its exit code alone when ``quiet``. A Ctrl-C is one
    line and exit code 130, as a stopped training is; the line is left out when ``quiet_stop``
    (by default ``quiet``)."""
    from genlib import io

    quiet_stop = quiet if quiet_stop is None else quiet_stop

    try:
        with io.outputs_together():
            work()
    except TrainingInterrupted as err:
        _stop(f"{err}: run `dvc repro` to continue", quiet_stop)
    except KeyboardInterrupt:
        _stop(f"error: {STOPPED}", quiet_stop)
    except Stopped as err:
        _stop(f"error: {err}", quiet_stop)
    except (ConfigError, DataError, DiskFull, UnknownNameError, NonFiniteLoss, WorkersFailed) as err:
        if quiet:
            raise SystemExit(2) from None
        fail(str(err))
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        if quiet:
            raise SystemExit(2) from None
        fail(f"{err.filename + ': ' if err.filename else ''}{NO_SPACE}")


def _stop(line: str, quiet: bool) -> None:
    if quiet:
        silence_stderr()  # what a stopped worker's exit might still print: the stage that launched it speaks
    else:
        print(line, file=sys.stderr)
    raise SystemExit(130) from None


def silence_stderr() -> None:
    """Send whatever this process writes to stderr from now on (to the end of its exit) nowhere."""
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
