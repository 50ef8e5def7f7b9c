"""Time ``cp configs/mnist.yaml params.yaml && dvc exp run -S method=<vae|gan>`` stage by stage.

Runs the pipeline functions on ``configs/mnist.yaml`` (plus ``--set key=value`` overrides, values
read as YAML) in an output folder, so the project's own ``params.yaml`` and outputs stay as they
are; ``--prepared`` reuses an earlier run's ``data/prepared`` (prepare_data is the same for every
method). Prints the wall time of each stage and the main metrics as JSON, and copies the sample
grid to ``--grid`` when given.

    python bench/mnist_families.py --method vae --out /tmp/mnist_vae --grid docs/mnist_vae_cpu.png
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import yaml

from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.config import load
from genlib.pipeline.report import report_stage

ROOT = Path(__file__).resolve().parents[1]
SHOWN = ("fid_clf", "kid_clf", "precision_clf", "recall_clf", "class_tv", "elbo", "nll_iwae", "bits_per_dim",
         "recon_mse", "kl", "active_units", "n_nonfinite")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--prepared", type=Path, help="a data/prepared folder to reuse")
    ap.add_argument("--grid", type=Path, help="where to copy plots/samples.png")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    overrides = {"method": args.method, "run.progress": "never"}
    overrides.update({k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)})
    cfg = load(ROOT / "configs" / "mnist.yaml", overrides)
    paths = Paths(args.out)
    times = {}
    start = time.perf_counter()
    if args.prepared:
        shutil.copytree(args.prepared, paths.prepared, dirs_exist_ok=True)
    else:
        prepare_data(cfg, paths)
    times["prepare_data_s"] = time.perf_counter() - start
    for name, stage in (("train", train_stage), ("generate", generate_stage),
                        ("evaluate", evaluate_stage), ("report", report_stage)):
        start = time.perf_counter()
        stage(cfg, paths)
        times[f"{name}_s"] = time.perf_counter() - start
    metrics = json.loads(paths.metrics.read_text())
    out = {"overrides": overrides, **{k: round(v, 1) for k, v in times.items()},
           **{k: metrics[k] for k in SHOWN if k in metrics}}
    print(json.dumps(out, indent=1))
    if args.grid:
        shutil.copy(paths.samples_plot, args.grid)


if __name__ == "__main__":
    main()
