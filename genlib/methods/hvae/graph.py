"""The block graph of a hierarchical VAE: parsed from params (or a model file), checked, built.

A graph is a list of blocks, each a mapping ``{name, type, input, ...}``:

- ``input`` (exactly one): ``x -> h``, the start of the bottom-up pass; ``width``, ``depth``.
- ``encoder``: a further bottom-up feature of the block named in ``input``.
- ``top`` (exactly one): the top latent layer with its trainable prior; its posterior reads the
  bottom-up block named in ``input``; ``latent``, ``width``, ``depth``.
- ``gen`` / ``residual``: a latent layer below the block named in ``input`` (top-down); its
  posterior also reads the bottom-up block named in ``skip`` (default: the input block). A
  ``residual`` block keeps its input's width.
- ``output`` (exactly one): the likelihood ``p(x | z)`` from the block named in ``input``.

On images the blocks are convolutional and ``scale`` changes the resolution: an ``encoder``
average-pools its output by it, a ``gen`` or ``residual`` block upsamples the state by it first.
Each posterior's feature must then have the state's resolution, and the output the data's;
these are checked when the networks are built for a data shape (:func:`genlib.methods.hvae.build.build_blocks`).
This module reads no torch: ``genlib check`` parses the graph without it.

The top-down blocks form one chain from ``top`` to ``output``; every block feeds the output.
Each problem is a :class:`~genlib.errors.ConfigError` naming the key, e.g. ``hvae.blocks[2].input``.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import yaml

from genlib.errors import ConfigError, YAMLSyntaxError
from genlib.params import DuplicateKey, UniqueKeyLoader, build, positive, spec

TYPES = ("input", "encoder", "top", "gen", "residual", "output")
BOTTOM_UP = ("input", "encoder")
TOP_DOWN = ("top", "gen", "residual")  # the latent layers
KEYS = {  # the keys each type takes, the required ones first
    "input": (("width",), ("depth",)),
    "encoder": (("input", "width"), ("depth", "scale")),
    "top": (("input", "latent", "width"), ("depth",)),
    "gen": (("input", "latent", "width"), ("skip", "depth", "scale")),
    "residual": (("input", "latent", "width"), ("skip", "depth", "scale")),
    "output": (("input", "width"), ("depth",)),
}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class BlockSpec:
    name: str | None = None
    type: Literal["input", "encoder", "top", "gen", "residual", "output"] | None = None
    input: str | None = None  # the block this one reads
    skip: str | None = None  # gen, residual: the bottom-up feature their posterior reads
    latent: int | None = spec(None, positive, "a positive integer")  # latent dimensions
    width: int | None = spec(None, positive, "a positive integer")  # hidden width (the state's, top-down)
    depth: int = spec(1, positive, "a positive integer")  # hidden layers of each MLP (or convolutions)
    scale: int | None = spec(None, positive, "a positive integer")  # images: down (encoder) or up (gen, residual)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Graph:
    """The checked blocks in the order they run: bottom-up, then top-down from top to output."""

    bottom_up: tuple[BlockSpec, ...]
    latents: tuple[BlockSpec, ...]  # top first
    output: BlockSpec
    where: str = field(default="hvae.blocks", compare=False)  # how errors name the list
    names: tuple[str, ...] = field(default=(), compare=False)  # the order given (errors name the index)

    def key(self, name: str, field: str) -> str:
        return f"{self.where}[{self.names.index(name)}].{field}"

    @property
    def blocks(self) -> tuple[BlockSpec, ...]:
        return (*self.bottom_up, *self.latents, self.output)

    def to_list(self) -> list[dict]:
        return [b.to_dict() for b in self.blocks]


def read_model_file(path: str) -> list:
    """The ``blocks`` list of a YAML model file (a path relative to the project root)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError("hvae.model_file", path, "an existing YAML file holding blocks: [...]")
    try:
        raw = yaml.load(file.read_bytes().decode("utf-8"), Loader=UniqueKeyLoader)
    except UnicodeDecodeError as err:
        raise ConfigError("hvae.model_file", path, f"UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})") from None
    except DuplicateKey as err:
        raise ConfigError("hvae.model_file", path, f"each key once ({err.key} at {err.where})") from None
    except yaml.YAMLError as err:
        raise YAMLSyntaxError(path, err, "hvae.model_file") from None
    if not isinstance(raw, dict) or set(raw) != {"blocks"}:
        raise ConfigError("hvae.model_file", path, "a YAML mapping with the one key blocks (a list of blocks)")
    return raw["blocks"]


