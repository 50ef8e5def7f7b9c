"""Quality study: several configurations x seeds through the real pipeline steps, one table.

Each variant is a name and a list of dotted overrides of ``params.yaml``; every (variant, seed)
runs prepare_data -> train -> generate -> evaluate in its own folder, exactly as the DVC stages
would, and the table gives the mean and spread over seeds.

    .venv/bin/python bench/quality_2d.py --seeds 0 1 2 \
        --variant ddpm method=ddpm --variant dlpm method=dlpm
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import yaml

from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.resume import training_key
from genlib.pipeline.train import train_stage
from genlib.pipeline.train_teacher import train_teacher_stage
from genlib.config import load

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("w1_exact", "w1_sliced", "mmd", "tail_error", "tail_q0.999_gen", "mode_weight_l1", "mode_ratio_worst", "mode_ratio_rarest", "precision", "recall", "network_evals", "train_time_s")


def run_one(overrides: dict, seed: int, cache: Path) -> dict:
    """One (variant, seed). Runs sharing training params share one training, as DVC's run cache
    would give them: the folder is named after the training key."""
    cfg = load(ROOT / "params.yaml", {**overrides, "seed": seed, "run.progress": "never"})
    paths = Paths(cache / training_key(cfg))
    if not (paths.train_metrics.is_file() and paths.checkpoint.is_file()):
        prepare_data(cfg, paths)
        train_teacher_stage(cfg, paths)  # ScoreGAN's data score model; a marker for the others
        train_stage(cfg, paths)
    train = json.loads(paths.train_metrics.read_text())
    generate_stage(cfg, paths)
    return {**evaluate_stage(cfg, paths), **train}


def parse_value(text: str):
    return yaml.safe_load(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variant", nargs="+", action="append", required=True, metavar="NAME KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None, help="write all rows as JSON here")
    ap.add_argument("--cache", type=Path, default=None, help="keep trained models here (default: a temp folder)")
    args = ap.parse_args()
    rows = []
    cache = Path(args.cache or tempfile.mkdtemp(prefix="genlib-quality-"))
    for name, *sets in args.variant:
        overrides = {k: parse_value(v) for k, v in (s.split("=", 1) for s in sets)}
        for seed in args.seeds:
            metrics = run_one(overrides, seed, cache)
            rows.append({"variant": name, "seed": seed, "overrides": overrides, **metrics})
            print(json.dumps({"variant": name, "seed": seed, **{k: metrics.get(k) for k in KEYS}}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    print()
    print("| variant | " + " | ".join(KEYS) + " |")
    print("|---|" + "---|" * len(KEYS))
    for name, *_ in args.variant:
        sel = [r for r in rows if r["variant"] == name]
        cells = []
        for k in KEYS:
            vals = [r[k] for r in sel if r.get(k) is not None]
            mean = statistics.fmean(vals)
            spread = statistics.pstdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{mean:.3g} ± {spread:.2g}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
