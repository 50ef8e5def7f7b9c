"""Training speed of the default pipeline at ``run.threads`` 1, 2 and ``auto``, alone on the
machine and with two pipelines running at once.

Each pipeline is a copy of the project (``dvc init --no-scm``) run with ``dvc repro -f train``,
as ``dvc queue`` runs one; the figure is the train stage's own ``train_steps / train_time_s``
(``metrics/train.json``), so DVC's start-up and the other stages do not count. "Two at once"
starts two copies together with the same setting and reports the mean of their rates. Each
setting is measured ``--repeats`` times, the settings interleaved, and the fastest repeat is
kept (on a shared machine noise only slows a run down; ``bench_speed.py``). ``OMP_NUM_THREADS``
is removed from the pipelines' environment: ``auto`` would take it as a cap.

    .venv/bin/python bench/bench_threads.py [--epochs 100] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = ["genlib", "stages", "configs", "plugins", "dvc.yaml", "params.yaml", ".dvcignore"]
SETTINGS = (1, 2, "auto")


def make_copy(path: Path, epochs: int) -> Path:
    """The project in ``path`` with ``training.epochs = epochs``, as a DVC repository."""
    for name in COPY:
        src, dst = ROOT / name, path / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["training"]["epochs"] = epochs
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run([dvc(), "init", "--no-scm", "-q"], cwd=path, env=environment(path), check=True)
    return path


def dvc() -> str:
    return str(Path(sys.executable).parent / "dvc")


def environment(path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(PYTHONPATH=str(path), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", DVC_NO_ANALYTICS="1")
    return env


def start(path: Path, threads) -> subprocess.Popen:
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["run"].update(threads=threads, progress="auto")  # auto off a terminal: plain lines
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return subprocess.Popen([dvc(), "repro", "-f", "train"], cwd=path, env=environment(path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, path: Path) -> tuple[float, str]:
    """The train stage's steps per second, and the thread line it printed."""
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"dvc repro failed in {path}:\n{out}")
    train = json.loads((path / "metrics" / "train.json").read_text())
    chosen = re.findall(r"^threads: .*$", out.split("Running stage 'train'")[1], re.M)[0]
    return train["train_steps"] / train["train_time_s"], chosen


def measure(copies: list[Path], threads) -> tuple[float, list[str]]:
    """The mean train rate of ``len(copies)`` pipelines started together."""
    procs = [start(path, threads) for path in copies]
    results = [finish(proc, path) for proc, path in zip(procs, copies)]
    return sum(r for r, _ in results) / len(results), [c for _, c in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100, help="training.epochs (default: the default config's)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genlib-bench-threads-") as tmp:
        copies = [make_copy(Path(tmp) / f"copy{i}", args.epochs) for i in range(2)]
        cases = {"alone": copies[:1], "two at once": copies}
        best: dict[tuple[str, object], float] = {}
        chosen: dict[tuple[str, object], list[str]] = {}
        for repeat in range(args.repeats):
            for case, used in cases.items():
                for threads in SETTINGS:
                    rate, lines = measure(used, threads)
                    print(f"repeat {repeat + 1}: {case}, threads {threads}: {rate:.1f} steps/s ({'; '.join(lines)})", flush=True)
                    best[case, threads] = max(best.get((case, threads), 0.0), rate)
                    chosen.setdefault((case, threads), lines)
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} processors ({len(os.sched_getaffinity(0))} usable), "
          f"torch {torch.__version__}; epochs {args.epochs}; fastest of {args.repeats} repeats\n")
    print("| case | threads 1 | threads 2 | auto | auto chose | auto / best |")
    print("|---|---|---|---|---|---|")
    for case in cases:
        rates = [best[case, t] for t in SETTINGS]
        picked = ", ".join(sorted(set(line.split(" (")[0].removeprefix("threads: ") for line in chosen[case, "auto"])))
        print(f"| {case} | {rates[0]:.1f} | {rates[1]:.1f} | {rates[2]:.1f} | {picked} | {rates[2] / max(rates):.2f} |")


if __name__ == "__main__":
    main()
