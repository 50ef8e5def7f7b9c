"""The table of docs/RESULTS.md, "GPM's models and heavy-tailed EDM": one row per variant (mean ±
std over its seeds, n shown), from the JSON rows ``quality_2d.py --out`` writes.

    .venv/bin/python bench/summarize_gpm.py bench/study_gpm.json
"""
from __future__ import annotations

import json
import statistics as st
import sys


def cell(values: list[float]) -> str:
    return f"{st.fmean(values):.3f} ± {st.pstdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def main(*paths: str) -> None:
    rows = [r for p in paths for r in json.load(open(p))]
    for data in dict.fromkeys(r["variant"].split(":")[0] for r in rows):
        print(f"\n{data}\n")
        print("| method | sampler | network evals | n | W1 exact | tail error | worst-mode ratio per seed | train s |")
        print("|---|---|---|---|---|---|---|---|")
        for name in dict.fromkeys(r["variant"] for r in rows if r["variant"].startswith(f"{data}:")):
            sel = [r for r in rows if r["variant"] == name]
            parts = name.split(":")
            method, sampler = parts[1], (parts[2] if len(parts) > 2 else "default")
            worst = ", ".join(f"{r['mode_ratio_worst']:.2f}" for r in sel)
            print(f"| {method} | {sampler} | {int(sel[0]['network_evals'])} | {len(sel)} | {cell([r['w1_exact'] for r in sel])} "
                  f"| {cell([r['tail_error'] for r in sel])} | {worst} | {st.fmean(r['train_time_s'] for r in sel):.0f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