def parse_graph(raw, where: str = "hvae.blocks") -> Graph:
    """Check a list of block mappings and order it; ``where`` names the list in errors."""
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(where, raw, "a non-empty list of blocks {name, type, input, ...}")
    specs = [_block(b, f"{where}[{i}]") for i, b in enumerate(raw)]
    first: dict[str, int] = {}
    for i, b in enumerate(specs):
        if b.name in first:
            raise ConfigError(f"{where}[{i}].name", b.name, f"a name no other block has (blocks[{first[b.name]}] has it)")
        first[b.name] = i
    for kind in ("input", "top", "output"):
        found = [i for i, b in enumerate(specs) if b.type == kind]
        if not found:
            raise ConfigError(where, f"<no {kind} block>", f"a graph with one block of type {kind} ({_ROLE[kind]})")
        if len(found) > 1:
            raise ConfigError(f"{where}[{found[1]}].type", kind, f"another type: a graph has one {kind} block (blocks[{found[0]}] is one)")
    the_input = next(b.name for b in specs if b.type == "input")
    specs = [replace(b, skip=b.skip or the_input) if b.type in ("gen", "residual") else b for b in specs]
    by_name = {b.name: b for b in specs}
    for i, b in enumerate(specs):
        _check_refs(b, by_name, f"{where}[{i}]")
    _check_acyclic(specs, by_name, where)
    latents = _chain(specs, by_name, where)
    read = {ref for b in specs for ref in (b.input, b.skip) if ref}
    for i, b in enumerate(specs):
        if b.type != "output" and b.name not in read:
            raise ConfigError(f"{where}[{i}].name", b.name, "a block some other block reads (every block feeds the output)")
        if b.type == "residual" and by_name[b.input].width != b.width:
            w = by_name[b.input].width
            raise ConfigError(f"{where}[{i}].width", b.width, f"{w}: a residual block keeps the width of its input {b.input}")
    output = next(b for b in specs if b.type == "output")
    return Graph(tuple(_bottom_up_order(specs, by_name)), latents, output, where, tuple(b.name for b in specs))


_ROLE = {"input": "x -> features", "top": "the top latent layer with its trainable prior", "output": "the likelihood of x"}


def _block(raw, where: str) -> BlockSpec:
    if not isinstance(raw, dict):
        raise ConfigError(where, raw, "a mapping {name, type, input, ...}")
    b = build(BlockSpec, raw, f"{where}.")
    if b.type is None:
        raise ConfigError(f"{where}.type", None, f"one of {', '.join(TYPES)}")
    if b.name is None or not NAME.fullmatch(b.name):
        raise ConfigError(f"{where}.name", b.name, "a name of letters, digits and _ (not starting with a digit)")
    required, optional = KEYS[b.type]
    for key in required:
        if getattr(b, key) is None:
            raise ConfigError(f"{where}.{key}", None, f"a value: a block of type {b.type} needs {', '.join(required)}")
    for key in ("input", "skip", "latent", "scale"):
        if raw.get(key) is not None and key not in required + optional:
            raise ConfigError(f"{where}.{key}", raw[key], f"no value: a block of type {b.type} takes {', '.join(required + optional)}")
    return b


def _check_refs(b: BlockSpec, by_name: dict, where: str) -> None:
    """``input`` and ``skip`` name existing blocks of the kind this type reads."""
    wants = {"encoder": BOTTOM_UP, "top": BOTTOM_UP, "gen": TOP_DOWN, "residual": TOP_DOWN, "output": TOP_DOWN}
    for key, kinds in (("input", wants.get(b.type)), ("skip", BOTTOM_UP)):
        ref = getattr(b, key)
        if ref is None or kinds is None:
            continue
        fitting = sorted(n for n, s in by_name.items() if s.type in kinds and n != b.name)
        if ref not in by_name or by_name[ref].type not in kinds:
            what = "top-down" if kinds == TOP_DOWN else "bottom-up"
            known = ", ".join(fitting) or "none"
            raise ConfigError(f"{where}.{key}", ref, f"the name of a {what} block ({'/'.join(kinds)}): one of {known}")


def _check_acyclic(specs: list[BlockSpec], by_name: dict, where: str) -> None:
    for i, b in enumerate(specs):
        seen, name = [b.name], b.input
        while name is not None:
            if name == b.name:
                raise ConfigError(f"{where}[{i}].input", b.input, f"a block that does not read {b.name} (cycle {' -> '.join(seen + [name])})")
            if name in seen:  # a cycle further up, reported at its own block
                break
            seen.append(name)
            name = by_name[name].input


def _chain(specs: list[BlockSpec], by_name: dict, where: str) -> tuple[BlockSpec, ...]:
    """The latent blocks from top to output: the output's inputs, followed up to the top block."""
    out = next(b for b in specs if b.type == "output")
    chain, name = [], out.input
    while by_name[name].type in TOP_DOWN:
        chain.append(by_name[name])
        name = by_name[name].input  # the top block's input is bottom-up: the chain ends there
    on_chain = {b.name for b in chain}
    for i, b in enumerate(specs):
        if b.type in TOP_DOWN and b.name not in on_chain:
            raise ConfigError(f"{where}[{i}].name", b.name, "a latent block on the one chain from the top block to the output block")
    return tuple(reversed(chain))


def _bottom_up_order(specs: list[BlockSpec], by_name: dict) -> list[BlockSpec]:
    order: list[BlockSpec] = []

    def visit(b: BlockSpec) -> None:
        if b in order:
            return
        if b.type == "encoder":
            visit(by_name[b.input])
        order.append(b)

    for b in specs:
        if b.type in BOTTOM_UP:
            visit(b)
    return order
