"""The study's tables for signal methods: each signal on DeeBERT and on every two-member cascade, against
both DeeBERT and the base method (`signal_comparison`); how well each signal ranks wrong answers
(`signal_auroc`); and thresholds with a Learn-then-Test guarantee (`risk_table`). All are pure functions of
the outputs table."""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.methods.points import OperatingPoint, Study
from workbench.methods.risk import Risk, violation_share
from workbench.methods.signal_points import risk_signal_point, signal_split, tuned_signal_points
from workbench.methods.signals import PER_STAGE, SIGNALS, score_splits, auroc_wrong
from workbench.measures.metrics import task_metric
from workbench.names import parse_signal_method
from workbench.study.tables import paired_difference


def signal_answers(outputs: pd.DataFrame, study: Study, bases: list[str], signals, targets,
                   seeds) -> list[OperatingPoint]:
    """Every base stopping on every signal, at every target and seed (unreachable targets left out)."""
    points = []
    for seed in seeds:
        for base in bases:
            for signal in signals:
                points += [p for p in tuned_signal_points(outputs, study, base, signal, targets, seed) if p]
    return points


def signal_comparison(answers: list[OperatingPoint], study: Study, *, baseline: str = "deebert") -> pd.DataFrame:
    """One row per signal method and target: its metric and speed-ups, and the paired 95% intervals of its
    difference to `baseline` and to its own base method (the same model or cascade on its own rule)."""
    by_key: dict[tuple[str, float], dict[int, OperatingPoint]] = {}
    for a in answers:
        by_key.setdefault((a.method, a.target), {})[a.seed] = a
    rows = []
    for (method, target), group in by_key.items():
        parsed = parse_signal_method(method)
        if parsed is None or parsed[2] is not None:
            continue
        base, signal, _ = parsed
        row = {"task": study.task, "method": method, "base": base, "signal": signal, "target_speedup": target,
               "speedup_unit": study.unit, "metric_name": study.metric,
               "metric": float(np.mean([a.metric for a in group.values()])),
               "speedup_layers": float(np.mean([a.speedup_layers for a in group.values()])),
               "speedup_flops": float(np.mean([a.speedup_flops for a in group.values()])), "seeds": len(group)}
        for name, other in (("deebert", baseline), ("base", base)):
            against = by_key.get((other, target), {})
            pairs = [(group[s], against[s]) for s in sorted(group) if s in against]
            if pairs and other != method:
                compared = paired_difference(pairs, study)
                row.update({f"vs_{name}": row["metric"] - float(np.mean([b.metric for _, b in pairs])),
                            f"vs_{name}_low": compared["ci_low"], f"vs_{name}_high": compared["ci_high"],
                            f"vs_{name}_verdict": compared["verdict"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(["target_speedup", "base", "signal"]).reset_index(drop=True) if rows else table


def signal_auroc(outputs: pd.DataFrame, study: Study, bases: list[str], signals, seeds) -> pd.DataFrame:
    """Per base, signal, seed and stage: the AUROC on test of the signal at telling a wrong answer at that stage
    from a right one (max-prob included as the reference), and the share of wrong answers there. A per-stage
    variant (ztw) scores as its signal (ensemble) does, so it has no rows of its own."""
    rows = []
    for seed in seeds:
        for base in bases:
            tuned, tested = (signal_split(outputs, study, base, split, seed) for split in ("tune", "test"))
            for signal in dict.fromkeys(("maxprob", *(s for s in signals if s not in PER_STAGE))):
                _, scored = score_splits(signal, tuned.stages, tested.stages, seed=seed)
                auc = auroc_wrong(scored, tested.stages.labels)
                wrong = (scored.pred != tested.stages.labels[:, None]).mean(0)
                rows += [{"base": base, "signal": signal, "seed": seed, "stage": stage, "auroc": float(a),
                          "wrong_share": float(w)} for stage, a, w in zip(tested.exits, auc, wrong)]
    return pd.DataFrame(rows)


def risk_table(outputs: pd.DataFrame, study: Study, bases: list[str], signals, risk: Risk, seeds) -> pd.DataFrame:
    """Per base, signal (max-prob included; not ztw: the guarantee is for one threshold) and seed: the threshold
    Learn-then-Test accepted on tune for `risk`, and on test the realised accuracy drop against the full model
    (the last stage) with the speed-up it bought; `violated` where the drop exceeds delta. Unreachable choices
    are rows with verdict 'unreachable'."""
    rows = []
    for seed in seeds:
        for base in bases:
            tested = signal_split(outputs, study, base, "test", seed)
            full_accuracy = task_metric("accuracy", tested.stages.labels, tested.stages.probs[:, -1].argmax(-1))
            for signal in dict.fromkeys(("maxprob", *(s for s in signals if s not in PER_STAGE))):
                point, choice = risk_signal_point(outputs, study, base, signal, risk, seed)
                row = {"task": study.task, "base": base, "signal": signal, "seed": seed, "delta": risk.delta,
                       "eps": risk.eps, "full_accuracy": full_accuracy}
                if point is None:
                    rows.append({**row, "verdict": "unreachable"})
                    continue
                accuracy = task_metric("accuracy", point.labels, point.pred)
                rows.append({**row, "method": point.method, "threshold": choice.threshold,
                             "harm_rate_tune": 100 * choice.harm_rate, "p_value": choice.p_value,
                             "calibration_examples": choice.n, "accuracy": accuracy,
                             "drop": full_accuracy - accuracy, "speedup_layers": point.speedup_layers,
                             "speedup_flops": point.speedup_flops, "violated": full_accuracy - accuracy > risk.delta,
                             "verdict": "controlled"})
    return pd.DataFrame(rows)


def risk_violations(risk: pd.DataFrame, guarantee: Risk) -> pd.DataFrame:
    """The share of controlled thresholds whose realised drop on test exceeded delta, per signal and over all
    (bases, seeds): the guarantee says at most eps, up to sampling noise. One row per signal, then 'all'."""
    controlled = risk[risk["verdict"] == "controlled"] if len(risk) else risk
    rows = []
    for signal, group in [*controlled.groupby("signal", sort=False), ("all", controlled)]:
        rows.append({"signal": signal, "delta": guarantee.delta, "eps": guarantee.eps, "controlled": len(group),
                     "violations": int(group["violated"].sum()) if len(group) else 0,
                     "violation_share": violation_share(group["drop"].to_numpy(), guarantee) if len(group)
                     else float("nan"),
                     "largest_drop": float(group["drop"].max()) if len(group) else float("nan")})
    return pd.DataFrame(rows)


def check_signals(signals) -> tuple[str, ...]:
    """The signals asked for, each one known."""
    unknown = [s for s in signals if s not in SIGNALS]
    if unknown:
        raise ValueError(f"unknown signal(s) {unknown}; expected some of {', '.join(SIGNALS)}")
    return tuple(signals)
