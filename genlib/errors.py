"""The project's own errors: each one is a single line naming what is wrong and what is allowed."""
from __future__ import annotations


class ConfigError(ValueError):
    """Bad params: names the key, the value given and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        message = f"params: {key} = {value!r} is not allowed; expected {allowed}"
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))  # always one line


class DataError(ValueError):
    """Bad data on disk: names the file and what is wrong with it."""


class NonFiniteLoss(RuntimeError):
    """The training loss stayed non-finite after the allowed number of restores."""


class TrainingInterrupted(RuntimeError):
    """A stop was requested (SIGINT/SIGTERM); the state was checkpointed at a step boundary."""


class WorkersFailed(RuntimeError):
    """torchrun reported a failed worker; the worker printed its own error."""


class DiskFull(OSError):
    """A write failed for want of space: names the file and what to do."""

    def __str__(self) -> str:
        return str(self.args[0])


class Stopped(RuntimeError):
    """A SIGINT that came while a stage's outputs were put in place: they were all written whole."""
