"""Step-wise training curves written offline with dvclive (no cloud logger)."""
from __future__ import annotations

from pathlib import Path


class CurveLogger:
    """Writes ``<dir>/plots/metrics/<name>.tsv`` (step, value) for every logged name."""

    def __init__(self, directory: str | Path, resume: bool = False) -> None:
        from dvclive import Live  # imported here: dvclive is slow to import

        # dvcyaml=False, save_dvc_exp=False: inside a DVC stage dvclive must not rewrite dvc.yaml
        # nor create experiments of its own.
        self.live = Live(str(directory), resume=resume, dvcyaml=False, save_dvc_exp=False, report=None)
        self.last: dict[str, float] = {}

    def log(self, step: int, values: dict[str, float]) -> None:
        self.last = dict(values)
        self.live.step = step
        for name, value in values.items():
            self.live.log_metric(name, value)
        self.live.next_step()

    def close(self) -> None:
        self.live.end()


class NullLogger:
    last: dict[str, float] = {}

    def log(self, step: int, values: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass
