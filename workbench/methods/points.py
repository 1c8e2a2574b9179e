"""Operating points: this method, at this setting, gave these answers at this cost.

An :class:`OperatingPoint` is one method (an early-exit model with an exit rule, a cascade with its
thresholds, or a static complete model) at one parameter setting, on one split and seed: every example's
answer, confidence, exit and cost in layers and FLOPs. The main table, the executor check and the explorer
all consume it; everything it reports (metric, speed-ups, ECE, exit shares) is derived from its arrays.

Builders, all pure functions of the outputs table:

- :func:`exit_point`, :func:`cascade_point`: a setting given by hand;
- :func:`tuned_exit_point`, :func:`tuned_cascade_point`: the setting chosen on the tune split for a target
  speed-up (the paper's protocol), applied to the test split; None when the target is unreachable;
- :func:`static_point`: the costliest complete model that reaches a target.

The hybrid's points (a small complete model, then DeeBERT) are built in `workbench.methods.hybrid`.

Targets are speed-ups in the study's unit (`Study.unit`): 'layers' (the paper's L / mean layers executed) or
'flops' (mean FLOPs of the full model / mean FLOPs spent, every evaluated off-ramp head included), which
prices members of different widths fairly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.measures.calibration import ece
from workbench.measures.cost import EncoderShape, complete_flops, exit_flops, layer_flops
from workbench.measures.metrics import task_metric
from workbench.methods.cascade import CascadeOutputs, route, thresholds_for_speedup
from workbench.methods.exits import ExitOutputs, apply_policy, choose_for_speedup
from workbench.names import (EXIT_POLICIES, complete_name, exit_rules, is_small_member, static_label,
                             try_parse_model)

EXAMPLE_COLUMNS = ("example_id", "text", "label", "pred", "exit_layer", "layers_executed", "confidence", "correct",
                   "early")


@dataclass(frozen=True)
class Study:
    """What pricing and scoring answers needs besides the outputs: the task's metric, the backbones' sizes and
    the unit of the target speed-ups."""
    task: str
    metric: str            # 'accuracy' | 'f1' | 'mcc'
    full_layers: int       # L of the full backbone
    shape: EncoderShape    # sizes for FLOPs
    num_labels: int
    unit: str = "layers"   # targets in 'layers' or 'flops'
    small_shape: EncoderShape | None = None  # sizes of the separate small backbone ('small-<k>L' members)

    def __post_init__(self):
        if self.unit not in ("layers", "flops"):
            raise ValueError(f"speed-up unit must be 'layers' or 'flops', got {self.unit!r}")

    def shape_of(self, model: str) -> EncoderShape:
        """The encoder sizes of a model of the outputs table: the small backbone's for 'small-<k>L'."""
        if is_small_member(model):
            if self.small_shape is None:
                raise ValueError(f"{model!r} is a member of the small backbone, whose sizes this study lacks")
            return self.small_shape
        return self.shape


@dataclass(frozen=True, kw_only=True, eq=False)
class OperatingPoint:
    """One method at one setting on one split and seed: what it answered for each example, and the cost."""
    method: str                     # label, e.g. 'deebert', 'cascade 1L>6L', 'static 6L'
    members: tuple[str, ...]        # models of the outputs table it reads, smallest first
    policy: str                     # 'entropy' | 'maxprob' | 'patience' | 'static'
    values: tuple[float, ...]       # the setting exactly: a threshold or patience; a cascade: one per non-final member
    setting: str                    # the setting as text, e.g. 'entropy=0.3' or 'tau=0.9100,0.9500'
    target: float | None            # speed-up the setting was chosen for on tune; None when given by hand
    split: str
    seed: int
    metric_name: str                # 'accuracy' | 'f1' | 'mcc'
    full_layers: int                # L, for speed-ups in layers
    exits: tuple[int, ...]          # where an example can stop: exit layers, or member depths
    example_ids: np.ndarray         # [n]
    labels: np.ndarray              # [n]
    pred: np.ndarray                # [n] the answer
    confidence: np.ndarray          # [n] max softmax probability of the answer
    exit_index: np.ndarray          # [n] index into `exits` of where each example stopped
    layers_executed: np.ndarray     # [n] transformer layers run (a cascade pays every member it passed)
    flops: np.ndarray | None        # [n] FLOPs spent; None without token counts or member sizes
    full_flops: np.ndarray | None   # [n] FLOPs of the full model on the same examples
    texts: pd.Series | None = None  # texts by example_id, for the example table

    @property
    def n(self) -> int:
        return len(self.pred)

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.labels

    @property
    def param(self) -> float:
        """The first value of the setting (the threshold, the patience, or a cascade's first threshold)."""
        return float(self.values[0]) if self.values else float("nan")

    @property
    def thresholds(self) -> tuple[float, ...]:
        """A cascade's thresholds, one per non-final member; () for the other methods."""
        return tuple(self.values) if len(self.members) > 1 else ()

    @property
    def metric(self) -> float:
        """Task metric of the answers (0-100)."""
        return task_metric(self.metric_name, self.labels, self.pred)

    @property
    def mean_layers(self) -> float:
        return float(np.mean(self.layers_executed))

    @property
    def speedup_layers(self) -> float:
        """full_layers / mean layers executed, the paper's speed-up."""
        return self.full_layers / self.mean_layers

    @property
    def speedup_flops(self) -> float:
        """mean full-model FLOPs / mean FLOPs spent; NaN when the cost in FLOPs is unknown."""
        if self.flops is None or self.full_flops is None:
            return float("nan")
        return float(np.mean(self.full_flops) / np.mean(self.flops))

    @property
    def ece(self) -> float:
        """Top-label ECE (0-100, 10 equal-width bins) of the answering confidences."""
        return ece(self.confidence, self.correct)

    @property
    def exit_layer(self) -> np.ndarray:
        """[n] the exit layer, or the depth of the answering member."""
        return np.asarray(self.exits)[self.exit_index]

    @property
    def early(self) -> np.ndarray:
        """[n] True where the example stopped before the last exit or member."""
        return self.exit_index < len(self.exits) - 1

    @property
    def exit_shares(self) -> pd.Series:
        """Share of examples answered at each exit (index: exit layer or member depth); sums to 1."""
        shares = np.bincount(self.exit_index, minlength=len(self.exits)) / self.n
        return pd.Series(shares, index=pd.Index(np.asarray(self.exits, dtype=int), name="exit_layer"), name="share")

    @property
    def examples(self) -> pd.DataFrame:
        """One row per example, columns EXAMPLE_COLUMNS."""
        text = (self.texts.reindex(self.example_ids).fillna("").to_numpy() if self.texts is not None
                else np.full(self.n, ""))
        return pd.DataFrame({"example_id": self.example_ids, "text": text, "label": self.labels, "pred": self.pred,
                             "exit_layer": self.exit_layer, "layers_executed": self.layers_executed,
                             "confidence": self.confidence, "correct": self.correct, "early": self.early},
                            columns=list(EXAMPLE_COLUMNS))

    @property
    def wrong_early_exits(self) -> pd.DataFrame:
        """Examples answered before the last exit (or member) and answered wrongly, most confident first."""
        rows = self.examples
        rows = rows[rows["early"] & ~rows["correct"]]
        return rows.sort_values("confidence", ascending=False, kind="stable")

    def rule_text(self) -> str:
        """The exit rule in words, e.g. 'entropy < 0.52'."""
        if self.policy == "patience":
            return f"patience {self.param:g}"
        if self.policy == "static":
            return self.setting
        if "+" in self.policy:  # a hybrid: the small model's max prob, then the exit model's rule
            first, then = self.policy.split("+")
            sign = "<" if then == "entropy" else ">"
            return f"max prob > {self.values[0]:.4g}, then {then} {sign} {self.values[1]:.4g}"
        sign = "<" if self.policy == "entropy" else ">"
        values = ",".join(f"{t:.4g}" for t in self.values)
        return f"{'max prob' if self.policy == 'maxprob' else self.policy} {sign} {values}"

    def summary(self) -> str:
        """One line: the operating point, its cost and its calibration."""
        early = int(self.early.sum())
        wrong = len(self.wrong_early_exits)
        flops = "" if np.isnan(self.speedup_flops) else f", {self.speedup_flops:.2f}x in FLOPs"
        return (f"{self.method}, {self.rule_text()}: {self.metric_name} {self.metric:.1f} at "
                f"{self.speedup_layers:.2f}x speed-up ({self.mean_layers:.2f} layers per example{flops}); "
                f"ECE {self.ece:.1f}; {early} of {self.n} examples exit early, {wrong} of them wrong "
                f"({self.split} split, seed {self.seed})")


