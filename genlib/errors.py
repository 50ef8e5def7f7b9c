"""The project's own errors: each one is a single line naming what is wrong and what is allowed."""
from __future__ import annotations


class ConfigError(ValueError):
    """Bad params: names the file (``params`` where none is known), the key, the value given and
    what is allowed: ``params.yaml: training.epochs = 0 is not allowed; expected a positive integer``."""

    def __init__(self, key: str, value: object, allowed: str, file: str = "params") -> None:
        self.key, self.value, self.allowed, self.file = key, value, allowed, file
        message = f"{file}: {key} = {value!r} is not allowed; expected {allowed}"
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))  # always one line

    def in_file(self, file: str) -> ConfigError:
        """The same error, naming the params file it was found in."""
        return ConfigError(self.key, self.value, self.allowed, file)


class YAMLSyntaxError(ConfigError):
    """A params or configs file that is not YAML: ``path:line:column: cause``, as compilers write
    it, the position 1-based (``params.yaml:12:5: mapping values are not allowed here``)."""

    def __init__(self, path: str, err: Exception, key: str = "") -> None:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        cause = getattr(err, "problem", None) or "not valid YAML"
        context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and context_mark and (context_mark.line, context_mark.column) != (mark.line, mark.column):
            cause += f" ({context} at {context_mark.line + 1}:{context_mark.column + 1})"
        if key:  # the param that names the file
            cause += f"; {key} names this file"
        self.key, self.value, self.allowed, self.file = key or "params file", path, "valid YAML", path
        ValueError.__init__(self, f"{where}: {cause}".replace("\r", "\\r").replace("\n", "\\n"))


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
