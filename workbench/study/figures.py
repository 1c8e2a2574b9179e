"""Figures: pure functions from tidy DataFrames to matplotlib Axes, plus one saving helper.

Every plot function takes a DataFrame and `ax=None` (a new figure when None) and returns the Axes;
none of them computes results. `save_figure` writes PNG, PDF and a JSON sidecar with the settings
that produced the figure. One style for all: seaborn's colour-blind-safe palette, labelled axes
with units, legends.
"""
from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from workbench.measures.calibration import reliability_diagram, reliability_table, table_ece
from workbench.methods.points import OperatingPoint
from workbench.names import (COMPLETE_CURVE, EXIT_POLICIES, EXIT_REFERENCES, claims_cascade, display_name, exit_rules,
                             parse_reference, try_parse_model)
from workbench.runs.folder import load_tables, run_cascades
from workbench.study.tables import per_layer_accuracy
from workbench.store import atomic_write_text, environment, read_json, write_json

PALETTE = "colorblind"
RUN_FIGURES = ("speed_accuracy", "sufficiency", "dis_heatmap", "reliability", "exit_accuracy")  # write_figures draws


def use_style() -> None:
    """The workbench's one figure style."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        use_style()
        _, ax = plt.subplots(figsize=figsize)
    return ax


def speed_accuracy(curves: pd.DataFrame, *, ax=None, x: str = "speedup_layers", metric_name: str = "accuracy",
                   references: pd.DataFrame | None = None, legend_outside: bool = True,
                   points: pd.DataFrame | None = None, targets: Sequence[float] = ()):
    """Speed-accuracy curves: one line per `method` of `curves` (columns method, `x`, metric); dashed
    reference lines (random, oracle) from `references` with the same columns; the operating points of the
    main table at each target (`points`, same columns: diamonds in the method's colour, so a method with no
    curve, such as a three-member cascade, is shown too) and the `targets` as dotted vertical lines."""
    ax = _axes(ax, figsize=(9, 4.5))
    methods = sorted(set(curves["method"]) | (set(points["method"]) if points is not None else set()))
    palette = sns.color_palette(PALETTE)  # beyond its colours, the next methods repeat them with other line styles
    styles = {m: (palette[i % len(palette)], ("-", "--", "-.", ":")[i // len(palette) % 4])
              for i, m in enumerate(methods)}
    for method, group in curves.groupby("method", sort=True):
        group = group.sort_values(x)
        color, line = styles[method]
        ax.plot(group[x], group["metric"], marker="o", ms=3, label=method, color=color, linestyle=line)
    for target in targets:
        ax.axvline(target, color="0.6", linestyle=":", linewidth=0.8, zorder=0)
    if points is not None:
        curved = set(curves["method"])
        for method, group in points.groupby("method", sort=True):
            ax.plot(group[x], group["metric"], marker="D", ms=6, linestyle="none", color=styles[method][0],
                    markeredgecolor="black", markeredgewidth=0.6,
                    label=None if method in curved else f"{method} (at the targets)")
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


def exit_accuracy(table: pd.DataFrame, *, ax=None, metric_name: str = "accuracy"):
    """Accuracy of every exit of each multi-exit model (a line per model over its layers, a band of one seed sd
    where `accuracy_sd` is given) and of the complete k-layer models (diamonds at their depth); columns model,
    layer, accuracy (`per_layer_accuracy`)."""
    ax = _axes(ax, figsize=(8, 4.5))
    palette = sns.color_palette(PALETTE)
    complete = table["model"].map(lambda m: bool(try_parse_model(m)) and try_parse_model(m).is_complete)
    for i, (model, group) in enumerate(table[~complete].groupby("model", sort=True)):
        group = group.sort_values("layer")
        color = palette[i % len(palette)]
        ax.plot(group["layer"], group["accuracy"], marker="o", ms=3, color=color, label=model,
                linestyle=("-", "--")[i // len(palette) % 2])
        if "accuracy_sd" in group and group["accuracy_sd"].notna().any():
            ax.fill_between(group["layer"], group["accuracy"] - group["accuracy_sd"],
                            group["accuracy"] + group["accuracy_sd"], color=color, alpha=0.12, linewidth=0)
    shown = table[complete].sort_values("layer")
    if len(shown):
        ax.plot(shown["layer"], shown["accuracy"], marker="D", ms=7, linestyle="none", color="black",
                label="complete kL models")
    ax.set_xlabel("exit layer")
    ax.set_ylabel(f"{metric_name} of the exit (%)")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))
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


def save_figure(ax_or_fig, path_stem: str | Path, *, config: dict[str, Any] | None = None,
                data: pd.DataFrame | None = None) -> list[Path]:
    """Write `<stem>.png`, `<stem>.pdf`, `<stem>.json` (the settings that made the figure) and, given `data`,
    `<stem>.csv`: the numbers drawn, beside the picture."""
    fig = ax_or_fig.figure if hasattr(ax_or_fig, "figure") and not isinstance(ax_or_fig, plt.Figure) else ax_or_fig
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    paths = []
    for suffix in (".png", ".pdf"):
        tmp = stem.with_name(f".{stem.name}.tmp{suffix}")
        fig.savefig(tmp, dpi=150, bbox_inches="tight")  # legends outside the axes stay in the picture
        tmp.replace(stem.with_suffix(suffix))
        paths.append(stem.with_suffix(suffix))
    if data is not None:
        paths.append(atomic_write_text(stem.with_suffix(".csv"), data.to_csv(index=False)))
    paths.append(write_json(stem.with_suffix(".json"), {"figure": stem.name, "config": config or {},
                                                        "environment": environment()}))
    plt.close(fig)
    return paths


# ----------------------------------------------------------------------------- a run's figures


def write_figures(run: str | Path, out: str | Path) -> list[Path]:
    """Regenerate every figure of a run folder from its stored tables and config (no model runs)."""
    run, out = Path(run), Path(out)
    if not (run / "config.json").is_file():
        raise FileNotFoundError(f"{run}: no finished run here (no config.json); run `python -m workbench reproduce "
                                f"--out {run}` first")
    config = read_json(run / "config.json")
    tables = load_tables(run)
    use_style()
    written, metric = [], config["task"].get("metric", "accuracy")
    settings = {"run": str(run), "task": config["task"]["name"]}
    if len(tables.get("early_exit", ())):
        x = "speedup_flops" if config.get("speedup_unit") == "flops" else "speedup_layers"  # the targets' unit
        first = run_cascades(config)[0].pair if "full_layers" in config else None  # the executor's cascade
        targets = (config.get("run") or {}).get("targets") or []
        curves, points = speed_accuracy_curves(tables, x=x), target_points(tables, x=x)
        references = speed_accuracy_references(tables, x=x, pair=first)
        ax = speed_accuracy(curves, x=x, metric_name=metric, references=references, points=points, targets=targets)
        drawn = pd.concat([curves.assign(kind="curve"), *([] if points is None else [points.assign(kind="target")]),
                           *([] if references is None else [references.assign(kind="reference")])],
                          ignore_index=True)
        if targets:  # beyond twice the highest target only the small members alone remain: leave them out of view
            ax.set_xlim(0.8, max(ax.get_xlim()[0], 2 * max(targets)) + 0.2)
        ax.set_title(f"{config['task']['name']}: speed vs {metric} (test split, mean over seeds)")
        written += save_figure(ax, out / "speed_accuracy", config=settings, data=drawn)
    if len(tables.get("sufficiency", ())):
        ax = sufficiency_bars(tables["sufficiency"])
        ax.set_title("instances DeeBERT exits at layer k")
        written += save_figure(ax, out / "sufficiency", config=settings, data=tables["sufficiency"])
    if "dis" in tables:
        ax = dis_heatmap(tables["dis"])
        ax.set_title("Difficulty Inversion Score (test split; 50 = chance)")
        written += save_figure(ax, out / "dis_heatmap", config=settings, data=tables["dis"])
    if "dis" in tables and "accuracy" in tables["dis"]:
        per_exit = per_layer_accuracy(tables["dis"])
        if len(per_exit):
            ax = exit_accuracy(per_exit, metric_name="accuracy")
            ax.set_title("each exit alone (test split, mean over seeds; band: one seed sd)")
            written += save_figure(ax, out / "exit_accuracy", config=settings, data=per_exit)
    bins = tables.get("reliability")
    if bins is not None and not bins.empty:
        panels = list(dict.fromkeys(bins["model"]))
        written += save_figure(reliability_grid(bins, num_labels=config["task"].get("num_labels")),
                               out / "reliability", config={**settings, "panels": panels}, data=bins)
    for stem in set(RUN_FIGURES) - {p.stem for p in written}:  # an earlier configuration's figure
        for suffix in (".png", ".pdf", ".json", ".csv"):
            (out / stem).with_suffix(suffix).unlink(missing_ok=True)
    return written


def speed_accuracy_curves(tables: dict[str, pd.DataFrame], *, x: str = "speedup_layers") -> pd.DataFrame:
    """The curves of the speed-accuracy figure (method, speed-up `x`, metric), averaged over seeds: each
    baseline's own exit rule over its grid, the two-member cascades over a threshold grid, the complete models.
    `x` is speedup_layers or speedup_flops; a part without that column is left out."""
    sweeps = tables["early_exit"]
    own_rule = sweeps["method"].map(lambda m: EXIT_POLICIES[m][0] if m in EXIT_POLICIES else None)
    own = sweeps[sweeps["policy"] == own_rule]  # each model's own exit rule (entropy for DeeBERT, patience for PABEE)
    parts = [own.groupby(["method", "param"])[[x, "metric"]].mean().reset_index()]
    cs = tables.get("cascade_sweeps")
    if cs is not None and x in cs:
        key = [c for c in cs.columns if c.startswith("threshold")]
        parts.append(cs.groupby(["method", *key], dropna=False)[[x, "metric"]].mean().reset_index())
    static = tables["complete_models"]
    if x in static:
        parts.append(static.assign(method=COMPLETE_CURVE)[["method", x, "metric"]])
    return pd.concat(parts, ignore_index=True)[["method", x, "metric"]].dropna(subset=[x])


def target_points(tables: dict[str, pd.DataFrame], *, x: str = "speedup_layers") -> pd.DataFrame | None:
    """The main table's operating points at its targets (method, `x`, metric) for the speed-accuracy figure:
    DeeBERT, PABEE and every cascade (three members too) on their own rules; signal methods, static models
    and the references are left out."""
    main = tables.get("main")
    if main is None or x not in main:
        return None
    keep = main["method"].map(lambda m: exit_rules(m) is not None or claims_cascade(m))
    rows = main[keep & (main["verdict"] != "unreachable")]
    return rows[["method", x, "metric"]].dropna(subset=[x]) if len(rows) else None


def speed_accuracy_references(tables: dict[str, pd.DataFrame], *, x: str = "speedup_layers",
                               pair: str | None = None) -> pd.DataFrame | None:
    """The reference lines of the speed-accuracy figure: oracle exit, random exit, and the random and oracle
    escalation of the two-member cascade `pair` (e.g. 'small-1L>12L'; default the first in the main table),
    averaged over seeds, against speed-up `x`."""
    refs, main = tables.get("exit_references"), tables.get("main")
    parts = []
    if refs is not None and x in refs:  # oracle exit: one point per seed, averaged; random exit: a line on a grid
        parts.append(refs.groupby(["method", refs[x].round(6)])["metric"].mean().reset_index())
        oracle = refs[refs["method"] == EXIT_REFERENCES[0]]
        if len(oracle):
            parts[-1] = pd.concat([parts[-1][parts[-1]["method"] != EXIT_REFERENCES[0]],
                                   oracle[[x, "metric"]].mean().to_frame().T.assign(method=EXIT_REFERENCES[0])])
    if main is not None and x in main:
        kinds = main["method"].map(parse_reference)
        lines = main[kinds.map(lambda k: k is not None and k[0] in ("random", "oracle"))]
        if len(lines):
            pairs = set(kinds[lines.index].map(lambda k: k[1]))
            first = pair if pair in pairs else parse_reference(lines["method"].iloc[0])[1]
            parts.append(lines[kinds[lines.index].map(lambda k: k[1] == first)][["method", x, "metric"]])
    return pd.concat(parts, ignore_index=True).dropna(subset=[x]) if parts else None


def reliability_grid(bins: pd.DataFrame, *, models: Sequence[str] | None = None, columns: int = 3,
                     num_labels: int | None = None):
    """Reliability diagrams on a grid, one panel per model exit of a per-bin table (`tables.reliability_bins`:
    columns model, layer and those of `calibration.reliability_table`); `models` picks and orders the panels;
    with `num_labels` the confidence axis starts at 1 / num_labels. Each panel's title gives its ECE and its
    bars their counts. Returns the Figure."""
    panels = [m for m in (models or dict.fromkeys(bins["model"])) if (bins["model"] == m).any()]
    if not panels:
        raise ValueError(f"no reliability bins for {list(models or [])}; the table has {sorted(set(bins['model']))}")
    cols = min(columns, len(panels))
    rows = -(-len(panels) // cols)
    use_style()
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 5.2 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    x_min = 1.0 / num_labels if num_labels else 0.0
    for ax, model in zip(axes.flat, panels):
        table = bins[bins["model"] == model].drop(columns=["model", "layer"])
        label = display_name(model, int(bins.loc[bins["model"] == model, "layer"].iloc[0]))
        reliability_diagram(table, ax=ax, label=label, x_min=x_min)
        ax.set_title(f"{label}: ECE {table_ece(table):.1f}\n(test, seeds pooled)", fontsize="medium")
    return fig


# ----------------------------------------------------------------------------- the explorer's figure


def explorer_figure(state: OperatingPoint, curve: pd.DataFrame, *, fig=None, num_labels: int | None = None):
    """Three views of one operating point: the method's speed-accuracy curve with the point marked, the
    share of examples answered at each exit, and the reliability diagram of the answers (with their ECE; its
    confidence axis from 1 / `num_labels`, default from the labels seen). Draws on `fig` (a new matplotlib
    Figure, not registered with pyplot, when None) and returns it."""
    from matplotlib.figure import Figure

    use_style()
    fig = fig if fig is not None else Figure(figsize=(15, 4.2), layout="constrained")
    ax_curve, ax_exits, ax_reliability = fig.subplots(1, 3)
    speed_accuracy(curve[["method", "speedup_layers", "metric"]], ax=ax_curve, metric_name=state.metric_name)
    ax_curve.plot([state.speedup_layers], [state.metric], marker="X", ms=13, color="crimson", linestyle="none",
                  label=f"operating point: {state.rule_text()}")
    ax_curve.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    ax_curve.set_title(f"{state.metric_name} {state.metric:.1f} at {state.speedup_layers:.2f}x")
    exit_histogram(state.exit_shares, ax=ax_exits)
    ax_exits.set_xticks(state.exit_shares.index.astype(int))
    if len(state.members) > 1:
        ax_exits.set_xlabel("depth of the answering member (layers)")
    ax_exits.set_title(f"{100 * state.examples['early'].mean():.0f}% exit early, "
                       f"{len(state.wrong_early_exits)} of them wrong")
    table = reliability_table(state.examples["confidence"].to_numpy(), state.examples["correct"].to_numpy())
    classes = num_labels or int(max(state.labels.max(), state.pred.max())) + 1
    reliability_diagram(table, ax=ax_reliability, label="answers", x_min=1.0 / max(2, classes))
    ax_reliability.set_title(f"calibration of the answers: ECE {state.ece:.1f}")
    fig.suptitle(f"{state.method} ({state.split} split, seed {state.seed})")
    return fig


def figure_png(fig, *, dpi: int = 72) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