# ----------------------------------------------------------------------------- costs


def token_counts(outputs: pd.DataFrame, model: str, split: str, seed: int, ids: np.ndarray) -> np.ndarray | None:
    """Token counts [n] of the examples `ids` as `model` tokenized them (None without a tokens column)."""
    if "tokens" not in outputs.columns:
        return None
    rows = outputs[(outputs["model"] == model) & (outputs["split"] == split) & (outputs["seed"] == seed)]
    return rows.drop_duplicates("example_id").set_index("example_id").loc[ids, "tokens"].to_numpy()


def exit_costs(study: Study, tokens: np.ndarray | None, num_exits: int):
    """Cumulative FLOPs of each exit [n, m] and of the full model [n]; (None, None) without tokens."""
    if tokens is None:
        return None, None
    return (exit_flops(study.shape, tokens, study.num_labels, num_exits),
            complete_flops(study.shape, study.full_layers, tokens, study.num_labels))


def member_costs(outputs: pd.DataFrame, study: Study, members, depths, split: str, seed: int,
                 ids: np.ndarray) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """FLOPs per example [n, k] of each complete member (each counting its own tokenizer's tokens, at its own
    width) and of the full model [n]; (None, None) without token counts."""
    tokens = [token_counts(outputs, member, split, seed, ids) for member in members]
    if any(t is None for t in tokens) or (study.small_shape is None and any(map(is_small_member, members))):
        return None, None  # no token counts, or a small member whose sizes are unknown
    return member_flops(study, members, depths, tokens)


def member_flops(study: Study, members, depths, tokens) -> tuple[np.ndarray, np.ndarray]:
    """FLOPs per example [n, k] of each complete member, given each member's token counts (its own tokenizer's),
    and of the full model [n] on the last member's."""
    flops = np.stack([complete_flops(study.shape_of(m), int(d), t, study.num_labels)
                      for m, d, t in zip(members, depths, tokens)], 1)
    return flops, complete_flops(study.shape, study.full_layers, tokens[-1], study.num_labels)


def need_costs(cost, what: str):
    """`cost`, or a clear error when targets in FLOPs cannot be priced."""
    if cost is None:
        raise ValueError(f"{what}: targets in FLOPs need the outputs' token counts (a 'tokens' column) and the sizes "
                         "of every member's backbone (the small backbone's for 'small-' members)")
    return cost


# ----------------------------------------------------------------------------- builders


def exit_point(outputs: pd.DataFrame, view: ExitOutputs, *, study: Study, model: str, policy: str, param: float,
               split: str, seed: int, target: float | None = None, texts: pd.Series | None = None) -> OperatingPoint:
    """An early-exit model at one setting of its exit rule, on the examples of `view`."""
    decision = apply_policy(view, policy, param)
    flops, full = exit_costs(study, token_counts(outputs, model, split, seed, view.example_ids), view.num_exits)
    return OperatingPoint(
        method=model, members=(model,), policy=policy, values=(float(param),), setting=f"{policy}={param:.4g}",
        target=target, split=split, seed=seed, metric_name=study.metric, full_layers=study.full_layers,
        exits=tuple(int(layer) for layer in view.layers), example_ids=view.example_ids, labels=view.labels,
        pred=decision.pred, confidence=decision.confidence, exit_index=decision.exit_index,
        layers_executed=decision.layers_executed,
        flops=None if flops is None else flops[np.arange(view.n), decision.exit_index], full_flops=full, texts=texts)


