"""One-line answers to each notebook's question, computed from a run's tables (never written by hand).

Each function takes an opened run (`workbench.runs.folder.Run`) and returns one sentence with the numbers
that answer the question, or says which table is missing and why.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.names import complete_depths, complete_name, display_name, is_reference, parse_cascade

_VERDICT = {"better": "more accurate than", "worse": "less accurate than",
            "indistinguishable": "indistinguishable from"}


def _table(run, name: str) -> pd.DataFrame:
    table = run.tables.get(name)
    return table if table is not None else pd.DataFrame()


def _main_row(main: pd.DataFrame, method: str, target: float) -> pd.Series | None:
    rows = main[(main["method"] == method) & np.isclose(main["target_speedup"], target)]
    return rows.iloc[0] if len(rows) and pd.notna(rows.iloc[0]["metric"]) else None


def _speedup(row: pd.Series) -> float:
    """The realised speed-up in the unit the row's target was reached in."""
    return row["speedup_flops"] if row.get("speedup_unit") == "flops" else row["speedup_layers"]


def _cell(row: pd.Series | None) -> str:
    return "unreachable" if row is None else f"{row['metric']:.2f} ({_speedup(row):.2f}x)"


def paper_sign(run) -> str:
    """Does the paper's sign hold (a cascade more accurate than DeeBERT at the same speed-up)? At each target,
    how many of the run's cascades (with or without the regularizer) are significantly better or worse than
    DeeBERT, and the most accurate one, from the main table. That one is picked on the test split, so its
    interval is optimistic: read the counts first."""
    main = _table(run, "main")
    if main.empty:
        return "No main table: this run was made with --complete-only, so no method was compared."
    unit = main["speedup_unit"].dropna().iloc[0] if "speedup_unit" in main and main["speedup_unit"].notna().any() \
        else "layers"
    cascades = main[main["method"].map(lambda m: parse_cascade(m) is not None) & main["metric"].notna()]
    parts = []
    for target in sorted(main["target_speedup"].dropna().unique()):
        base = _main_row(main, "deebert", target)
        rows = cascades[np.isclose(cascades["target_speedup"], target)]
        if base is None or rows.empty:
            parts.append(f"{target:g}x: {'no cascade' if rows.empty else 'DeeBERT'} reached it")
            continue
        better, worse = int((rows["verdict"] == "better").sum()), int((rows["verdict"] == "worse").sum())
        best = rows.sort_values("metric", ascending=False).iloc[0]
        parts.append(f"{target:g}x: {better} of {len(rows)} cascades better, {worse} worse; best {best['method']} "
                     f"{_cell(best)} vs DeeBERT {_cell(base)}, {best['metric'] - base['metric']:+.2f} "
                     f"[{best['ci_low']:.2f}, {best['ci_high']:.2f}]")
    return (f"Cascades against DeeBERT, targets in {unit} ({run.metric}, test split, paired 95% intervals; the best "
            "cascade is picked on test, so its interval is optimistic): " + "; ".join(parts) + ".")


def cascade_vs_deebert(run) -> str:
    """Does the first cascade beat DeeBERT at each target (the paper's claim)? From the main table."""
    main = _table(run, "main")
    if main.empty:
        return "No main table: this run was made with --complete-only, so no method was compared."
    cascade, targets = run.cascade_labels()[0], sorted(main["target_speedup"].dropna().unique())
    parts = []
    for target in targets:
        ours, base = _main_row(main, cascade, target), _main_row(main, "deebert", target)
        verdict = ours["verdict"] if ours is not None and isinstance(ours["verdict"], str) and ours["verdict"] else "-"
        parts.append(f"{target:g}x: {_cell(ours)} vs {_cell(base)}, {verdict}")
    return f"{cascade} against DeeBERT ({run.metric}, test split, paired 95% interval): " + "; ".join(parts) + "."


def best_at_highest_target(run) -> str:
    """Which method is most accurate at the highest target speed-up? From the main table."""
    main = _table(run, "main")
    if main.empty:
        return "No main table: this run was made with --complete-only, so no method was compared."
    target = float(main["target_speedup"].max())
    real = main[np.isclose(main["target_speedup"], target) & main["metric"].notna() & ~main["method"].map(is_reference)]
    if real.empty:
        return f"No method reached {target:g}x on this run."
    best = real.sort_values("metric", ascending=False).iloc[0]
    return (f"At {target:g}x the most accurate method is {best['method']}: {run.metric} {best['metric']:.2f} at "
            f"{_speedup(best):.2f}x (mean over {int(best['seeds'])} seed(s)).")


def shallow_representations(run) -> str:
    """Are shallow representations enough? The complete model against DeeBERT's off-ramp at the shallowest layer."""
    table = _table(run, "sufficiency")
    if table.empty:
        return "No layer had enough inputs exiting there to compare (see the sufficiency table's `n`)."
    row = table.sort_values("layer").iloc[0]
    k = int(row["layer"])
    return (f"On the {int(row['n'])} (input, seed) pairs DeeBERT lets out at layer {k}, the complete {k}-layer model "
            f"is {_VERDICT.get(row['verdict'], row['verdict'])} DeeBERT's off-ramp: {row['acc_complete']:.2f} vs "
            f"{row['acc_internal']:.2f}% (difference {row['diff']:+.2f} points, 95% interval "
            f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]).")


def exit_reliability(run) -> str:
    """Which exit signal ranks inputs by difficulty best at the shallowest exit? DIS from the dis table."""
    dis = _table(run, "dis")
    if dis.empty:
        return "No DIS table in this run."
    k = int(dis["layer"].min())
    rows = dis[dis["layer"] == k].sort_values("dis", ascending=False)
    scores = ", ".join(f"{display_name(m, k)} {d:.1f}" for m, d in zip(rows["model"], rows["dis"]))
    return f"DIS at layer {k} (50 = chance, 100 = perfect ranking): {scores}; highest: {rows.iloc[0]['model']}."


def calibration(run) -> str:
    """Does the difficulty-aware regularizer make the smallest member's confidence better calibrated?"""
    table = _table(run, "calibration")
    if table.empty:
        return "No calibration table in this run."
    depths = complete_depths(table["model"])
    if not depths:
        return "No complete model in the calibration table."
    k = depths[0]
    plain, regularized = complete_name(k), complete_name(k, regularized=True)
    rows = table.set_index("model")
    if plain not in rows.index:
        return f"No {plain} in the calibration table."
    text = f"ECE of {plain} (0-100, test split): {rows.loc[plain, 'ece']:.2f}"
    if regularized in rows.index:
        text += (f"; with the regularizer {rows.loc[regularized, 'ece']:.2f}; after temperature scaling "
                 f"{rows.loc[plain, 'ece_temperature']:.2f} and {rows.loc[regularized, 'ece_temperature']:.2f}")
    return text + "."


def explorer(data, *, target: float = 3.0) -> str:
    """The run's methods at one target (parameters chosen on tune), from an `ExplorerData`: metric, speed-up
    and how many early exits were confidently wrong."""
    parts = []
    for method in data.methods:
        rule = data.method(method).rules[0]
        point = data.state(method, rule, data.operating_param(method, rule, target))
        speedup = point.speedup_flops if data.study.unit == "flops" else point.speedup_layers
        parts.append(f"{method} {point.metric:.1f} at {speedup:.2f}x "
                     f"({len(point.wrong_early_exits)} wrong early exits)")
    return f"At a {target:g}x target ({data.split} split, seed {data.seed}): " + "; ".join(parts) + "."
