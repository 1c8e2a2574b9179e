"""The study's tables, computed from the outputs table alone (no model runs).

Every function here is pure: the tidy outputs table (see `workbench.runs.outputs`) and a `Study`
context in, a tidy DataFrame out. `reproduce` stores the outputs once and calls these; notebooks
and `python -m workbench figures` call them again on a stored run.

Operating points follow the paper: each method's parameter (entropy threshold, patience, cascade
thresholds) is chosen on the tune split for a target speed-up and then applied to the test split,
where the realised speed-ups are reported next to the target.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from workbench.measures.analysis import (escalation_budget, escalation_references, gap_closed, oracle_cascade,
                                         oracle_ceiling, paired_bootstrap, paired_bootstrap_metric, random_escalation)
from workbench.measures.calibration import apply_temperature, ece, fit_temperature, reliability_table
from workbench.measures.metrics import task_metric
from workbench.methods.cascade import CascadeOutputs
from workbench.methods.exits import ExitOutputs, evaluate_decision, oracle_exit, random_exit_reference, sweep
from workbench.methods.points import (OperatingPoint, Study, exit_costs, member_costs, static_speedup, token_counts,
                                      tuned_exit_point)
from workbench.names import (EXIT_POLICIES, EXIT_REFERENCES, complete_depths, complete_name, is_reference,
                             method_rank, multi_exit_name, try_parse_model)


def seeds_of(outputs: pd.DataFrame, model: str) -> list[int]:
    return sorted(outputs.loc[outputs["model"] == model, "seed"].unique().tolist())


# ----------------------------------------------------------------------------- complete models


def summarize_depths(outputs: pd.DataFrame, *, metric: str, full_layers: int, split: str = "test",
                     study: Study | None = None) -> pd.DataFrame:
    """Task metric per complete model (mean and sd over seeds) with its layer speed-up L / k, and, given the
    `study` and token counts, its FLOPs speed-up (mean over seeds; a head makes it slightly below L / k)."""
    rows = []
    names = [complete_name(k) for k in complete_depths(outputs["model"].unique())]
    complete = outputs[(outputs["split"] == split) & outputs["model"].isin(names)]
    for (model, layer), group in complete.groupby(["model", "layer"], sort=False):
        per_seed = [task_metric(metric, g["label"], g["pred"]) for _, g in group.groupby("seed")]
        row = {"model": model, "layers": int(layer), "metric_name": metric, "metric": float(np.mean(per_seed)),
               "metric_sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
               "seeds": len(per_seed), "examples": int(group["example_id"].nunique()),
               "speedup_layers": full_layers / layer}
        if study is not None and "tokens" in group:
            flops = replace(study, unit="flops")
            row["speedup_flops"] = float(np.mean([static_speedup(outputs, flops, model, int(layer), split, seed)
                                                  for seed in sorted(group["seed"].unique())]))
        rows.append(row)
    return pd.DataFrame(rows).sort_values("layers").reset_index(drop=True)


def per_layer_accuracy(dis: pd.DataFrame, families=("probe", "deebert", "pabee", "fastbert", "berxit", "mutual",
                                                   "complete")) -> pd.DataFrame:
    """Accuracy of every exit of the plain (not regularized) models of `families`, one row per model and layer,
    from the DIS table (columns model, layer, accuracy; means over seeds; with their sd over seeds as
    accuracy_sd where the table has it)."""
    def keep(model: str) -> bool:
        parsed = try_parse_model(model)
        return parsed is not None and parsed.family in families and not parsed.regularized
    columns = ["model", "layer", "accuracy"] + (["accuracy_sd"] if "accuracy_sd" in dis else [])
    return dis[dis["model"].map(keep)][columns].reset_index(drop=True)


def reliability_bins(outputs: pd.DataFrame, *, split: str = "test") -> pd.DataFrame:
    """Per-bin reliability tables (10 equal-width bins, seeds pooled) of every exit of depth equal to the
    smallest complete model: that model with and without the regularizer, DeeBERT's and PABEE's exit."""
    test = outputs[outputs["split"] == split]
    depths = complete_depths(test["model"].unique())
    if not depths:
        return pd.DataFrame()
    k, parts = depths[0], []
    for model in (complete_name(k), complete_name(k, regularized=True), "deebert",
                  multi_exit_name("deebert", regularized=True), "pabee", "probe"):
        rows = test[(test["model"] == model) & (test["layer"] == k)]
        if len(rows):
            table = reliability_table(rows["confidence"].to_numpy(), rows["correct"].to_numpy())
            parts.append(table.assign(model=model, layer=k))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


# ----------------------------------------------------------------------------- early exit


def policy_grid(policy: str, study: Study) -> np.ndarray:
    """A fixed parameter grid per policy, the same for every seed so that curves can be averaged."""
    if policy == "entropy":
        return np.round(np.linspace(0.0, np.log(study.num_labels), 41), 6)
    if policy == "maxprob":
        return np.unique(np.concatenate([np.linspace(1 / study.num_labels, 1.0, 41), [0.99, 0.995, 0.999]]))
    if policy == "patience":
        return np.arange(study.full_layers)
    raise ValueError(f"unknown policy {policy!r}")


def early_exit_sweeps(outputs: pd.DataFrame, study: Study, *, split: str = "test") -> pd.DataFrame:
    """Metric and speed-ups of every exit policy of DeeBERT and PABEE over its grid, per seed."""
    frames = []
    for model, policies in EXIT_POLICIES.items():
        for seed in seeds_of(outputs, model):
            out = ExitOutputs.from_outputs(outputs, model=model, split=split, seed=seed)
            flops, full = exit_costs(study, token_counts(outputs, model, split, seed, out.example_ids), out.num_exits)
            for policy in policies:
                table = sweep(out, policy, policy_grid(policy, study), metric=study.metric,
                              full_layers=study.full_layers, exit_flops=flops, full_flops=full)
                frames.append(table.assign(method=model, seed=seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def exit_references(outputs: pd.DataFrame, study: Study, *, model: str = "deebert",
                    split: str = "test") -> pd.DataFrame:
    """Oracle exit (each example at its first correct exit) and the random-exit line, per seed, with their
    speed-ups in layers and FLOPs. A random exit at mean layers l costs, in expectation, l times the mean
    FLOPs of one layer and its off-ramp, since where an example stops does not depend on the example."""
    rows = []
    for seed in seeds_of(outputs, model):
        out = ExitOutputs.from_outputs(outputs, model=model, split=split, seed=seed)
        flops, full = exit_costs(study, token_counts(outputs, model, split, seed, out.example_ids), out.num_exits)
        oracle = evaluate_decision(out, oracle_exit(out), metric=study.metric, full_layers=study.full_layers,
                                   exit_flops=flops, full_flops=full)
        rows.append({"method": EXIT_REFERENCES[0], "seed": seed, "speedup_layers": oracle["speedup_layers"],
                     "speedup_flops": oracle["speedup_flops"], "metric": oracle["metric"]})
        per_layer = float(np.mean(flops[:, 0])) if flops is not None else float("nan")
        for mean_layers in np.linspace(out.layers[0], out.layers[-1], 21):
            rows.append({"method": EXIT_REFERENCES[1], "seed": seed, "speedup_layers": study.full_layers / mean_layers,
                         "speedup_flops": (float(np.mean(full)) / (mean_layers * per_layer) if flops is not None
                                           else float("nan")),
                         "metric": random_exit_reference(out, mean_layers, metric=study.metric)})
    return pd.DataFrame(rows)


def sufficiency_table(outputs: pd.DataFrame, study: Study, *, target: float = 3.0, min_count: int = 20,
                      split: str = "test") -> pd.DataFrame:
    """Are shallow representations enough? For the examples DeeBERT exits at layer k (its entropy threshold
    chosen on tune for `target`), accuracy of its layer-k off-ramp vs the complete k-layer model (and the
    probe of the pre-trained layer k) on exactly those examples, pooled over seeds; paired bootstrap 95%
    interval of complete - off-ramp. Layers with fewer than `min_count` examples, or without a trained
    complete model, are left out."""
    rows = []
    depths = complete_depths(outputs["model"].unique())
    per_layer: dict[int, list] = {}
    for seed in seeds_of(outputs, "deebert"):
        answers = tuned_exit_point(outputs, study, "deebert", target, seed)
        if answers is None:
            continue
        test = outputs[(outputs["split"] == split) & (outputs["seed"] == seed)].set_index("example_id")
        for k in depths:
            if k >= study.full_layers:
                continue
            chosen = answers.layers_executed == k
            ids = answers.example_ids[chosen]
            complete = test[test["model"] == complete_name(k)]
            if not len(ids) or complete.empty:
                continue
            probe = test[(test["model"] == "probe") & (test["layer"] == k)]
            per_layer.setdefault(k, []).append((answers.correct[chosen], complete.loc[ids, "correct"].to_numpy(),
                                                probe.loc[ids, "correct"].to_numpy() if len(probe) else None,
                                                answers.setting))
    for k, parts in sorted(per_layer.items()):
        internal = np.concatenate([p[0] for p in parts])
        complete = np.concatenate([p[1] for p in parts])
        if len(internal) < min_count:
            continue
        boot = paired_bootstrap(complete, internal)
        probes = [p[2] for p in parts if p[2] is not None]
        rows.append({"layer": k, "n": len(internal), "seeds": len(parts), "acc_internal": 100 * internal.mean(),
                     "acc_complete": 100 * complete.mean(),
                     "acc_probe": 100 * np.concatenate(probes).mean() if probes else np.nan,
                     "diff": boot.diff, "ci_low": boot.low, "ci_high": boot.high, "verdict": boot.verdict,
                     "target_speedup": target, "params": ";".join(p[3] for p in parts)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- cascades


def cascade_references(outputs: pd.DataFrame, study: Study, small: str, large: str, target: float, seed: int, *,
                       split: str = "test") -> dict:
    """Random escalation, budgeted oracle and ceiling for a small -> large cascade at `target` (in the study's
    unit), in the task's metric: exact expectations for accuracy, `analysis.escalation_references` for F1 and
    MCC. The escalation budget r is the share of examples the cascade may pass on and still reach the target
    on this split; the speed-ups it buys are returned in both units."""
    out = CascadeOutputs.from_outputs(outputs, members=(small, large), split=split, seed=seed)
    pred_small, pred_large = out.probs[:, 0].argmax(-1), out.probs[:, 1].argmax(-1)
    member_flops, full = member_costs(outputs, study, out.members, out.depths, split, seed, out.example_ids)
    d_small, d_large = int(out.depths[0]), int(out.depths[1])
    if study.unit == "flops":
        if member_flops is None:
            raise ValueError(f"{small}>{large}: a FLOPs budget needs the outputs' token counts")
        flops_small, flops_large = member_flops.mean(0)
        r = escalation_budget(target, flops_small, flops_large, float(np.mean(full)))
    else:
        r = escalation_budget(target, d_small, d_large, study.full_layers)
    speedups = {"speedup_layers": study.full_layers / (d_small + r * d_large),
                "speedup_flops": (float(np.mean(full) / (member_flops[:, 0].mean() + r * member_flops[:, 1].mean()))
                                  if member_flops is not None else float("nan"))}
    if study.metric != "accuracy":
        return {"budget": r, **speedups,
                **escalation_references(out.labels, pred_small, pred_large, r, seed=seed,
                                        metric_fn=lambda y, p: task_metric(study.metric, y, p))}
    a_small, a_large = pred_small == out.labels, pred_large == out.labels
    return {"budget": r, **speedups, "random": random_escalation(a_small, a_large, r),
            "oracle": oracle_cascade(a_small, a_large, r), "ceiling": oracle_ceiling(a_small, a_large)}


# ----------------------------------------------------------------------------- tables


def operating_points_table(answers: list[OperatingPoint], study: Study) -> pd.DataFrame:
    """The main table's operating points seed by seed: one row per method x target x seed, with the setting
    chosen on tune (the thresholds) and what it gave on test, so that per-seed values stand in rows of their own."""
    rows = [{"task": study.task, "method": a.method, "target_speedup": a.target, "speedup_unit": study.unit,
             "seed": a.seed, "setting": a.setting, "metric_name": study.metric, "metric": a.metric,
             "speedup_layers": a.speedup_layers, "speedup_flops": a.speedup_flops, "ece": a.ece} for a in answers]
    columns = ["task", "method", "target_speedup", "speedup_unit", "seed", "setting", "metric_name", "metric",
               "speedup_layers", "speedup_flops", "ece"]
    return pd.DataFrame(rows, columns=columns).sort_values(["method", "target_speedup", "seed"], ignore_index=True)


def summarize_answers(answers: list[OperatingPoint], study: Study, *, baseline: str = "deebert",
                      references: dict | None = None) -> pd.DataFrame:
    """The main table: one row per method x target (in `study.unit`), mean and sd over seeds, realised speed-ups
    in layers and FLOPs, ECE, and the paired bootstrap 95% interval of the difference to `baseline` at the
    same target, with a verdict. `references` maps (name, target) to one dict per seed with the reference's
    metric and the speed-ups its budget buys (speedup_layers, speedup_flops)."""
    by_key: dict[tuple[str, float], list[OperatingPoint]] = {}
    for a in answers:
        by_key.setdefault((a.method, a.target), []).append(a)
    rows = []
    for (method, target), group in by_key.items():
        group = sorted(group, key=lambda a: a.seed)
        metrics = [a.metric for a in group]
        row = {"task": study.task, "method": method, "target_speedup": target, "speedup_unit": study.unit,
               "thresholds": "; ".join(a.setting for a in group), "metric_name": study.metric,
               "metric": float(np.mean(metrics)),
               "metric_sd": float(np.std(metrics, ddof=1)) if len(metrics) > 1 else 0.0,
               "seeds": len(group), "ci_low": np.nan, "ci_high": np.nan, "verdict": "",
               "speedup_layers": float(np.mean([a.speedup_layers for a in group])),
               "speedup_flops": float(np.mean([a.speedup_flops for a in group])),  # NaN when a cost is unknown
               "ece": float(np.mean([a.ece for a in group]))}
        base = {a.seed: a for a in by_key.get((baseline, target), [])}
        pairs = [(a, base[a.seed]) for a in group if a.seed in base]
        if pairs and method != baseline:
            row.update(paired_difference(pairs, study))
        rows.append(row)
    table = pd.DataFrame(rows)
    if references:
        extra = []
        for (name, target), per_seed in references.items():
            values = [r["metric"] for r in per_seed]
            extra.append({"task": study.task, "method": name, "target_speedup": target, "speedup_unit": study.unit,
                          "thresholds": "", "metric_name": study.metric, "metric": float(np.mean(values)),
                          "metric_sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                          "seeds": len(values), "ci_low": np.nan, "ci_high": np.nan, "verdict": "",
                          "speedup_layers": float(np.mean([r["speedup_layers"] for r in per_seed])),
                          "speedup_flops": float(np.mean([r["speedup_flops"] for r in per_seed])), "ece": np.nan})
        table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    return table.sort_values(["target_speedup", "method"]).reset_index(drop=True)


def paired_difference(pairs: list[tuple[OperatingPoint, OperatingPoint]], study: Study) -> dict:
    """Paired bootstrap over test items of method - baseline; accuracy is first averaged over seeds per item."""
    for a, b in pairs:
        if not np.array_equal(a.example_ids, b.example_ids):
            raise ValueError(f"{a.method} and {b.method} answered different examples (seed {a.seed})")
    if study.metric == "accuracy":
        result = paired_bootstrap(np.mean([a.correct for a, _ in pairs], axis=0),
                                  np.mean([b.correct for _, b in pairs], axis=0))
    else:  # non-decomposable metrics: the seeds' answers side by side, resampled as items
        labels = np.concatenate([a.labels for a, _ in pairs])
        result = paired_bootstrap_metric(labels, np.concatenate([a.pred for a, _ in pairs]),
                                         np.concatenate([b.pred for _, b in pairs]),
                                         metric_fn=lambda y, p: task_metric(study.metric, y, p))
    return {"ci_low": result.low, "ci_high": result.high, "verdict": result.verdict}


def calibration_summary(outputs: pd.DataFrame, *, tune: str = "tune", test: str = "test",
                        models: tuple[str, ...] | None = None) -> pd.DataFrame:
    """ECE (10 equal-width bins) on `test` of every model exit and seed, before and after temperature scaling
    fitted on `tune`, with mean confidence and accuracy."""
    rows = []
    for (model, layer, seed), group in outputs.groupby(["model", "layer", "seed"]):
        if models is not None and model not in models:
            continue
        logit_cols = sorted((c for c in group.columns if c.startswith("logit_")), key=lambda c: int(c[6:]))
        fit_rows, test_rows = group[group["split"] == tune], group[group["split"] == test]
        if fit_rows.empty or test_rows.empty:
            continue
        temperature = fit_temperature(fit_rows[logit_cols].to_numpy(), fit_rows["label"].to_numpy())
        scaled = apply_temperature(test_rows[logit_cols].to_numpy(), temperature)
        correct = test_rows["correct"].to_numpy()
        rows.append({"model": model, "layer": int(layer), "seed": int(seed), "n": len(test_rows),
                     "accuracy": 100 * correct.mean(), "mean_confidence": test_rows["confidence"].mean(),
                     "ece": ece(test_rows["confidence"].to_numpy(), correct), "temperature": temperature,
                     "ece_temperature": ece(scaled.max(1), scaled.argmax(1) == test_rows["label"].to_numpy())})
    return pd.DataFrame(rows)


def mean_over_seeds(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Numeric columns averaged over seeds (with `<col>_sd`) per `keys`."""
    numeric = [c for c in table.columns if c not in keys + ["seed"] and pd.api.types.is_numeric_dtype(table[c])]
    grouped = table.groupby(keys)[numeric]
    means, sds = grouped.mean(), grouped.std(ddof=1).add_suffix("_sd")
    return means.join(sds).reset_index().assign(seeds=grouped.size().to_numpy())


