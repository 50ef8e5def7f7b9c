"""Registries: every name a user types in ``params.yaml`` is a key in one of these.

A user's own method, network or dataset registers itself the same way from their own module,
named in ``params.yaml`` under ``plugins:`` and imported before the config is checked.
"""
from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no registry entry answers to."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


METHODS: Registry = Registry("method")
DATASETS: Registry = Registry("dataset")
NETS: Registry = Registry("network")


def load_plugins(modules: Iterable[str]) -> None:
    """Import the user's modules by the names written in params; they register on import."""
    for name in modules:
        try:
            importlib.import_module(name)
        except (ImportError, ValueError, TypeError) as err:  # ValueError: '', TypeError: '.x' (relative)
            from genlib.errors import ConfigError

            raise ConfigError("plugins", name, f"an importable module name ({err})") from None
