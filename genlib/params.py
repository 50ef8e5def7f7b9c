"""Typed, checked-at-the-door construction of frozen dataclasses from plain dicts.

A field declares its type (``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``Optional``,
``tuple[X, ...]``, ``dict`` for a nested mapping its owner checks) and optionally a range check
with ``spec(default, check, allowed)``. Building a dataclass from a dict rejects unknown keys
(suggesting the closest known one), wrong types and out-of-range values, each with a
:class:`~genlib.errors.ConfigError` naming the dotted key.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from typing import Any, Callable, Literal, Mapping, TypeVar, Union

import yaml

from genlib.errors import ConfigError

T = TypeVar("T")


def spec(default: Any, check: Callable[[Any], bool] | None = None, allowed: str = "", *,
         kind: str | None = None, sampling: bool = False) -> Any:
    """A dataclass field with a range check; ``allowed`` says in words what passes. ``kind``
    (``points`` or ``images``) marks a setting that applies to that kind of data only, and
    ``sampling`` one that only sampling reads: neither keys the train stage where it does not
    apply (:mod:`genlib.pipeline.keys`)."""
    meta = {"check": check, "allowed": allowed, "kind": kind, "sampling": sampling}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def positive(x: float) -> bool:
    return x > 0


def non_negative(x: float) -> bool:
    return x >= 0


def unit_interval(x: float) -> bool:
    return 0.0 <= x < 1.0


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = " or ".join(_type_name(a) for a in args)
        return f"{inner} or null" if len(args) < len(typing.get_args(tp)) else inner
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    bad = ConfigError(key, value, _type_name(tp))
    if origin is Literal:
        if value in typing.get_args(tp) and type(value) is not bool:
            return value
        raise bad
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise bad
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        inner = typing.get_args(tp)[0]
        return tuple(_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # A float is taken only where it is an exact integer: integral and at most 2**53, beyond
        # which floats skip integers (1e12 is exact, and the bound on steps refuses it as epochs).
        if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            return int(value)
        if isinstance(value, float):
            raise ConfigError(key, value, f"{_type_name(tp)}: a float is taken only when integral and at most 2**53 (5.0 is 5)")
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, str):  # YAML 1.1 reads ``5e-3`` (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return expand_env(value, key)
        raise bad
    if tp is dict:  # a nested mapping its owner checks itself (the hvae block graph)
        if isinstance(value, Mapping):
            return dict(value)
        raise bad
    raise TypeError(f"unsupported field type {tp!r} for {key}")


_ENV_REF = re.compile(r"\$env\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, key: str) -> str:
    """Replace each ``$env{VAR}`` in a string param by the environment variable's value.

    Not ``${VAR}``: DVC's own templating reads ``${...}`` in params.yaml and fails on a name it
    does not know, so that form is refused with a line saying what to write. A ``$`` elsewhere
    stays as written; a variable that is not set is an error naming the key and the variable.
    """
    if "${" in value:
        raise ConfigError(key, value, "no ${...} (DVC's templating reads it); write $env{VAR} for an environment variable")

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(key, value, f"a value whose $env{{{name}}} is set in the environment (it is not)")
        return os.environ[name]

    return _ENV_REF.sub(lookup, value)


def unknown_key(prefix: str, key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{prefix}{key}", "<unknown key>", f"one of {', '.join(known)}{hint}")


def build(cls: type[T], raw: Any, prefix: str, drop: tuple[str, ...] = ()) -> T:
    """Build dataclass ``cls`` from the mapping ``raw``; ``prefix`` is the dotted section name."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(prefix.rstrip("."), raw, "a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    known = sorted(fields)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in drop:
            continue
        if key not in fields:
            raise unknown_key(prefix, key, known)
        full = f"{prefix}{key}"
        value = _coerce(value, hints[key], full)
        check = fields[key].metadata.get("check")
        if check is not None and value is not None and not check(value):
            raise ConfigError(full, value, fields[key].metadata["allowed"])
        kwargs[key] = value
    return cls(**kwargs)


def applies(f: dataclasses.Field, kind: str) -> bool:
    """Whether field ``f`` applies to data of ``kind`` (see :func:`spec`)."""
    return f.metadata.get("kind") in (None, kind)


class DuplicateKey(yaml.YAMLError):
    """A mapping of a params file (``params.yaml``, an hvae model file) that names a key twice
    (YAML would keep the last silently)."""

    def __init__(self, key: str, value: Any, where: str) -> None:
        super().__init__(f"{key} given twice ({where})")
        self.key, self.value, self.where = key, value, where


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping, naming its dotted key
    and both lines: the one given first would be ignored without a word."""

    def construct_document(self, node):
        _check_unique(node, "", set())
        return super().construct_document(node)


def _check_unique(node: yaml.Node, prefix: str, seen: set[int]) -> None:
    if id(node) in seen:  # an alias of a node already checked (it may contain itself)
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_unique(item, f"{prefix}{i}.", seen)
    if not isinstance(node, yaml.MappingNode):
        return
    first: dict[str, int] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        line = key.start_mark.line + 1
        if key.value in first:
            given = value.value if isinstance(value, yaml.ScalarNode) else "..."
            raise DuplicateKey(f"{prefix}{key.value}", given, f"line {line}; it is given first at line {first[key.value]}")
        first[key.value] = line
        _check_unique(value, f"{prefix}{key.value}.", seen)