def gap_closed_table(answers: list[OperatingPoint], references: pd.DataFrame, pairs: dict[str, str], *,
                     metric: str = "accuracy") -> pd.DataFrame:
    """Share of the random-to-oracle escalation gap that each two-member cascade closes, per target (mean
    and sd over seeds), in the task's `metric` (the column is named after it), like the reference lines.
    `references` has one row per (pair, target_speedup, seed) with columns random and oracle; `pairs` maps
    cascade method names to their pair, e.g. 'cascade+DA 1L>6L' -> '1L>6L'. A gap narrower than one test
    example (100/n points) has no share to close: nan, left out of the seed mean."""
    if references.empty:
        return pd.DataFrame()
    refs = references.set_index(["pair", "target_speedup", "seed"])
    rows = []
    for a in answers:
        key = (pairs.get(a.method), a.target, a.seed)
        if key[0] is None or key not in refs.index:
            continue
        value = 100 * float(np.mean(a.correct)) if metric == "accuracy" else task_metric(metric, a.labels, a.pred)
        rows.append({"method": a.method, "pair": key[0], "target_speedup": a.target, "seed": a.seed,
                     metric: value, "random_escalation": refs.loc[key, "random"],
                     "oracle_cascade": refs.loc[key, "oracle"],
                     "gap_closed": gap_closed(value, refs.loc[key, "random"], refs.loc[key, "oracle"],
                                              min_gap=100.0 / len(a.labels))})
    return mean_over_seeds(pd.DataFrame(rows), ["method", "pair", "target_speedup"]) if rows else pd.DataFrame()


