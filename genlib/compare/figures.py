"""The comparison's figures (matplotlib, PNG): metrics against a swept param with the seeds
aggregated, training curves overlaid, and the samples on one grid."""
from __future__ import annotations

import io as bytes_io
import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402
import numpy as np  # noqa: E402

from genlib import io, plots  # noqa: E402
from genlib.compare.groups import Point  # noqa: E402

COLOURS = plt.get_cmap("tab10").colors


def save(fig, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def _grid(n: int, cols: int, width: float, height: float, **kw):
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kw)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def _legend_below(fig, handles, labels) -> None:
    if handles:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(2, len(labels)), fontsize=8, frameon=False)


def _n_text(points: list[Point]) -> str:
    ns = sorted({p.stat.n for p in points})
    return f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}-{ns[-1]}"


def metric_panels(path: Path, xlabel: str, panels: dict[str, dict[str, list[Point]]], colour: dict[str, int], log_x: bool) -> None:
    """One panel per metric (keyed by its title), one line per series: the mean over seeds, bars
    from min to max."""
    fig, axes = _grid(len(panels), 3, 4.2, 3.2)
    shown: dict[str, object] = {}
    for ax, (metric, by_label) in zip(axes, panels.items()):
        for name, points in by_label.items():
            xs = [p.x for p in points]
            means = np.array([p.stat.mean for p in points])
            err = np.array([[p.stat.mean - p.stat.lo for p in points], [p.stat.hi - p.stat.mean for p in points]])
            line = ax.errorbar(xs, means, yerr=err, marker="o", ms=4, capsize=3, color=COLOURS[colour[name] % 10])
            shown.setdefault(f"{name} ({_n_text(points)})", line)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(xlabel)
        if log_x:
            ax.set_xscale("log")
        ticks = sorted({p.x for points in by_label.values() for p in points})
        if len(ticks) <= 8:  # the swept values themselves, written plainly (not 2x10^1)
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(True, alpha=0.3)
    _legend_below(fig, list(shown.values()), list(shown))
    fig.tight_layout()
    save(fig, path)


def curve_panels(path: Path, curves: dict[str, list[tuple[str, np.ndarray, np.ndarray]]], colour: dict[str, int]) -> None:
    """One panel per training curve (loss, grad_norm, lr, ...), one line per experiment, coloured
    by its configuration (the seeds of one configuration share a colour)."""
    fig, axes = _grid(len(curves), 3, 4.2, 3.2)
    shown: dict[str, object] = {}
    for ax, (name, lines) in zip(axes, curves.items()):
        for label, x, y in lines:
            (line,) = ax.plot(x, y, lw=1.1, alpha=0.8, color=COLOURS[colour[label] % 10])
            shown.setdefault(label, line)
        if all((y > 0).all() for _, _, y in lines) and name != "lr":
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    _legend_below(fig, list(shown.values()), list(shown))
    fig.tight_layout()
    save(fig, path)


def load_array(data: bytes) -> np.ndarray | None:
    try:
        return np.load(bytes_io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None


def _frame(points: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    pooled = np.concatenate(points)
    pooled = pooled[np.isfinite(pooled).all(axis=1)]
    lo, hi = np.quantile(pooled, [0.002, 0.998], axis=0)
    pad = 0.15 * (hi - lo)
    return lo - pad, hi + pad


def _gray_tile(images: np.ndarray, cols: int) -> np.ndarray:
    """The run report's mosaic (:func:`genlib.plots.tile`), one channel as a 2D array."""
    out = plots.tile(images, cols)
    return out[..., 0] if out.shape[-1] == 1 else out


def sample_grid(path: Path, panels: list[tuple[str, np.ndarray | None, np.ndarray | None, bytes | None]], shared: bool) -> None:
    """One small panel per ``(title, samples, held-out data, samples.png)``. 2D points are drawn
    over the held-out data in grey, on shared axes (framed on the pooled data) when ``shared``;
    images as a tile of 16; a run without readable samples shows its own ``samples.png``."""
    fig, axes = _grid(len(panels), 4, 3.0, 3.1, sharex=shared, sharey=shared)
    points = [a for _, a, _, _ in panels if a is not None and a.ndim == 2 and a.shape[1] == 2]
    frames = [d for _, _, d, _ in panels if d is not None and d.ndim == 2 and d.shape[1] == 2] or points
    lo, hi = _frame(frames) if frames else (None, None)
    rng = np.random.default_rng(0)  # which points are drawn only; fixed so the figure is stable
    for ax, (title, samples, data, png) in zip(axes, panels):
        ax.set_title("\n".join(textwrap.wrap(title, 38)), fontsize=7)
        if samples is not None and samples.ndim == 2 and samples.shape[1] == 2:
            for arr, colour, size in ((data, "0.7", 1), (samples, "tab:red", 2)):
                if arr is not None and arr.ndim == 2 and arr.shape[1] == 2:
                    arr = arr[rng.permutation(len(arr))[:2000]]
                    ax.scatter(arr[:, 0], arr[:, 1], s=size, c=colour, alpha=0.5, rasterized=True, linewidths=0)
            if lo is not None:
                ax.set_xlim(lo[0], hi[0])
                ax.set_ylim(lo[1], hi[1])
                outside = 1.0 - float(((samples >= lo) & (samples <= hi)).all(axis=1).mean())
                ax.text(0.02, 0.02, f"{outside:.0%} outside", transform=ax.transAxes, fontsize=7, color="tab:red")
            ax.tick_params(labelsize=7)
        elif samples is not None and samples.ndim == 4 and samples.dtype == np.uint8:
            ax.imshow(_gray_tile(samples[:16], 4), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.axis("off")
        elif png is not None:
            ax.imshow(plt.imread(bytes_io.BytesIO(png), format="png"))
            ax.axis("off")
        else:
            ax.text(0.5, 0.5, "no samples in the cache", ha="center", va="center", fontsize=8, transform=ax.transAxes)
            ax.axis("off")
    fig.tight_layout()
    save(fig, path)
