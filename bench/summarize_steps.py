"""Tables and a figure of metrics against reverse steps from the rows ``quality_2d.py --out``
writes for variants named ``dataset:method:sampler:steps``.

    .venv/bin/python bench/summarize_steps.py bench/study_steps.json docs/study_steps.png
"""
from __future__ import annotations

import json
import statistics as st
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = (("w1_exact", "W1 exact"), ("tail_error", "tail error"), ("mode_weight_l1", "mode-weight L1"))


def grouped(rows):
    cells = defaultdict(list)
    for r in rows:
        data, method, sampler, steps = r["variant"].split(":")
        cells[(data, f"{method}/{sampler}", int(steps))].append(r)
    return cells


def main(path: str, figure: str) -> None:
    cells = grouped(json.load(open(path)))
    datasets = sorted({k[0] for k in cells}, reverse=True)
    lines = sorted({k[1] for k in cells})
    steps = sorted({k[2] for k in cells})
    for metric, label in METRICS:
        for data in datasets:
            print(f"\n{label} on {data} (mean ± std over seeds)\n")
            print("| method/sampler | " + " | ".join(f"{s} steps" for s in steps) + " |")
            print("|---|" + "---|" * len(steps))
            for line in lines:
                vals = [[r[metric] for r in cells[(data, line, s)]] for s in steps]
                print(f"| {line} | " + " | ".join(f"{st.fmean(v):.3f} ± {st.pstdev(v):.3f}" for v in vals) + " |")
    fig, axes = plt.subplots(len(METRICS), len(datasets), figsize=(5 * len(datasets), 3.3 * len(METRICS)), squeeze=False)
    for j, data in enumerate(datasets):
        for i, (metric, label) in enumerate(METRICS):
            ax = axes[i][j]
            for line in lines:
                ys = [st.fmean(r[metric] for r in cells[(data, line, s)]) for s in steps]
                ax.plot(steps, ys, marker="o", label=line)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{label}, {data}")
            ax.set_xlabel("reverse steps")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figure, dpi=100)
    print(f"\nfigure: {figure}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