def cascade_point(outputs: pd.DataFrame, view: CascadeOutputs, *, study: Study, label: str, thresholds,
                  split: str, seed: int, target: float | None = None,
                  texts: pd.Series | None = None) -> OperatingPoint:
    """A cascade at one tuple of thresholds (one per non-final member), on the examples of `view`; each member is
    priced at its own width (`Study.shape_of`)."""
    thresholds = tuple(float(t) for t in thresholds)
    routing = route(view, thresholds)
    member_flops, full = member_costs(outputs, study, view.members, view.depths, split, seed, view.example_ids)
    cost = None if member_flops is None else np.cumsum(member_flops, axis=1)[np.arange(view.n), routing.member_index]
    return OperatingPoint(
        method=label, members=tuple(view.members), policy="maxprob", values=thresholds,
        setting="tau=" + ",".join(f"{t:.4f}" for t in thresholds), target=target, split=split, seed=seed,
        metric_name=study.metric, full_layers=study.full_layers, exits=tuple(int(d) for d in view.depths),
        example_ids=view.example_ids, labels=view.labels, pred=routing.pred, confidence=routing.confidence,
        exit_index=routing.member_index, layers_executed=routing.layers_executed, flops=cost, full_flops=full,
        texts=texts)


def tuned_exit_point(outputs: pd.DataFrame, study: Study, model: str, target: float, seed: int, *,
                     policy: str | None = None, tune: str = "tune", test: str = "test") -> OperatingPoint | None:
    """The model's exit-rule parameter chosen on `tune` for `target` (speed-up in the study's unit), applied on
    `test`; None if unreachable. The rule defaults to the model's own (entropy for DeeBERT, patience for PABEE)."""
    rules = exit_rules(model)
    if rules is None:
        raise ValueError(f"{model!r} is not an early-exit model; expected one of {sorted(EXIT_POLICIES)}")
    policy = policy or rules[0]
    tuned = ExitOutputs.from_outputs(outputs, model=model, split=tune, seed=seed)
    grid = np.arange(study.full_layers) if policy == "patience" else None
    flops = full = None
    if study.unit == "flops":
        flops, full = exit_costs(study, token_counts(outputs, model, tune, seed, tuned.example_ids), tuned.num_exits)
        need_costs(flops, model)
    param = choose_for_speedup(tuned, policy, target, full_layers=study.full_layers, grid=grid, by=study.unit,
                               exit_flops=flops, full_flops=full)
    if param is None:
        return None
    view = ExitOutputs.from_outputs(outputs, model=model, split=test, seed=seed)
    return exit_point(outputs, view, study=study, model=model, policy=policy, param=param, split=test, seed=seed,
                      target=target)


def tuned_cascade_point(outputs: pd.DataFrame, study: Study, members: tuple[str, ...], target: float, seed: int, *,
                        label: str, tune: str = "tune", test: str = "test") -> OperatingPoint | None:
    """Thresholds chosen on `tune` for `target` (speed-up in the study's unit), routed on `test`; None if
    unreachable."""
    tuned = CascadeOutputs.from_outputs(outputs, members=members, split=tune, seed=seed)
    member_flops = full = None
    if study.unit == "flops":
        member_flops, full = member_costs(outputs, study, members, tuned.depths, tune, seed, tuned.example_ids)
        need_costs(member_flops, label)
    thresholds = thresholds_for_speedup(tuned, target, full_layers=study.full_layers, metric=study.metric,
                                        by=study.unit, member_flops=member_flops, full_flops=full)
    if thresholds is None:
        return None
    view = CascadeOutputs.from_outputs(outputs, members=members, split=test, seed=seed)
    return cascade_point(outputs, view, study=study, label=label, thresholds=thresholds, split=test, seed=seed,
                         target=target)


