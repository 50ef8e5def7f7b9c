"""The ``genlib`` command: what DVC does not do (check, list, compare, sweep on SLURM, migrate a
model trained elsewhere, new plugin files from a template). It sits on
the top layer beside the stages (:mod:`genlib.pipeline.runner`)."""
from __future__ import annotations

from genlib.errors import ConfigError
from genlib.pipeline.runner import fail
from genlib.registry import UnknownNameError


def main(argv: list[str] | None = None) -> None:
    """``genlib check``: validate params.yaml and print the resolved config;
    ``genlib list``: the registered methods, datasets and networks;
    ``genlib compare``: one offline report across the DVC experiments;
    ``genlib sweep``: a grid of experiments as one SLURM job array sharing one DVC cache;
    ``genlib migrate``: an hvae's weights from elsewhere, through an adapter, as a genlib checkpoint;
    ``genlib new``: a ready plugin file (a method, a network or a dataset) from a template."""
    import argparse
    import json

    from genlib import __version__

    parser = argparse.ArgumentParser(prog="genlib", description=main.__doc__)
    parser.add_argument("--version", action="version", version=f"genlib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check params.yaml and print the resolved config")
    check.add_argument("params", nargs="?", default="params.yaml")
    lst = sub.add_parser("list", help="list the registered methods, datasets and networks, or one's settings")
    lst.add_argument("name", nargs="?", help="a method, dataset or network: its params.yaml settings")
    cmp = sub.add_parser("compare", help="compare DVC experiments in one offline report")
    cmp.add_argument("--repo", default=".", help="the project (default: here)")
    cmp.add_argument("--json", help="a saved `dvc exp show --json` instead of running it")
    cmp.add_argument("--out", default="compare", help="report folder (default: compare/)")
    cmp.add_argument("--metrics", help="comma-separated metric keys (default: the headline ones)")
    cmp.add_argument("--workspace", action="store_true", default=None,
                     help="include the workspace row (by default it is listed when its results are in no other row)")
    cmp.add_argument("--all-commits", action="store_true", help="experiments of every commit, not just HEAD")
    _sweep_parser(sub)
    _migrate_parser(sub)
    new = sub.add_parser("new", help="a ready plugin file in plugin_modules/ from a template (README, \"Plugins\")")
    new.add_argument("kind", choices=("method", "model", "dataset"))
    new.add_argument("name", help="the plugin's module and registry name, e.g. my_flow")
    new.add_argument("--dir", default="plugin_modules", help="where to write NAME.py (default: plugin_modules)")
    args = parser.parse_args(argv)
    if args.command == "new":
        _new(args)
        return
    if args.command == "migrate":
        _migrate(args)
        return
    if args.command == "sweep":
        _sweep(args)
        return
    if args.command == "compare":
        _compare(args)
        return
    if args.command == "list":
        from genlib.registry import DATASETS, METHODS, NETS  # names and paths: no torch

        if args.name:
            try:
                print("\n".join(describe(args.name)))
            except (ConfigError, UnknownNameError) as err:
                fail(str(err))
            return
        for registry in (METHODS, DATASETS, NETS):
            print(f"{registry.kind}s: {', '.join(registry.names())}")
        return
    try:
        from genlib.config import load

        print(json.dumps(load(args.params).to_dict(), indent=2))
    except (ConfigError, UnknownNameError) as err:
        fail(str(err))


HINT = ("no experiments yet: run some with `dvc exp run -n NAME -S method=ddpm`, or a sweep with "
        "`dvc exp run --queue -S method=ddpm,dlpm -S seed=0,1` and `dvc queue start`, then `genlib compare` again")


def _compare(args) -> None:
    from pathlib import Path

    from genlib.compare import CompareError, compare, parse_exp_show, read_exp_show, read_saved

    repo = Path(args.repo)
    try:
        rows = read_saved(Path(args.json)) if args.json else read_exp_show(repo, args.all_commits)
        exps = parse_exp_show(rows, include_workspace=args.workspace)
    except CompareError as err:
        fail(f"compare: {err}")
    if not any(not e.baseline for e in exps) and sum(not e.problem for e in exps) < 2:
        fail(f"compare: {HINT}")
    metrics = args.metrics.split(",") if args.metrics else None
    try:
        lines = compare(exps, Path(args.out), repo=None if args.json else repo, metrics=metrics)
    except CompareError as err:
        fail(f"compare: {err}")
    except OSError as err:
        fail(f"compare: cannot write the report in {args.out} ({err.strerror or err})")
    print("\n".join(lines))
    print(f"\nreport: {Path(args.out) / 'compare.html'} (and compare.md)")


