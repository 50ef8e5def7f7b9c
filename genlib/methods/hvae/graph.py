"""The block graph of a hierarchical VAE: parsed from params (or a model file), checked, built.

A graph is a list of blocks, each a mapping ``{name, type, input, ...}``:

- ``input`` (exactly one): ``x -> h``, the start of the bottom-up pass; ``width``, ``depth``.
- ``encoder``: a further bottom-up feature of the block named in ``input``; ``dual``: a feature of
  the two bottom-up blocks named in ``input`` and ``input2``, joined by ``merge``. A ``dual`` whose
  ``input`` is a top-down block is a deterministic top-down block instead: it joins the state with
  the output of the top-down block ``input2`` names, one above it on the chain (a skip connection
  of the generative path).
- ``top`` or ``top_simple`` (exactly one of them, or a plugin's latent type that says ``top``): the
  top latent layer with its trainable prior; a ``top`` posterior reads the bottom-up block named in
  ``input``, ``top_simple`` has none.
- ``gen`` / ``residual``: a latent layer below the block named in ``input`` (top-down); its
  posterior also reads the bottom-up block named in ``skip`` (default: the input block). A
  ``residual`` block keeps its input's width. ``gen_prior``: a latent layer without a posterior.
- ``simple``: a deterministic top-down block.
- ``output`` (exactly one): the likelihood ``p(x | z)`` from the block named in ``input``.
- a plugin's type (:mod:`genlib.methods.hvae.custom`), placed by its ``role``.

A block with a second input (the ``skip`` feature a posterior reads, ``dual``'s ``input2``) may
transform that input, its condition, by ``condition_transform`` (hVAE's condition transform).

On images the blocks are convolutional and ``scale`` changes the resolution: a bottom-up block
average-pools its output by it, a top-down block upsamples the state by it first.
Each posterior's feature must then have the state's resolution, and the output the data's;
these are checked when the networks are built for a data shape (:func:`genlib.methods.hvae.build.build_blocks`).
This module reads no torch: ``genlib check`` parses the graph without it.

The top-down blocks form one chain from the top block to ``output``; every block feeds the output.
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
from genlib.registry import HVAE_BLOCKS, HVAE_NETS

TYPES = ("input", "encoder", "dual", "top", "top_simple", "gen", "residual", "gen_prior", "simple", "output")
BOTTOM_UP = ("input", "encoder", "dual")
HEADS = ("top", "top_simple")  # the top of the top-down chain, holding the trainable top prior
LATENT = ("top", "top_simple", "gen", "residual", "gen_prior")  # the latent layers (a prior each)
INFERRED = ("top", "gen", "residual")  # the latent layers with a posterior q(z_l | z_>l, x)
TOP_DOWN = LATENT + ("simple",)  # the blocks of the chain from the top block to the output
LATENT_KEYS = ("dist",)
POSTERIOR_KEYS = ("skip", "concat_posterior", "condition_transform")
KEYS = {  # the keys each type takes, the required ones first (name, type and net: every type)
    "input": (("width",), ("depth", "transform")),
    "encoder": (("input", "width"), ("depth", "scale", "transform", "pool")),
    "dual": (("input", "input2", "width"), ("depth", "merge", "condition_transform")),
    "top": (("input", "latent", "width"), ("depth", "dist")),
    "top_simple": (("latent", "width"), ("depth", "dist", "side")),
    "gen": (("input", "latent", "width"), ("depth", "scale", "dist", *POSTERIOR_KEYS)),
    "residual": (("input", "latent", "width"), ("depth", "scale", "dist", *POSTERIOR_KEYS)),
    "gen_prior": (("input", "latent", "width"), ("depth", "scale", "dist")),
    "simple": (("input", "width"), ("depth", "scale", "unpool")),
    "output": (("input", "width"), ("depth",)),
}
CUSTOM_KEYS = {  # a plugin's block type (registry HVAE_BLOCKS) by its role: the keys it takes
    "bottom_up": (("input", "width"), ("depth", "scale", "config")),
    "latent": (("input", "latent", "width"), ("depth", "scale", "dist", "skip", "condition_transform", "config")),
    "deterministic": (("input", "width"), ("depth", "scale", "config")),
}
CUSTOM_TOP_KEYS = (("latent", "width"), ("input", "depth", "dist", "side", "config"))  # a latent type with top = True
COMMON = ("name", "type", "net")
# What an input or encoder block applies to what it reads, before its network (``transform``), and
# what a block with a second input applies to that one, its condition (``condition_transform``).
TRANSFORMS = {
    "identity": "the feature as it is",
    "silu": "SiLU, a non-linearity before a block whose input ends in a linear layer",
    "standardize": "each point's feature less its mean, over its standard deviation (layer norm without gain)",
}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def role(type_: str) -> str:
    """``bottom_up``, ``latent`` or ``deterministic`` (top-down), or ``output``; a plugin's type
    says its own (``role``, ``inferred``: :data:`genlib.registry.HVAE_BLOCKS`)."""
    if type_ in BOTTOM_UP:
        return "bottom_up"
    if type_ in LATENT:
        return "latent"
    if type_ in TOP_DOWN:
        return "deterministic"
    if type_ == "output":
        return "output"
    return HVAE_BLOCKS.spec(type_).role


def head(type_: str) -> bool:
    """Whether blocks of this type are the top of the chain: ``top``, ``top_simple``, or a
    plugin's latent type that says ``top`` (its prior reads no state)."""
    if type_ in TYPES:
        return type_ in HEADS
    return role(type_) == "latent" and getattr(HVAE_BLOCKS.spec(type_), "top", False)