def results_table(main: pd.DataFrame) -> pd.DataFrame:
    """The paper's results layout from main tables of one or more tasks: one row per (target, method), one
    column per task, each cell `metric ± sd (realised speed-up x)` followed by the verdict against DeeBERT
    when it is `better` or `worse`, or `unreachable`. Reference rows (random, oracle) are left out."""
    keep = ~main["method"].map(is_reference)
    rows = main[keep].copy()

    def cell(row) -> str:
        if row["verdict"] == "unreachable" or pd.isna(row["metric"]):
            return "unreachable"
        one_seed = pd.isna(row["metric_sd"]) or row.get("seeds", 2) < 2
        spread = "" if one_seed else f" ± {row['metric_sd']:.2f}"  # one seed has no sd
        speedup = row["speedup_flops"] if row.get("speedup_unit") == "flops" else row["speedup_layers"]
        text = f"{row['metric']:.2f}{spread} ({speedup:.2f}x)"
        return text + (f" {row['verdict']}" if row["verdict"] in ("better", "worse") else "")

    rows["cell"] = rows.apply(cell, axis=1)
    rows["rank"] = rows["method"].map(method_rank)
    known = rows.dropna(subset=["metric_name"])
    names = known.groupby("task")["metric_name"].first()
    units = (known.groupby("task")["speedup_unit"].first() if "speedup_unit" in known
             else pd.Series(dtype=object))  # a task whose targets were FLOPs says so in its column

    def column(task: str) -> str:
        if task not in names:
            return task
        return f"{task} ({names[task]}{', FLOPs targets' if units.get(task) == 'flops' else ''})"
    rows["column"] = rows["task"].map(column)
    table = rows.pivot_table(index=["target_speedup", "rank", "method"], columns="column", values="cell",
                             aggfunc="first", fill_value="").reset_index().rename_axis(columns=None)
    return table.drop(columns="rank")