USE = {  # what params.yaml needs to use a new plugin
    "method": "plugins: [{n}], method: {n} and a section {n}: {{noise_scale: 1.0}}",
    "model": "plugins: [{n}] and model: {{net: {n}}}",
    "dataset": "plugins: [{n}] and data: {{dataset: {n}}}",
}


def _new(args) -> None:
    from genlib.templates import TemplateError, write_plugin

    try:
        path = write_plugin(args.kind, args.name, args.dir)
    except TemplateError as err:
        fail(f"new: {err}")
    print(f"new: {args.kind} {args.name} written to {path}; use it with {USE[args.kind].format(n=args.name)} in params.yaml")


def _migrate_parser(sub) -> None:
    mig = sub.add_parser("migrate", help="an hvae's weights trained elsewhere as a genlib checkpoint (README, \"Migration\")")
    mig.add_argument("weights", help="a torch state dict (a mapping of names to tensors)")
    mig.add_argument("--adapter", default="indexed", help="the migration adapter mapping its names onto the blocks (default: indexed)")
    mig.add_argument("--data-shape", required=True, help="the shape of one item, e.g. 2 or 1,28,28")
    mig.add_argument("--params", default="params.yaml", help="the params whose hvae section is the graph (default: params.yaml)")
    mig.add_argument("--out", default="data/model", help="the model folder to write (default: data/model)")


def _migrate(args) -> None:
    from genlib.config import load
    from genlib.errors import DataError
    from genlib.migrate import migrate_checkpoint

    try:
        shape = tuple(int(d) for d in args.data_shape.split(","))
    except ValueError:
        fail(f"migrate: --data-shape {args.data_shape!r} is not a comma list of positive integers")
    if not all(d > 0 for d in shape):
        fail(f"migrate: --data-shape {args.data_shape!r} is not a comma list of positive integers")
    try:
        written = migrate_checkpoint(load(args.params), args.weights, args.adapter, shape, args.out)
    except (ConfigError, DataError, UnknownNameError) as err:
        fail(f"migrate: {err}")
    print(f"migrate: {args.weights} through adapter {args.adapter} written to {written}")


def _sweep_parser(sub) -> None:
    sweep = sub.add_parser("sweep", help="run a grid of experiments as one SLURM job array (README, \"Several machines\")")
    sweep.add_argument("name", help="the sweep's name; its experiments are NAME-1, NAME-2, ...")
    sweep.add_argument("-S", "--set-param", action="append", default=[], metavar="[FILE:]KEY=VALUES",
                       help="as `dvc exp run --queue -S`: a comma list sweeps the values (the grid is the product)")
    act = sweep.add_mutually_exclusive_group()
    act.add_argument("--status", action="store_true", help="each cell's state, whether it reached the origin, its error")
    act.add_argument("--resubmit", action="store_true",
                     help="submit again the cells not in the origin and not queued or running; each resumes in its clone")
    act.add_argument("--dry-run", action="store_true", help="write the plan and the job script, submit nothing")
    slurm = sweep.add_argument_group("SLURM, for each cell's task (default: the cluster's)")
    slurm.add_argument("--partition")
    slurm.add_argument("--time", help="time limit, e.g. 2:00:00")
    slurm.add_argument("--nodes", type=int, help="nodes per cell: its torchrun spans them, run.nproc_per_node processes on each")
    slurm.add_argument("--cpus-per-task", type=int, help="CPUs per cell (per node with --nodes)")
    slurm.add_argument("--gpus", help="e.g. 1 or a100:1")
    slurm.add_argument("--mem", help="e.g. 16G")
    slurm.add_argument("--requeue", action="store_true", help="sbatch --requeue: a preempted task runs again, resuming")
    slurm.add_argument("--sbatch", action="append", default=[], metavar="LINE",
                       help="an extra line: '--account=abc' becomes '#SBATCH --account=abc'; "
                            "any other line ('module load cuda') runs before the cell")
    where = sweep.add_argument_group("where the tasks work (on a filesystem every node mounts)")
    where.add_argument("--cache", help="the shared DVC cache (default: this project's, `dvc cache dir`)")
    where.add_argument("--cache-type", help="cache.type of the tasks' clones, e.g. hardlink,symlink (default: the project's)")
    where.add_argument("--work-dir", help="the cells' clones and logs (default: .genlib/sweeps/NAME/)")
    where.add_argument("--remote", default="origin", help="the git remote the tasks clone and push to (default: origin)")