def inferred(type_: str) -> bool:
    """Whether a latent block of this type has a posterior (reads a bottom-up feature, ``skip``)."""
    if type_ in TYPES:
        return type_ in INFERRED
    return role(type_) == "latent" and HVAE_BLOCKS.spec(type_).inferred


def _keys(type_: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return KEYS[type_] if type_ in KEYS else (CUSTOM_TOP_KEYS if head(type_) else CUSTOM_KEYS[role(type_)])


@dataclass(frozen=True)
class BlockSpec:
    name: str | None = None
    type: str | None = None  # one of TYPES or a plugin's (registry HVAE_BLOCKS)
    input: str | None = None  # the block this one reads
    input2: str | None = None  # dual: the second bottom-up block it reads
    skip: str | None = None  # gen, residual: the bottom-up feature their posterior reads
    latent: int | None = spec(None, positive, "a positive integer")  # latent dimensions
    width: int | None = spec(None, positive, "a positive integer")  # hidden width (the state's, top-down)
    depth: int = spec(1, positive, "a positive integer")  # hidden layers of each MLP (or convolutions)
    scale: int | None = spec(None, positive, "a positive integer")  # images: down (encoder) or up (gen, residual)
    net: str | None = None  # the networks inside the block (registry HVAE_NETS); default dense (points), conv (images)
    dist: Literal["gaussian", "laplace"] | None = None  # latent blocks: the prior's and posterior's family (default gaussian)
    concat_posterior: bool | None = None  # gen, residual: q reads concat(state, feature) (default) or false: their sum
    merge: Literal["concat", "sum"] | None = None  # dual: how its two inputs are joined (default concat)
    transform: str | None = None  # input, encoder: applied to what the block reads (registry in blocks.TRANSFORMS)
    condition_transform: str | None = None  # gen, residual, latent plugin: applied to skip's feature; dual: to input2's
    side: int | None = spec(None, positive, "a positive integer")  # top_simple on images: the top latent's side
    pool: Literal["avg", "dense"] | None = None  # encoder on images: how scale pools (dense: a whole map to 1x1 by a linear layer)
    unpool: Literal["nearest", "dense"] | None = None  # simple on images: how scale upsamples (dense: from 1x1 by a linear layer)
    config: dict | None = None  # a plugin's block: its own settings, handed to its build

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Graph:
    """The checked blocks in the order they run: bottom-up, then top-down from top to output."""

    bottom_up: tuple[BlockSpec, ...]
    latents: tuple[BlockSpec, ...]  # the latent layers, top first
    output: BlockSpec
    where: str = field(default="hvae.blocks", compare=False)  # how errors name the list
    names: tuple[str, ...] = field(default=(), compare=False)  # the order given (errors name the index)
    chain: tuple[BlockSpec, ...] = ()  # every top-down block, top first (latents and deterministic ones)

    def key(self, name: str, field: str) -> str:
        return f"{self.where}[{self.names.index(name)}].{field}"

    @property
    def top_down(self) -> tuple[BlockSpec, ...]:
        return self.chain or self.latents

    @property
    def blocks(self) -> tuple[BlockSpec, ...]:
        return (*self.bottom_up, *self.top_down, self.output)

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
    for kinds in (("input",), HEADS, ("output",)):
        found = [i for i, b in enumerate(specs) if b.type in kinds or (kinds == HEADS and head(b.type))]
        kind = " or ".join(kinds) + (" (or a plugin's top type)" if kinds == HEADS else "")
        if not found:
            raise ConfigError(where, f"<no {kind} block>", f"a graph with one block of type {kind} ({_ROLE[kinds[0]]})")
        if len(found) > 1:
            raise ConfigError(f"{where}[{found[1]}].type", specs[found[1]].type,
                              f"another type: a graph has one {kind} block (blocks[{found[0]}] is one)")
    the_input = next(b.name for b in specs if b.type == "input")
    specs = [replace(b, skip=b.skip or the_input) if inferred(b.type) and not head(b.type) else b for b in specs]
    by_name = {b.name: b for b in specs}
    down = _top_down_names(specs, by_name)
    for i, b in enumerate(specs):
        _check_refs(b, by_name, down, f"{where}[{i}]")
    _check_acyclic(specs, by_name, where)
    chain = _chain(specs, by_name, down, where)
    read = {ref for b in specs for ref in (b.input, b.input2, b.skip) if ref}
    for i, b in enumerate(specs):
        if b.type != "output" and b.name not in read:
            raise ConfigError(f"{where}[{i}].name", b.name, "a block some other block reads (every block feeds the output)")
        _check_widths(b, by_name, f"{where}[{i}]")
    output = next(b for b in specs if b.type == "output")
    latents = tuple(b for b in chain if role(b.type) == "latent")
    bottom_up = [b for b in specs if b.name not in down and role(b.type) == "bottom_up"]
    return Graph(tuple(_bottom_up_order(bottom_up, by_name)), latents, output, where, tuple(b.name for b in specs), chain)


_ROLE = {"input": "x -> features", "top": "the top latent layer with its trainable prior", "output": "the likelihood of x"}


def _block(raw, where: str) -> BlockSpec:
    if not isinstance(raw, dict):
        raise ConfigError(where, raw, "a mapping {name, type, input, ...}")
    b = build(BlockSpec, raw, f"{where}.")
    if b.type not in TYPES and b.type not in HVAE_BLOCKS:
        known = ", ".join(repr(t) for t in (*TYPES, *HVAE_BLOCKS.names()))
        raise ConfigError(f"{where}.type", b.type, f"one of {known} (a plugin's block type: registered in HVAE_BLOCKS)")
    if b.type not in TYPES and getattr(HVAE_BLOCKS.spec(b.type), "role", None) not in CUSTOM_KEYS:
        raise ConfigError(f"{where}.type", b.type, f"a block type whose role is one of {', '.join(CUSTOM_KEYS)} (genlib.methods.hvae.custom)")
    if b.name is None or not NAME.fullmatch(b.name):
        raise ConfigError(f"{where}.name", b.name, "a name of letters, digits and _ (not starting with a digit)")
    required, optional = _keys(b.type)
    for key in required:
        if getattr(b, key) is None:
            raise ConfigError(f"{where}.{key}", None, f"a value: a block of type {b.type} needs {', '.join(required)}")
    for key, value in raw.items():
        if value is not None and key not in COMMON + required + optional:
            raise ConfigError(f"{where}.{key}", value, f"no value: a block of type {b.type} takes {', '.join(required + optional)}")
    if b.net is not None and b.net not in HVAE_NETS:
        raise ConfigError(f"{where}.net", b.net, f"a block network: one of {', '.join(HVAE_NETS.names())}")
    for key in ("transform", "condition_transform"):
        if getattr(b, key) is not None and getattr(b, key) not in TRANSFORMS:
            raise ConfigError(f"{where}.{key}", getattr(b, key), f"one of {', '.join(TRANSFORMS)}")
    if b.condition_transform is not None and role(b.type) == "latent" and not inferred(b.type):
        raise ConfigError(f"{where}.condition_transform", b.condition_transform,
                          f"no value: a block of type {b.type} has no posterior, so no condition (its second input) to transform")
    if b.type not in TYPES and head(b.type) and (b.input is None) == inferred(b.type):
        raise ConfigError(f"{where}.input", b.input, f"the bottom-up block the posterior of {b.type} reads" if inferred(b.type)
                          else f"no value: a top type without a posterior ({b.type}) reads nothing")
    return b


def _top_down_names(specs: list[BlockSpec], by_name: dict) -> set[str]:
    """The top-down blocks: the latent and deterministic ones, and each ``dual`` reading one."""
    down = {b.name for b in specs if role(b.type) in ("latent", "deterministic")}
    duals = [b for b in specs if b.type == "dual"]
    while grown := {b.name for b in duals if b.input in down} - down:
        down |= grown
    return down


def _check_refs(b: BlockSpec, by_name: dict, down: set[str], where: str) -> None:
    """``input``, ``input2`` and ``skip`` name existing blocks of the kind this type reads (a
    ``dual`` reads two of one kind, that of its ``input``)."""
    bottom_up = (role(b.type) == "bottom_up" and b.name not in down) or head(b.type)
    wants = None if b.type in ("input", "top_simple") else (BOTTOM_UP if bottom_up else TOP_DOWN)
    for key, kinds in (("input", wants), ("input2", wants), ("skip", BOTTOM_UP)):
        ref = getattr(b, key)
        if ref is None or kinds is None:
            continue
        fits = (lambda n: n not in down) if kinds == BOTTOM_UP else (lambda n: n in down)
        fitting = sorted(n for n, s in by_name.items() if fits(n) and role(s.type) != "output" and n != b.name)
        if ref not in by_name or not fits(ref) or role(by_name[ref].type) == "output":
            what = "top-down" if kinds == TOP_DOWN else "bottom-up"
            known = ", ".join(fitting) or "none"
            raise ConfigError(f"{where}.{key}", ref, f"the name of a {what} block ({'/'.join(kinds)}): one of {known}")


def _check_widths(b: BlockSpec, by_name: dict, where: str) -> None:
    """A residual block keeps its input's width; a sum (``dual`` merge, ``concat_posterior:
    false``) adds features of one width."""
    if b.type == "residual" and by_name[b.input].width != b.width:
        w = by_name[b.input].width
        raise ConfigError(f"{where}.width", b.width, f"{w}: a residual block keeps the width of its input {b.input}")
    if b.merge == "sum" and by_name[b.input].width != by_name[b.input2].width:
        raise ConfigError(f"{where}.merge", "sum", f"concat, or inputs of one width ({b.input} has {by_name[b.input].width}, "
                                                   f"{b.input2} {by_name[b.input2].width})")
    if b.concat_posterior is False:
        state = b.width if b.type == "residual" else by_name[b.input].width
        if by_name[b.skip].width != state:
            raise ConfigError(f"{where}.concat_posterior", False, f"true, or a skip feature of the state's width {state} "
                                                                  f"({b.skip} has {by_name[b.skip].width}): the posterior reads their sum")


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


def _chain(specs: list[BlockSpec], by_name: dict, down: set[str], where: str) -> tuple[BlockSpec, ...]:
    """The top-down blocks from top to output: the output's inputs, followed up to the top block;
    a top-down ``dual``'s ``input2`` is a block above it on the chain (run before it)."""
    out = next(b for b in specs if b.type == "output")
    chain, name = [], out.input
    while name is not None and name in down:
        chain.append(by_name[name])
        name = None if head(by_name[name].type) else by_name[name].input  # the top block reads bottom-up
    on_chain = {b.name for b in chain}
    for i, b in enumerate(specs):
        if b.name in down and b.name not in on_chain:
            raise ConfigError(f"{where}[{i}].name", b.name, "a top-down block on the one chain from the top block to the output block")
    if not head(chain[-1].type):
        i = specs.index(chain[-1])
        raise ConfigError(f"{where}[{i}].input", chain[-1].input, "a top-down block: the chain from the output block up ends at the top block")
    chain.reverse()
    for j, b in enumerate(chain):
        if b.type == "dual" and b.input2 not in {a.name for a in chain[:j]}:
            above = ", ".join(a.name for a in chain[:j])
            raise ConfigError(f"{where}[{specs.index(b)}].input2", b.input2, f"a top-down block above {b.name} on the chain: one of {above}")
    return tuple(chain)


def _bottom_up_order(specs: list[BlockSpec], by_name: dict) -> list[BlockSpec]:
    order: list[BlockSpec] = []

    def visit(b: BlockSpec) -> None:
        if b in order:
            return
        for ref in (b.input, b.input2):
            if ref is not None:
                visit(by_name[ref])
        order.append(b)

    for b in specs:
        if role(b.type) == "bottom_up":
            visit(b)
    return order
