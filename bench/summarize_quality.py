"""Markdown table (mean ± std over seeds) from the JSON rows that quality_2d.py --out writes.

    .venv/bin/python bench/summarize_quality.py bench/quality_defaults.json
"""
from __future__ import annotations

import json
import math
import statistics as st
import sys


def mean_std(values: list[float]) -> str:
    return f"{st.fmean(values):.3f} ± {st.pstdev(values):.3f}"


def main(path: str) -> None:
    rows = json.load(open(path))
    data_q = st.fmean(r["tail_q0.999_ref"] for r in rows)
    print(f"| variant | W1 exact | tail error | 99.9% distance (data {data_q:.2f}) | mode-weight L1 "
          "| worst-mode ratio per seed | mean abs log worst ratio | rarest-mode ratio per seed |")
    print("|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["variant"] for r in rows):
        sel = [r for r in rows if r["variant"] == name]
        worst = [r["mode_ratio_worst"] for r in sel]
        rarest = ", ".join(f"{r['mode_ratio_rarest']:.2f}" for r in sel)
        print(
            f"| {name} | {mean_std([r['w1_exact'] for r in sel])} | {mean_std([r['tail_error'] for r in sel])} "
            f"| {mean_std([r['tail_q0.999_gen'] for r in sel])} | {mean_std([r['mode_weight_l1'] for r in sel])} "
            f"| {', '.join(f'{w:.2f}' for w in worst)} | {st.fmean(abs(math.log(w)) for w in worst):.2f} | {rarest} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
