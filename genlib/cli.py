"""The ``genlib`` command: what DVC does not do (check, list, compare). It sits on the top layer
beside the stages (:mod:`genlib.pipeline.runner`)."""
from __future__ import annotations

from genlib.errors import ConfigError
from genlib.pipeline.runner import fail
from genlib.registry import UnknownNameError


def main(argv: list[str] | None = None) -> None:
    """``genlib check``: validate params.yaml and print the resolved config;
    ``genlib list``: the registered methods, datasets and networks;
    ``genlib compare``: one offline report across the DVC experiments."""
    import argparse
    import json

    from genlib import __version__

    parser = argparse.ArgumentParser(prog="genlib", description=main.__doc__)
    parser.add_argument("--version", action="version", version=f"genlib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check params.yaml and print the resolved config")
    check.add_argument("params", nargs="?", default="params.yaml")
    sub.add_parser("list", help="list the registered methods, datasets and networks")
    cmp = sub.add_parser("compare", help="compare DVC experiments in one offline report")
    cmp.add_argument("--repo", default=".", help="the project (default: here)")
    cmp.add_argument("--json", help="a saved `dvc exp show --json` instead of running it")
    cmp.add_argument("--out", default="compare", help="report folder (default: compare/)")
    cmp.add_argument("--metrics", help="comma-separated metric keys (default: the headline ones)")
    cmp.add_argument("--workspace", action="store_true", help="include the workspace row")
    cmp.add_argument("--all-commits", action="store_true", help="experiments of every commit, not just HEAD")
    args = parser.parse_args(argv)
    if args.command == "compare":
        _compare(args)
        return
    if args.command == "list":
        from genlib.registry import DATASETS, METHODS, NETS  # names and paths: no torch

        for registry in (METHODS, DATASETS, NETS):
            print(f"{registry.kind}s: {', '.join(registry.names())}")
        return
    try:
        from genlib.config import load

        print(json.dumps(load(args.params).to_dict(), indent=2))
    except (ConfigError, UnknownNameError) as err:
        fail(str(err))


def _compare(args) -> None:
    import json
    from pathlib import Path

    from genlib.compare import compare, parse_exp_show, read_exp_show

    repo = Path(args.repo)
    try:
        rows = json.loads(Path(args.json).read_text()) if args.json else read_exp_show(repo, args.all_commits)
    except (OSError, ValueError, RuntimeError) as err:
        fail(f"compare: cannot read the experiments ({err})")
    exps = parse_exp_show(rows, include_workspace=args.workspace)
    if not exps:
        fail("compare: no experiments found (run some with `dvc exp run`)")
    metrics = args.metrics.split(",") if args.metrics else None
    lines = compare(exps, Path(args.out), repo=None if args.json else repo, metrics=metrics)
    print("\n".join(lines))
    print(f"\nreport: {Path(args.out) / 'compare.html'} (and compare.md)")
