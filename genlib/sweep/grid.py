"""A sweep's cells: the ``-S`` overrides expanded as ``dvc exp run --queue`` expands them, and each
cell's params checked at the door and keyed by what its training depends on.

``-S method=ddpm,dlpm -S seed=0,1`` is four cells, the cartesian product of the comma lists in the
order DVC queues them (:func:`dvc.utils.hydra.get_hydra_sweeps`, Hydra's override grammar: a
list value is ``'data.weights=[0.5,0.5]'``, a sweep is ``a,b`` or ``range(0,4)``).
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from genlib.sweep import SweepError

PARAMS = "params.yaml"


@dataclass(frozen=True)
class Cell:
    """One experiment of a sweep: its index in the array, its name, its ``-S`` arguments and the
    key of its training params (:func:`genlib.pipeline.resume.training_key`; twins share it)."""

    index: int
    exp: str
    overrides: tuple[str, ...]
    train_key: str

    def to_dict(self) -> dict:
        return {"index": self.index, "exp": self.exp, "overrides": list(self.overrides), "train_key": self.train_key}

    @classmethod
    def from_dict(cls, d: dict) -> "Cell":
        return cls(d["index"], d["exp"], tuple(d["overrides"]), d["train_key"])


def expand(set_params: list[str]) -> list[dict[str, list[str]]]:
    """Each cell's overrides, ``{params file: [override, ...]}``, as DVC's queue expands ``-S``."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps
    from hydra.errors import OverrideParseException

    if not set_params:
        return [{}]
    try:
        return get_hydra_sweeps(to_path_overrides(set_params))
    except (InvalidArgumentError, OverrideParseException) as err:
        raise SweepError(f"-S {' '.join(set_params)}: {err}") from None


def as_arguments(path_overrides: dict[str, list[str]]) -> tuple[str, ...]:
    """The ``-S`` arguments of one cell (``key=value``, ``file:key=value`` for another file)."""
    return tuple(o if path == PARAMS else f"{path}:{o}" for path, overrides in path_overrides.items() for o in overrides)


def cells(name: str, set_params: list[str], root: Path = Path("."), nodes: int = 1) -> list[Cell]:
    """The sweep's cells, named ``<name>-1``, ``<name>-2``, ... as ``dvc exp run --queue -n`` names
    a sweep's experiments; each one's params are checked (a :class:`ConfigError` names the cell),
    and with ``nodes > 1``, that it trains on all of them."""
    from genlib.errors import ConfigError
    from genlib.pipeline.resume import training_key
    from genlib.registry import UnknownNameError

    out = []
    for i, path_overrides in enumerate(expand(set_params)):
        arguments = as_arguments(path_overrides)
        try:
            cfg = cell_config(root, path_overrides.get(PARAMS, []))
            check_nodes(cfg, nodes)
        except (ConfigError, UnknownNameError) as err:
            raise SweepError(f"cell {name}-{i + 1} ({' '.join(arguments)}): {err}") from None
        out.append(Cell(i, f"{name}-{i + 1}", arguments, training_key(cfg)))
    return out


def check_nodes(cfg, nodes: int) -> None:
    """A cell on ``nodes`` nodes runs ``run.nproc_per_node`` processes on each: more than one
    (one process trains on the first node alone), and the batch split among all of them."""
    from genlib.errors import ConfigError

    n = cfg.run.nproc_per_node
    if nodes > 1 and n == 1:
        raise ConfigError("run.nproc_per_node", n, f"more than 1 with --nodes {nodes} (one process uses the first node alone)", PARAMS)
    if cfg.training.batch_size % (nodes * n):
        raise ConfigError("training.batch_size", cfg.training.batch_size,
                          f"a multiple of the {nodes * n} processes of --nodes {nodes} x run.nproc_per_node {n}", PARAMS)


def cell_config(root: Path, overrides: list[str]):
    """The checked config of ``params.yaml`` with ``overrides`` applied as ``dvc exp run -S``
    applies them (on a copy: the project's file stays as it is)."""
    import genlib.implementations  # noqa: F401  (the registered methods, datasets and networks)
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides, to_hydra_overrides

    from genlib.config import load

    params = root / PARAMS
    if not params.is_file():
        raise SweepError(f"{params} not found: run genlib sweep in the project's root")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / PARAMS
        shutil.copy(params, copy)
        try:
            apply_overrides(copy, overrides)
        except InvalidArgumentError as err:
            raise SweepError(f"-S {' '.join(overrides)}: {err}") from None
        raw = yaml.safe_load(copy.read_text())
    values = {}
    for override in to_hydra_overrides(overrides):
        if override.is_delete():
            raise SweepError(f"-S {override.input_line}: genlib sweep sets keys; it does not delete them")
        values[override.key_or_group] = _get(raw, override.key_or_group)
    return load(params, values)  # from the project, so that its plugins and files resolve


def _get(raw: dict, dotted: str):
    node = raw
    for part in dotted.split("."):
        node = node[part]
    return node
