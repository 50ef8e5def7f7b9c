"""The two tables of the comparison: one row per configuration (its seeds aggregated) and one row
per experiment. Each metric column names its direction and marks its best value."""
from __future__ import annotations

from dataclasses import dataclass, field

from genlib.compare.directions import ARROW, best, direction
from genlib.compare.experiments import Experiment
from genlib.compare.groups import SEED, Group, Stat, group
from genlib.report import fmt


@dataclass
class Column:
    name: str
    direction: str | None = None  # a metric's: lower, higher, near 0, near 1

    @property
    def title(self) -> str:
        return f"{self.name} {ARROW[self.direction]}" if self.direction else self.name


@dataclass
class Cell:
    text: str
    sort: float | str | None = None  # the value a click on the header sorts by
    best: bool = False


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)


def _param_cell(value) -> Cell:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return Cell(fmt(value), float(value) if number else fmt(value))


def _stat_cell(stat: Stat | None, runs: int) -> Cell:
    """``mean [min, max]``, and the count where fewer than the configuration's runs have a
    finite value."""
    if stat is None:
        return Cell("")
    text = fmt(stat.mean) if stat.n == 1 else f"{fmt(stat.mean)} [{fmt(stat.lo)}, {fmt(stat.hi)}]"
    return Cell(text + (f" (n={stat.n})" if stat.n < runs else ""), stat.mean)


def _mark_best(table: Table, first_metric: int) -> None:
    for j, column in enumerate(table.columns[first_metric:], first_metric):
        values = [row[j].sort if isinstance(row[j].sort, float) else None for row in table.rows]
        for i in best(column.name, values) if len(table.rows) > 1 else ():
            table.rows[i][j].best = True


def sampler_used(e: Experiment) -> str:
    """The sampler the run's generate stage named, else the param where it names one."""
    return e.sampler or str(e.params.get("eval.sampler", ""))


def summary_table(exps: list[Experiment], varying: list[str], metrics: list[str]) -> tuple[Table, list[Group]]:
    """One row per configuration: the differing params but the seed, the runs (n), the sampler
    used, and each metric as mean [min, max] over the seeds."""
    keys = [k for k in varying if k != SEED]
    groups = group(exps, keys)
    first = [Column(k) for k in keys] or [Column("configuration")]
    table = Table(first + [Column("n"), Column("sampler")] + [Column(m, direction(m)) for m in metrics])
    for g in groups:
        samplers = sorted({sampler_used(e) for e in g.exps})
        table.rows.append(
            ([_param_cell(g.values.get(k)) for k in keys] or [Cell(g.label, g.label)])
            + [Cell(str(len(g.exps)), float(len(g.exps))), Cell("/".join(samplers), "/".join(samplers))]
            + [_stat_cell(g.stat(m), len(g.exps)) for m in metrics]
        )
    _mark_best(table, len(first) + 2)
    return table, groups


def experiment_table(exps: list[Experiment], varying: list[str], metrics: list[str]) -> Table:
    """One row per experiment: its name, the differing params, the sampler used, the metrics."""
    table = Table([Column("experiment")] + [Column(k) for k in varying] + [Column("sampler")] + [Column(m, direction(m)) for m in metrics])
    for e in exps:
        value = lambda m: Cell(fmt(e.metrics[m]), e.metrics[m]) if m in e.metrics else Cell("")
        table.rows.append([Cell(e.name, e.name)] + [_param_cell(e.params.get(k)) for k in varying]
                          + [Cell(sampler_used(e), sampler_used(e))] + [value(m) for m in metrics])
    _mark_best(table, len(varying) + 2)
    return table
