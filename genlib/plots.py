"""Figures people would rather look at than read: samples against data, and their tails."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import torch  # noqa: E402

from genlib import io  # noqa: E402
from genlib.metrics.modes import nearest_mode_distance  # noqa: E402


def _save(fig, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def samples_vs_data(path: Path, samples: np.ndarray, data: np.ndarray, modes, title: str = "") -> None:
    """Left: generated points over held-out data, framed on the data's bulk. Right: survival
    function of the distance to the nearest mode on log-log axes, where heavy tails show."""
    finite = samples[np.isfinite(samples).all(axis=1)]
    fig, (ax, tail) = plt.subplots(1, 2, figsize=(10, 4.6))
    lo, hi = np.quantile(data, [0.002, 0.998], axis=0)
    pad = 0.15 * (hi - lo)
    ax.scatter(data[:, 0], data[:, 1], s=1, c="0.6", alpha=0.35, label="data (held out)", rasterized=True)
    ax.scatter(finite[:, 0], finite[:, 1], s=1, c="tab:red", alpha=0.35, label="generated", rasterized=True)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_aspect("equal", adjustable="box")
    ax.legend(loc="upper left", markerscale=6, fontsize=8)
    ax.set_title(title or "samples")
    for pts, colour, label in ((data, "0.4", "data"), (finite, "tab:red", "generated")):
        centres = torch.tensor(modes) if modes else torch.from_numpy(data.mean(0, keepdims=True))
        d = np.sort(nearest_mode_distance(torch.from_numpy(pts), centres).numpy())
        surv = 1.0 - np.arange(d.size) / d.size
        tail.loglog(np.maximum(d, 1e-6), surv, color=colour, label=label)
    tail.set_xlabel("distance to nearest mode")
    tail.set_ylabel("P(distance > x)")
    tail.set_title("tails")
    tail.grid(True, which="both", alpha=0.3)
    tail.legend(fontsize=8)
    _save(fig, path)


def curves(path: Path, series: dict[str, tuple[np.ndarray, np.ndarray]], ylabel: str, log: bool = True) -> None:
    """Line plot of named (x, y) series, e.g. the training loss of several runs."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    _save(fig, path)


def tile(images: np.ndarray, cols: int) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` -> one ``(rows * H, cols * W, C)`` mosaic with 1-pixel gaps."""
    n, c, h, w = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1, c), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        out[r * (h + 1): r * (h + 1) + h, k * (w + 1): k * (w + 1) + w] = img.transpose(1, 2, 0)
    return out


def image_grid(path: Path, samples: np.ndarray, data: np.ndarray, title: str = "", n: int = 64) -> None:
    """Generated images (left) beside held-out ones (right), ``n`` of each on a square grid."""
    cols = max(int(np.ceil(np.sqrt(min(n, len(samples))))), 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2))
    for ax, imgs, name in ((axes[0], samples[:n], title or "samples"), (axes[1], data[:n], "held-out data")):
        mosaic = tile(imgs, cols)
        ax.imshow(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    _save(fig, path)


def bars(path: Path, labels: list[str], values: list[float], ylabel: str, title: str = "") -> None:
    """One bar per label, its value written above it (e.g. the KL of each latent layer)."""
    fig, ax = plt.subplots(figsize=(max(3.0, 0.9 * len(labels) + 1.5), 3.6))
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_xticks(range(len(labels)), labels)
    for i, v in enumerate(values):
        ax.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    _save(fig, path)


def _frame(ax, data: np.ndarray) -> None:
    """Held-out data in grey, the axes framed on its bulk."""
    lo, hi = np.quantile(data, [0.002, 0.998], axis=0)
    pad = 0.15 * (hi - lo)
    ax.scatter(data[:, 0], data[:, 1], s=1, c="0.75", alpha=0.35, rasterized=True)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_aspect("equal", adjustable="box")


def point_panels(path: Path, data: np.ndarray, panels: list[tuple[str, np.ndarray, np.ndarray | None]],
                 label: str = "generated") -> None:
    """One 2D panel per ``(title, points, origins)`` over the held-out data (grey): the points in
    red (``label`` in the legend) and, where ``origins`` is given, each joined to its origin
    (blue) by a segment."""
    from matplotlib.collections import LineCollection

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.4), squeeze=False)
    for ax, (title, points, origins) in zip(axes[0], panels):
        _frame(ax, data)
        if origins is not None:
            ax.add_collection(LineCollection(np.stack([origins, points], axis=1), colors="0.3", linewidths=0.5, alpha=0.6))
            ax.scatter(origins[:, 0], origins[:, 1], s=4, c="tab:blue", label="data point")
        ax.scatter(points[:, 0], points[:, 1], s=4, c="tab:red", alpha=0.6 if origins is None else 1.0,
                   label="reconstruction" if origins is not None else label, rasterized=True)
        ax.legend(loc="upper left", markerscale=3, fontsize=8)
        ax.set_title(title, fontsize=10)
    _save(fig, path)


def path_panels(path: Path, data: np.ndarray, panels: list[tuple[str, np.ndarray, np.ndarray]], value_label: str) -> None:
    """One 2D panel per ``(title, paths, values)`` over the held-out data: ``paths`` ``(P, T, 2)``
    are curves in data space, coloured by ``values`` ``(T,)`` (e.g. a latent traversal)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.4), squeeze=False)
    for ax, (title, curves_, values) in zip(axes[0], panels):
        _frame(ax, data)
        for curve in curves_:
            ax.plot(curve[:, 0], curve[:, 1], c="0.3", lw=0.8, alpha=0.7)
            dots = ax.scatter(curve[:, 0], curve[:, 1], c=values, cmap="coolwarm", s=10, zorder=3)
        fig.colorbar(dots, ax=ax, shrink=0.75, label=value_label)
        ax.set_title(title, fontsize=10)
    _save(fig, path)


def heatmaps(path: Path, panels: list[tuple[str, np.ndarray, list[str], list[str]]], value_label: str) -> None:
    """One panel per ``(title, matrix, row labels, column labels)``, values in [-1, 1] on a
    diverging scale (e.g. correlations), each written in its cell."""
    height = 0.5 * max(matrix.shape[0] for _, matrix, _, _ in panels) + 1.6
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), height), squeeze=False)
    for ax, (title, matrix, rows, cols) in zip(axes[0], panels):
        shown = ax.imshow(matrix, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(len(cols)), cols)
        ax.set_yticks(range(len(rows)), rows)
        for (r, c), v in np.ndenumerate(matrix):
            ax.annotate(f"{v:.2f}", (c, r), ha="center", va="center", fontsize=7)
        ax.set_title(title, fontsize=10)
    fig.colorbar(shown, ax=list(axes[0]), shrink=0.8, label=value_label)
    _save(fig, path)


def image_rows(path: Path, rows: list[tuple[str, np.ndarray]]) -> None:
    """One row of uint8 images ``(N, C, H, W)`` per ``(label, images)``, the label on the left."""
    n = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.9 * n + 1.2, 1.0 * len(rows) + 0.3), squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows):
        mosaic = tile(images, len(images))
        ax.imshow(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    _save(fig, path)
