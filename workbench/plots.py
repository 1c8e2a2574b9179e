"""Figures: pure functions from tidy DataFrames to matplotlib Axes, plus one saving helper.

Every plot function takes a DataFrame and `ax=None` (a new figure when None) and returns the Axes;
none of them computes results. `save_figure` writes PNG, PDF and a JSON sidecar with the settings
that produced the figure. One style for all: seaborn's colour-blind-safe palette, labelled axes
with units, legends.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .store import environment, write_json

PALETTE = "colorblind"
METHOD_ORDER = ("complete", "deebert", "pabee", "probe", "cascade", "cascade+da", "oracle", "random")


def use_style() -> None:
    """The workbench's one figure style."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        use_style()
        _, ax = plt.subplots(figsize=figsize)
    return ax


def speed_accuracy(curves: pd.DataFrame, *, ax=None, x: str = "speedup_layers", metric_name: str = "accuracy",
                   references: pd.DataFrame | None = None, legend_outside: bool = True):
    """Speed-accuracy curves: one line per `method` of `curves` (columns method, `x`, metric); dashed
    reference lines (random, oracle) from `references` with the same columns."""
    ax = _axes(ax, figsize=(9, 4.5))
    colors = dict(zip(sorted(curves["method"].unique()), sns.color_palette(PALETTE, 10)))
    for method, group in curves.groupby("method", sort=True):
        group = group.sort_values(x)
        ax.plot(group[x], group["metric"], marker="o", ms=3, label=method, color=colors[method])
    if references is not None:
        styles = itertools.cycle(("--", ":", "-.", (0, (5, 1, 1, 1))))
        for method, group in references.groupby("method", sort=True):
            group = group.sort_values(x)
            if len(group) == 1:  # a single operating point, e.g. the oracle exit
                ax.plot(group[x], group["metric"], marker="*", ms=12, linestyle="none", color="0.2",
                        label=f"{method} (reference)")
            else:
                ax.plot(group[x], group["metric"], linestyle=next(styles), color="0.35", label=f"{method} (reference)")
    label = {"speedup_layers": "speed-up (full layers / mean layers executed)",
             "speedup_flops": "speed-up (full FLOPs / mean FLOPs executed)"}.get(x, x)
    ax.set_xlabel(label)
    ax.set_ylabel(f"{metric_name} (%)")
    if legend_outside:
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        ax.legend(fontsize="small")
    return ax


def sufficiency_bars(table: pd.DataFrame, *, ax=None):
    """Accuracy of the internal classifier vs the complete k-layer model on the instances the internal
    classifier exits at layer k (columns layer, n, acc_internal, acc_complete, ci_low, ci_high)."""
    ax = _axes(ax, figsize=(7, 4.5))
    x = np.arange(len(table))
    width = 0.38
    colors = sns.color_palette(PALETTE)
    ax.bar(x - width / 2, table["acc_internal"], width, label="internal classifier (off-ramp)", color=colors[0])
    bars = ax.bar(x + width / 2, table["acc_complete"], width, label="complete k-layer model", color=colors[1])
    if {"ci_low", "ci_high"} <= set(table.columns):
        diff = table["acc_complete"] - table["acc_internal"]
        for rect, low, high, d in zip(bars, table["ci_low"], table["ci_high"], diff):
            ax.annotate(f"off-ramp {-d:+.1f} [{-high:+.1f}, {-low:+.1f}]", (rect.get_x() + rect.get_width() / 2,
                        rect.get_height()), ha="center", va="bottom", fontsize="x-small")
    ax.set_xticks(x, [f"layer {int(k)}\n(n={int(n)})" for k, n in zip(table["layer"], table["n"])])
    ax.set_ylabel("accuracy on those instances (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize="small", loc="lower right")
    return ax


def dis_heatmap(table: pd.DataFrame, *, ax=None, value: str = "dis"):
    """Difficulty Inversion Score per model (rows) and layer (columns); 50 is chance."""
    ax = _axes(ax)
    grid = table.groupby(["model", "layer"])[value].mean().unstack("layer")
    sns.heatmap(grid, annot=True, fmt=".1f", cmap="viridis", vmin=50, vmax=100, ax=ax,
                cbar_kws={"label": "DIS (pairs ordered correctly, %)"})
    ax.set_xlabel("exit layer")
    ax.set_ylabel("model")
    return ax


def exit_histogram(shares: pd.Series, *, ax=None, label: str | None = None):
    """Share of examples exiting at each layer (index: layer, values: fraction)."""
    ax = _axes(ax)
    ax.bar(shares.index.astype(int), 100 * shares.to_numpy(), label=label, color=sns.color_palette(PALETTE)[0])
    ax.set_xlabel("exit layer")
    ax.set_ylabel("examples exiting (%)")
    if label:
        ax.legend(fontsize="small")
    return ax


def save_figure(ax_or_fig, path_stem: str | Path, *, config: dict[str, Any] | None = None) -> list[Path]:
    """Write `<stem>.png`, `<stem>.pdf` and `<stem>.json` (the settings that made the figure)."""
    fig = ax_or_fig.figure if hasattr(ax_or_fig, "figure") and not isinstance(ax_or_fig, plt.Figure) else ax_or_fig
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = []
    for suffix in (".png", ".pdf"):
        tmp = stem.with_name(f".{stem.name}.tmp{suffix}")
        fig.savefig(tmp, dpi=150)
        tmp.replace(stem.with_suffix(suffix))
        paths.append(stem.with_suffix(suffix))
    paths.append(write_json(stem.with_suffix(".json"), {"figure": stem.name, "config": config or {},
                                                        "environment": environment()}))
    plt.close(fig)
    return paths
