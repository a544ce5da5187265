"""PNG plots of a run: validation NDCG@10 against γ, and test NDCG@10 per method."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")   # files only; no display on a server
    import matplotlib.pyplot as plt

    return plt


def plot_gamma_curves(dataset: str, curves: dict, out_dir) -> Path:
    """``curves[variant] = {"gamma": [...], "val_ndcg@10": [...], "chosen": {label: γ}}``."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 3.6), squeeze=False)
    for ax, (variant, curve) in zip(axes[0], sorted(curves.items()), strict=True):
        gammas, values = np.asarray(curve["gamma"]), np.asarray(curve["val_ndcg@10"])
        ax.plot(gammas, values, color="tab:blue", lw=1.6)
        styles = iter(["tab:red", "tab:green", "tab:purple", "tab:orange"])
        for label, gamma in curve["chosen"].items():
            value = np.interp(gamma, gammas, values)
            color = next(styles)
            ax.axvline(gamma, color=color, ls="--", lw=1)
            ax.plot([gamma], [value], "o", color=color, label=f"{label}: γ={gamma:.3f}")
        ax.set_title(f"{dataset}: NUDGE-{variant}")
        ax.set_xlabel("γ" + (" (squared move bound)" if variant == "N" else " (move length)"))
        ax.set_ylabel("validation NDCG@10")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(out_dir) / f"gamma-{dataset}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ndcg_bars(results: dict, labels: dict, out_dir, name: str = "ndcg-by-method.png"):
    """Grouped bars: one group per dataset, one bar per method (test NDCG@10)."""
    plt = _pyplot()
    datasets = list(results)
    methods = list(dict.fromkeys(m for ds in datasets for m in results[ds]))
    width = 0.8 / max(len(methods), 1)
    size = min(12.0, max(7.0, 0.6 * len(methods) * len(datasets) + 2))
    fig, ax = plt.subplots(figsize=(size, 5.2))
    colors = plt.get_cmap("tab10")
    for i, method in enumerate(methods):
        xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(datasets))]
        ys = [results[ds].get(method, {}).get("ndcg@10", np.nan) for ds in datasets]
        bars = ax.bar(xs, ys, width, label=labels.get(method, method), color=colors(i % 10))
        for bar, y in zip(bars, ys, strict=True):
            if np.isfinite(y):
                ax.text(bar.get_x() + bar.get_width() / 2, y + 0.005, f"{y:.3f}",
                        ha="center", va="bottom", fontsize=6.5, rotation=90)
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_ylabel("test NDCG@10")
    ax.set_ylim(0, 1.05)
    # below the axes, so the legend never hides a bar
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(out_dir) / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