def _sweep(args) -> None:
    from pathlib import Path

    from genlib.sweep import SweepError
    from genlib.sweep.plan import plan_file, read
    from genlib.sweep.slurm import Resources
    from genlib.sweep.status import cells, lines
    from genlib.sweep.submit import plan_sweep, resubmit, start

    root = Path(".")
    try:
        if args.status:
            print("\n".join(lines(read(plan_file(root, args.name)))))
            return
        if args.resubmit:
            plan, again = resubmit(root, args.name)
            print(f"sweep {args.name}: " + (f"{', '.join(plan.cells[i].exp for i in again)} submitted again as job {plan.jobs[-1]['id']}"
                                            if again else "no cell to submit again (every one is in the origin, queued or running)"))
            return
        if args.nodes is not None and args.nodes < 1:
            raise SweepError(f"--nodes {args.nodes}: a positive number of nodes")
        resources = Resources(args.partition, args.time, args.cpus_per_task, args.gpus, args.mem, args.requeue, tuple(args.sbatch),
                              args.nodes)
        plan = start(root, plan_sweep(root, args.name, args.set_param, args.cache, args.cache_type, args.work_dir, args.remote,
                                      args.nodes or 1), resources, args.dry_run)
    except SweepError as err:
        fail(f"sweep: {err}")
    what = f"submitted as job {plan.jobs[-1]['id']}" if plan.jobs else f"written to {plan.script}, not submitted (--dry-run; `genlib sweep --resubmit {plan.name}` submits it)"
    print(f"sweep {plan.name}: {cells(len(plan.cells))} of commit {plan.commit[:12]} {what}; cache {plan.cache_dir}")
    print(f"`genlib sweep --status {plan.name}` follows them")


def describe(name: str) -> list[str]:
    """``genlib list NAME``: what ``name`` is, and each of its settings with its default, what is
    allowed, and where it applies (from its spec: no torch)."""
    import dataclasses

    from genlib.registry import DATASETS, METHODS, NETS

    found = [r for r in (METHODS, DATASETS, NETS) if name in r]
    if not found:
        known = ", ".join(sorted({n for r in (METHODS, DATASETS, NETS) for n in r.names()}))
        raise UnknownNameError(f"list: {name!r} is no registered method, dataset or network; known: {known}")
    registry = found[0]
    spec = registry.spec(name)
    section = {"method": name, "dataset": "data", "network": "model"}[registry.kind]
    lines = [f"{registry.kind} {name}" + (f": {(spec.__doc__ or '').strip().splitlines()[0]}" if spec.__doc__ else "")]
    samplers = getattr(spec, "samplers", None)
    if samplers:
        lines.append(f"samplers (eval.sampler): {', '.join(samplers)} (default: {samplers[0]})")
    params = getattr(spec, "Params", None)
    if params is None:
        return lines
    lines.append(f"settings ({section}: in params.yaml):")
    for f in dataclasses.fields(params):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        notes = [f.metadata.get("allowed") or ""]
        if f.metadata.get("kind"):
            notes.append(f"{f.metadata['kind']} only")
        if f.metadata.get("sampling"):
            notes.append("sampling only: keys generate, not train")
        lines.append(f"  {f.name}: {_plain(default)}" + (f"  ({'; '.join(n for n in notes if n)})" if any(notes) else ""))
    return lines


def _plain(value) -> str:
    import json

    return json.dumps(list(value) if isinstance(value, tuple) else value)