def complete_rows(outputs: pd.DataFrame, model: str, split: str, seed: int) -> pd.DataFrame:
    """One model's rows of one split and seed, by example_id (as text)."""
    rows = outputs[(outputs["model"] == model) & (outputs["split"] == split) & (outputs["seed"] == seed)]
    return rows.assign(example_id=rows["example_id"].astype(str)).sort_values("example_id")


def _full_tokens(outputs: pd.DataFrame, study: Study, rows: pd.DataFrame, split: str, seed: int) -> np.ndarray:
    """Token counts of the full model on the examples of `rows` (sorted by example_id), as the other methods
    price it; the rows' own counts when the full model is not in the table for these examples."""
    full_rows = complete_rows(outputs, complete_name(study.full_layers), split, seed)
    aligned = len(full_rows) and np.array_equal(full_rows["example_id"].to_numpy(), rows["example_id"].to_numpy())
    return full_rows["tokens"].to_numpy() if aligned else rows["tokens"].to_numpy()


def static_speedup(outputs: pd.DataFrame, study: Study, model: str, depth: int, split: str, seed: int, *,
                   encoder_only: bool = False) -> float:
    """Speed-up of a complete model in the study's unit on one split (NaN when it has no rows there): in FLOPs,
    the full model's mean FLOPs on its own tokens over this model's on its own; with `encoder_only`, without
    the one head each of them pays (so that complete-kL of the run's backbone is exactly L / k)."""
    if study.unit == "layers":
        return study.full_layers / depth
    rows = complete_rows(outputs, model, split, seed)
    if rows.empty:
        return float("nan")
    tokens = need_costs(rows["tokens"].to_numpy() if "tokens" in rows else None, model)
    full_tokens = _full_tokens(outputs, study, rows, split, seed)
    if encoder_only:
        return float(study.full_layers * np.mean(layer_flops(study.shape, full_tokens))
                     / (depth * np.mean(layer_flops(study.shape_of(model), tokens))))
    return float(np.mean(complete_flops(study.shape, study.full_layers, full_tokens, study.num_labels))
                 / np.mean(complete_flops(study.shape_of(model), depth, tokens, study.num_labels)))


def static_point(outputs: pd.DataFrame, study: Study, target: float, seed: int, *, split: str = "test",
                 tune: str = "tune") -> OperatingPoint | None:
    """The costliest trained complete model (of the run's backbone, or of its small backbone) whose speed-up
    reaches `target`, priced on `tune` (BERT-kL in the paper; in layers L/k). In FLOPs the encoders are compared
    (each model's one head aside, so that complete-kL reaches L / k exactly); the point reports its speed-up
    with the heads."""
    candidates = []
    for model in outputs["model"].unique():
        parsed = try_parse_model(model)
        if parsed is None or not parsed.is_complete or parsed.regularized:
            continue
        if parsed.family == "small" and study.small_shape is None:
            continue
        speedup = static_speedup(outputs, study, model, parsed.depth, tune, seed, encoder_only=True)
        if speedup >= target - 1e-9:
            candidates.append((speedup, parsed.family != "complete", parsed.depth, model))
    if not candidates:
        return None
    _, small, k, model = min(candidates)  # the lowest speed-up that reaches the target; the run's backbone first
    rows = complete_rows(outputs, model, split, seed)
    flops = full = None
    if "tokens" in rows:
        flops = complete_flops(study.shape_of(model), k, rows["tokens"].to_numpy(), study.num_labels)
        full = complete_flops(study.shape, study.full_layers, _full_tokens(outputs, study, rows, split, seed),
                              study.num_labels)
    return OperatingPoint(
        method=static_label(k, small=small), members=(model,), policy="static", values=(float(k),),
        setting=f"k={k}", target=target, split=split, seed=seed, metric_name=study.metric,
        full_layers=study.full_layers, exits=(k,), example_ids=rows["example_id"].to_numpy(),
        labels=rows["label"].to_numpy(), pred=rows["pred"].to_numpy(), confidence=rows["confidence"].to_numpy(),
        exit_index=np.zeros(len(rows), dtype=int), layers_executed=np.full(len(rows), k), flops=flops,
        full_flops=full)
