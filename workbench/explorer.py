"""The exit explorer: move an exit threshold and see, from the stored outputs alone, what it does.

Three layers, each usable without the next:

- pure functions of the outputs table: :func:`explorer_state` (one operating point of an early-exit
  model or a cascade: metric, speed-up, where examples exit, ECE of the answers, every example with its
  text) and :func:`explorer_curve` (the same method over a grid of its parameter);
- :func:`explorer_figure` draws a state and its curve (speed-accuracy curve with the point marked, exit
  histogram, reliability diagram); :func:`static_explorer_figure` does it for a run folder;
- :func:`show_explorer` builds the ipywidgets UI over a run folder (:class:`ExplorerUI`): every change of
  method, exit rule or threshold recomputes from the stored outputs, no model runs.

Methods are early-exit models ('deebert', 'pabee', 'deebert-da', ...) with their exit rules (entropy or
max-prob for DeeBERT, patience or max-prob for PABEE), or cascades of complete models, named as in the
study's tables ('cascade 1L>6L', 'cascade+DA 1L>6L') or given as members, smallest first
(('complete-1L', 'complete-6L')), with one max-prob threshold for every non-final member.
"""
from __future__ import annotations

import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .calibration import ece, reliability_diagram, reliability_table
from .cascade import CascadeOutputs, evaluate_routing, route, sweep_cascade, thresholds_for_speedup
from .cost import EncoderShape, complete_flops, exit_flops
from .exits import ExitOutputs, apply_policy, choose_for_speedup, default_grid, evaluate_decision, sweep
from .pipeline import RunConfig, TaskOptions
from .plots import exit_histogram, speed_accuracy, use_style
from .report import EXIT_POLICIES, Study
from .study import cascade_label, load_run, member_names

CASCADE_RULES = ("maxprob",)
EXAMPLE_COLUMNS = ("example_id", "text", "label", "pred", "exit_layer", "layers_executed", "confidence", "correct",
                   "early")
_CASCADE = re.compile(r"^cascade(\+DA)? (\d+L(?:>\d+L)+)$")


# ----------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """What the explorer routes with: one early-exit model, or the members of a cascade."""
    label: str                 # e.g. 'deebert' or 'cascade 1L>6L'
    members: tuple[str, ...]   # model names in the outputs table; one for early exit, smallest first for cascades
    shapes: tuple[EncoderShape, ...] | None = None  # each member's sizes for FLOPs; None: the study's backbone

    @property
    def is_cascade(self) -> bool:
        return len(self.members) > 1

    @property
    def rules(self) -> tuple[str, ...]:
        """The exit rules this method can use, its own first."""
        if self.is_cascade:
            return CASCADE_RULES
        family = self.members[0].split("-")[0]  # the study's own exit rules, by model or by family
        rules = EXIT_POLICIES.get(self.members[0]) or EXIT_POLICIES.get(family)
        if rules is None:
            raise ValueError(f"{self.members[0]!r} is not an early-exit model; expected one of "
                             f"{sorted(EXIT_POLICIES)} (or a '-' variant of them), or a cascade")
        return rules


def resolve_method(method: str | Sequence[str] | Method) -> Method:
    """A method from its name: an early-exit model ('deebert'), a cascade label as in the study's tables
    ('cascade 1L>6L', 'cascade+DA 1L>2L>6L'), or a cascade's member names, smallest first.

    >>> resolve_method("cascade+DA 1L>6L").members
    ('complete-1L-da', 'complete-6L')
    >>> resolve_method(("complete-2L", "complete-6L")).label
    'cascade 2L>6L'
    """
    if isinstance(method, Method):
        return method
    if not isinstance(method, str):
        members = tuple(str(m) for m in method)
        if len(members) < 2:
            raise ValueError(f"a cascade needs at least two members, smallest first; got {list(members)}")
        for regularized in (False, True):
            depths = _depths_of(members)
            if depths and member_names(depths, regularized=regularized) == members:
                return Method(cascade_label(depths, regularized=regularized), members)
        return Method("cascade " + ">".join(members), members)
    found = _CASCADE.match(method)
    if found:
        depths = tuple(int(d[:-1]) for d in found.group(2).split(">"))
        return Method(method, member_names(depths, regularized=bool(found.group(1))))
    if method.startswith("cascade"):
        raise ValueError(f"cannot read the cascade {method!r}; write it as 'cascade 1L>6L' or 'cascade+DA 1L>6L', "
                         "or pass its members, e.g. ('complete-1L', 'complete-6L')")
    return Method(method, (method,))


def _depths_of(members: tuple[str, ...]) -> tuple[int, ...] | None:
    found = [re.match(r"^complete-(\d+)L(-da)?$", m) for m in members]
    return tuple(int(f.group(1)) for f in found) if all(found) else None


def run_methods(outputs: pd.DataFrame, config: dict) -> dict[str, Method]:
    """Every method a run folder can explore, by label: its early-exit models, then the cascades of its config
    (plain and with the difficulty-aware members) whose members are all in the outputs table. When the run's
    non-final members come from a separate small backbone ('small-<k>L'), they carry that backbone's sizes."""
    models = set(outputs["model"].unique())
    found = {m: Method(m, (m,)) for m in sorted(models) if m in EXIT_POLICIES or m.split("-")[0] in EXIT_POLICIES}
    cascades = config["run"].get("cascades")
    small = config["run"].get("small_backbone")
    run = RunConfig(cascades=tuple(tuple(c) for c in cascades) if cascades else None)
    for depths in run.cascade_depths(int(config["full_layers"])):
        for regularized in (False, True):
            members = member_names(depths, regularized=regularized, **({"small": True} if small else {}))
            if set(members) <= models:
                label = cascade_label(depths, regularized=regularized)
                found[label] = Method(label, members, _member_shapes(config, members) if small else None)
    return found


def available_methods(outputs: pd.DataFrame, config: dict) -> tuple[str, ...]:
    """Labels of :func:`run_methods`, early-exit models first."""
    return tuple(run_methods(outputs, config))


def _member_shapes(config: dict, members: tuple[str, ...]) -> tuple[EncoderShape, ...] | None:
    """Sizes of each member: the small backbone's for 'small-' members, the run's for the others; None (no
    FLOPs) if the small backbone's config cannot be read."""
    from .models import backbone_config
    try:
        small = EncoderShape.of_config(backbone_config(config["run"]["small_backbone"]))
    except (OSError, ValueError) as err:
        warnings.warn(f"sizes of the small backbone are not available ({err}); FLOPs speed-ups will be NaN")
        return None
    full = EncoderShape(**config["shape"])
    return tuple(small if m.startswith("small-") else full for m in members)


def study_of(config: dict) -> Study:
    """The `Study` context (task, metric, backbone size) of a run folder's config.json."""
    task = config["task"]
    return Study(task=task["name"], metric=task["metric"], full_layers=int(config["full_layers"]),
                 shape=EncoderShape(**config["shape"]), num_labels=int(task["num_labels"]))


# ----------------------------------------------------------------------------- the pure layer


@dataclass(frozen=True, eq=False)
class ExplorerState:
    """One method at one operating point on one split and seed: what it costs and what it answers."""
    method: str                    # label, e.g. 'deebert' or 'cascade 1L>6L'
    members: tuple[str, ...]       # the early-exit model, or the cascade's members smallest first
    policy: str                    # 'entropy' | 'maxprob' | 'patience'
    param: float                   # entropy / max-prob threshold or patience (cascade: the first threshold)
    thresholds: tuple[float, ...]  # cascade: one per non-final member; early exit: ()
    split: str
    seed: int
    metric_name: str               # 'accuracy' | 'f1' | 'mcc'
    metric: float                  # task metric of the answers (0-100)
    mean_layers: float             # transformer layers executed per example (a cascade pays every member run)
    speedup_layers: float          # full_layers / mean_layers, the paper's speed-up
    speedup_flops: float           # full-model FLOPs / FLOPs spent (NaN without token counts or member sizes)
    exit_shares: pd.Series         # share of examples answered at each exit layer (index: layer); sums to 1
    ece: float                     # top-label ECE (0-100, 10 equal-width bins) of the answering confidences
    examples: pd.DataFrame         # one row per example, columns EXAMPLE_COLUMNS

    @property
    def wrong_early_exits(self) -> pd.DataFrame:
        """Examples answered before the last exit (or member) and answered wrongly, most confident first."""
        rows = self.examples[self.examples["early"] & ~self.examples["correct"]]
        return rows.sort_values("confidence", ascending=False, kind="stable")

    def rule_text(self) -> str:
        """The exit rule in words, e.g. 'entropy < 0.52'."""
        if self.policy == "patience":
            return f"patience {self.param:g}"
        sign = "<" if self.policy == "entropy" else ">"
        values = ",".join(f"{t:.4g}" for t in self.thresholds) if self.thresholds else f"{self.param:.4g}"
        return f"{'max prob' if self.policy == 'maxprob' else self.policy} {sign} {values}"

    def summary(self) -> str:
        """One line: the operating point, its cost and its calibration."""
        early = int(self.examples["early"].sum())
        wrong = len(self.wrong_early_exits)
        flops = "" if np.isnan(self.speedup_flops) else f", {self.speedup_flops:.2f}x in FLOPs"
        return (f"{self.method}, {self.rule_text()}: {self.metric_name} {self.metric:.1f} at "
                f"{self.speedup_layers:.2f}x speed-up ({self.mean_layers:.2f} layers per example{flops}); "
                f"ECE {self.ece:.1f}; {early} of {len(self.examples)} examples exit early, {wrong} of them wrong "
                f"({self.split} split, seed {self.seed})")


def view_of(outputs: pd.DataFrame, method: str | Sequence[str], *, split: str = "test",
            seed: int = 0) -> ExitOutputs | CascadeOutputs:
    """The method's outputs on one split and seed as arrays: ExitOutputs (early exit) or CascadeOutputs."""
    m = resolve_method(method)
    if m.is_cascade:
        return CascadeOutputs.from_outputs(outputs, members=m.members, split=split, seed=seed)
    return ExitOutputs.from_outputs(outputs, model=m.members[0], split=split, seed=seed)


def _tokens(outputs: pd.DataFrame, model: str, split: str, seed: int, ids: np.ndarray) -> np.ndarray | None:
    """Token counts [n] of the examples `ids` (None when the table has no tokens column)."""
    if "tokens" not in outputs.columns:
        return None
    rows = outputs[(outputs["model"] == model) & (outputs["split"] == split) & (outputs["seed"] == seed)]
    rows = rows.assign(example_id=rows["example_id"].astype(str)).drop_duplicates("example_id")
    return rows.set_index("example_id").loc[ids, "tokens"].to_numpy(dtype=np.float64)


def _member_tokens(outputs: pd.DataFrame, method: Method, split: str, seed: int,
                   ids: np.ndarray) -> list[np.ndarray] | None:
    """Token counts [n] of each member (each tokenizer counts its own), None without a tokens column."""
    tokens = [_tokens(outputs, member, split, seed, ids) for member in method.members]
    return None if any(t is None for t in tokens) else tokens


def _costs(view, study: Study, method: Method,
           tokens: list[np.ndarray] | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """FLOPs per example of each exit ([n, m], cumulative) or member ([n, k]), and of the full model [n]; None
    without token counts, or for members of another backbone whose sizes are unknown."""
    if tokens is None or (method.shapes is None and any(m.startswith("small-") for m in method.members)):
        return None, None
    full = complete_flops(study.shape, study.full_layers, tokens[-1], study.num_labels)
    if isinstance(view, ExitOutputs):
        return exit_flops(study.shape, tokens[0], study.num_labels, view.num_exits), full
    shapes = method.shapes or (study.shape,) * view.num_members
    return np.stack([complete_flops(shape, int(d), t, study.num_labels)
                     for shape, d, t in zip(shapes, view.depths, tokens)], 1), full


def _thresholds(param, members: int) -> tuple[float, ...]:
    values = tuple(float(t) for t in np.atleast_1d(np.asarray(param, dtype=np.float64)))
    if len(values) == 1:
        return values * (members - 1)
    if len(values) != members - 1:
        raise ValueError(f"a cascade of {members} members needs 1 or {members - 1} threshold(s), got {list(values)}")
    return values


def state_from_view(view: ExitOutputs | CascadeOutputs, *, study: Study, method: Method, policy: str, param,
                    texts: pd.Series | None = None, tokens: list[np.ndarray] | None = None, split: str = "test",
                    seed: int = 0) -> ExplorerState:
    """The state of `method` at `param` from its arrays (see :func:`explorer_state`)."""
    if policy not in method.rules:
        raise ValueError(f"{method.label} exits by {' or '.join(method.rules)}, not {policy!r}")
    unit, full = _costs(view, study, method, tokens)
    if isinstance(view, ExitOutputs):
        decision = apply_policy(view, policy, float(param))
        result = evaluate_decision(view, decision, metric=study.metric, full_layers=study.full_layers,
                                   exit_flops=unit, full_flops=full)
        shares = [result[f"share_exit_{layer}"] for layer in view.layers]
        index, layers, thresholds = decision.exit_index, view.layers, ()
        exit_layer, executed = decision.exit_layer, decision.layers_executed
        pred, confidence = decision.pred, decision.confidence
    else:
        thresholds = _thresholds(param, view.num_members)
        routing = route(view, thresholds)
        result = evaluate_routing(view, routing, metric=study.metric, full_layers=study.full_layers,
                                  member_flops=unit, full_flops=full)
        shares = [result[f"share_member_{name}"] for name in view.members]
        index, layers = routing.member_index, view.depths
        exit_layer, executed = view.depths[routing.member_index], routing.layers_executed
        pred, confidence = routing.pred, routing.confidence
    correct = pred == view.labels
    text = texts.reindex(view.example_ids).fillna("").to_numpy() if texts is not None else np.full(view.n, "")
    examples = pd.DataFrame({"example_id": view.example_ids, "text": text, "label": view.labels, "pred": pred,
                             "exit_layer": exit_layer, "layers_executed": executed, "confidence": confidence,
                             "correct": correct, "early": index < len(layers) - 1}, columns=list(EXAMPLE_COLUMNS))
    return ExplorerState(
        method=method.label, members=method.members, policy=policy,
        param=float(thresholds[0]) if thresholds else float(param), thresholds=thresholds, split=split, seed=seed,
        metric_name=study.metric, metric=float(result["metric"]), mean_layers=float(result["mean_layers"]),
        speedup_layers=float(result["speedup_layers"]), speedup_flops=float(result["speedup_flops"]),
        exit_shares=pd.Series(shares, index=pd.Index(layers.astype(int), name="exit_layer"), name="share"),
        ece=ece(confidence, correct), examples=examples)


def explorer_state(outputs: pd.DataFrame, texts: pd.Series | None = None, *, study: Study,
                   method: str | Sequence[str], policy: str, param, split: str = "test",
                   seed: int = 0) -> ExplorerState:
    """One operating point of an early-exit model or a cascade, from the outputs table alone.

    `method`: an early-exit model ('deebert', 'pabee', ...) or a cascade ('cascade 1L>6L', or its members,
    smallest first); `policy`: one of the method's exit rules ('entropy', 'maxprob', 'patience'; cascades
    'maxprob'); `param`: the threshold or patience (a cascade: one threshold for every non-final member, or
    one per non-final member); `texts`: the examples' texts indexed by example_id (see :func:`run_texts`).
    Metric, speed-ups and exit shares are exactly those of `exits.evaluate_decision` or
    `cascade.evaluate_routing`.
    """
    m = resolve_method(method)
    view = view_of(outputs, m, split=split, seed=seed)
    tokens = _member_tokens(outputs, m, split, seed, view.example_ids)
    return state_from_view(view, study=study, method=m, policy=policy, param=param, texts=texts, tokens=tokens,
                           split=split, seed=seed)


def parameter_grid(view: ExitOutputs | CascadeOutputs, policy: str) -> np.ndarray:
    """Parameter values spanning every behaviour of `policy` on these outputs, full model to first exit:
    `exits.default_grid` for early exit; for a cascade 0, the quantiles (every 2.5%) of the non-final members'
    confidences, 0.9, 0.99, ..., 1 - 1e-6 and 1."""
    if isinstance(view, ExitOutputs):
        return default_grid(policy, view)
    if policy not in CASCADE_RULES:
        raise ValueError(f"a cascade exits by {' or '.join(CASCADE_RULES)}, not {policy!r}")
    quantiles = np.quantile(view.confidence[:, :-1], np.linspace(0, 1, 41))
    return np.unique(np.concatenate([[0.0], quantiles, 1.0 - 10.0 ** -np.arange(1, 7), [1.0]]))


def curve_from_view(view: ExitOutputs | CascadeOutputs, *, study: Study, method: Method, policy: str,
                    grid=None) -> pd.DataFrame:
    """The method over its parameter grid: columns method, policy, param, metric, mean_layers, speedup_layers."""
    grid = parameter_grid(view, policy) if grid is None else np.asarray(grid, dtype=np.float64)
    if isinstance(view, ExitOutputs):
        table = sweep(view, policy, grid, metric=study.metric, full_layers=study.full_layers)
    else:
        table = sweep_cascade(view, [(t,) * (view.num_members - 1) for t in grid], metric=study.metric,
                              full_layers=study.full_layers)
        table = table.assign(policy=policy, param=table[f"threshold_{view.members[0]}"])
    return table.assign(method=method.label)[["method", "policy", "param", "metric", "mean_layers",
                                              "speedup_layers"]]


def explorer_curve(outputs: pd.DataFrame, *, study: Study, method: str | Sequence[str], policy: str,
                   split: str = "test", seed: int = 0, grid=None) -> pd.DataFrame:
    """Speed-accuracy curve of one method and exit rule over `grid` (default :func:`parameter_grid`)."""
    m = resolve_method(method)
    return curve_from_view(view_of(outputs, m, split=split, seed=seed), study=study, method=m, policy=policy,
                           grid=grid)


def operating_param(outputs: pd.DataFrame, *, study: Study, method: str | Sequence[str], policy: str,
                    target: float = 3.0, seed: int = 0, tune: str = "tune", split: str = "test") -> float:
    """The parameter the study would use for `target` speed-up: chosen on the `tune` split as in the main
    table (early exit: `exits.choose_for_speedup`; two-member cascade: `cascade.thresholds_for_speedup`).
    When that is not possible (no tune rows, target unreachable, more than two members), the grid value
    whose speed-up on `split` is closest to `target`."""
    m = resolve_method(method)
    tuned = None
    if (outputs["split"] == tune).any():
        tuned = view_of(outputs, m, split=tune, seed=seed)
    if isinstance(tuned, ExitOutputs):
        grid = np.arange(tuned.num_exits, dtype=np.float64) if policy == "patience" else None
        chosen = choose_for_speedup(tuned, policy, target, full_layers=study.full_layers, grid=grid)
        if chosen is not None:
            return float(chosen)
    elif isinstance(tuned, CascadeOutputs) and tuned.num_members == 2:
        chosen = thresholds_for_speedup(tuned, target, full_layers=study.full_layers, metric=study.metric)
        if chosen is not None:
            return float(chosen[0])
    curve = explorer_curve(outputs, study=study, method=m, policy=policy, split=split, seed=seed)
    return float(curve["param"].iloc[int(np.argmin(np.abs(curve["speedup_layers"].to_numpy() - target)))])


# ----------------------------------------------------------------------------- texts of a run


def _origin(run_dir: Path, out: str) -> Path | None:
    """The folder `reproduce` ran in, when the run's recorded `out` is relative and ends its path."""
    out_parts = Path(out).parts
    parts = run_dir.resolve().parts
    if Path(out).is_absolute() or not out_parts or parts[-len(out_parts):] != out_parts:
        return None
    return Path(*parts[:-len(out_parts)])


def run_task_options(run_dir: str | Path, config: dict) -> TaskOptions:
    """The run's TaskOptions with relative data paths made absolute: against the folder the run was made
    in, else the first of the current folder and the run folder's parents where the path exists."""
    run_dir = Path(run_dir)
    options = dict(config["run"]["task"])
    bases = [b for b in (_origin(run_dir, config["run"].get("out", "")), Path.cwd(), *run_dir.resolve().parents)
             if b is not None]
    for key in ("glue_dir", "data_dir", "train_file", "tune_file", "test_file"):
        value = options.get(key)
        if value and not Path(value).is_absolute():
            options[key] = str(next((b / value for b in bases if (b / value).exists()), bases[0] / value))
    return TaskOptions(**options)


def task_texts(splits: dict[str, pd.DataFrame] | pd.DataFrame) -> pd.Series:
    """Text of every example indexed by example_id: text_a, or 'text_a || text_b' for pair tasks."""
    frame = pd.concat(list(splits.values())) if isinstance(splits, dict) else splits
    text = frame["text_a"].astype(str)
    if "text_b" in frame and frame["text_b"].notna().any():
        text = text + frame["text_b"].map(lambda b: "" if b is None or pd.isna(b) else f" || {b}")
    return pd.Series(text.to_numpy(), index=pd.Index(frame["example_id"].astype(str), name="example_id"), name="text")


def run_texts(run_dir: str | Path, config: dict) -> pd.Series:
    """Texts of the run's task (loaded as the run loaded it, see :func:`run_task_options`), by example_id."""
    return task_texts(run_task_options(run_dir, config).load().splits)


# ----------------------------------------------------------------------------- a run folder, cached


@dataclass(eq=False)
class ExplorerData:
    """A run folder's outputs, texts and study context, with each method's arrays and curves cached so that
    moving a threshold only routes stored numbers."""
    outputs: pd.DataFrame
    config: dict
    study: Study
    catalog: dict[str, Method]     # the run's methods by label (see run_methods)
    run_dir: Path | None = None
    split: str = "test"
    seed: int = 0
    _texts: pd.Series | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_run(cls, run_dir: str | Path, *, split: str = "test", seed: int | None = None) -> ExplorerData:
        outputs, config = load_run(run_dir)
        seeds = sorted(int(s) for s in outputs["seed"].unique())
        seed = seeds[0] if seed is None else seed
        if seed not in seeds:
            raise ValueError(f"{run_dir} has seeds {seeds}, not {seed}")
        catalog = run_methods(outputs, config)
        if not catalog:
            raise ValueError(f"{run_dir} holds no early-exit model or cascade (was it run with --complete-only?); "
                             f"its models are {sorted(outputs['model'].unique())}")
        return cls(outputs, config, study_of(config), catalog, Path(run_dir), split, seed)

    @property
    def methods(self) -> tuple[str, ...]:
        """Labels of the run's methods, early-exit models first."""
        return tuple(self.catalog)

    def method(self, method: str | Sequence[str] | Method) -> Method:
        """A label of this run (its members as the run named them), else :func:`resolve_method`."""
        return self.catalog[method] if isinstance(method, str) and method in self.catalog else resolve_method(method)

    @property
    def texts(self) -> pd.Series | None:
        """Texts by example_id, loaded once from the run's task; None (with a warning) if it cannot be loaded."""
        if self._texts is None and self.run_dir is not None and "texts" not in self._cache:
            try:
                self._texts = run_texts(self.run_dir, self.config)
            except (OSError, ValueError) as err:
                warnings.warn(f"texts of {self.run_dir} are not available ({err}); the example table shows ids only")
            self._cache["texts"] = True
        return self._texts

    def _view(self, method: Method):
        key = ("view", method.members)
        if key not in self._cache:
            view = view_of(self.outputs, method, split=self.split, seed=self.seed)
            self._cache[key] = (view, _member_tokens(self.outputs, method, self.split, self.seed,
                                                     view.example_ids))
        return self._cache[key]

    def grid(self, method: str | Sequence[str], policy: str) -> np.ndarray:
        """The parameter grid of :func:`parameter_grid` for this method and rule."""
        return parameter_grid(self._view(self.method(method))[0], policy)

    def curve(self, method: str | Sequence[str], policy: str) -> pd.DataFrame:
        """:func:`explorer_curve` of this run's split and seed (cached)."""
        m = self.method(method)
        key = ("curve", m.members, policy)
        if key not in self._cache:
            self._cache[key] = curve_from_view(self._view(m)[0], study=self.study, method=m, policy=policy)
        return self._cache[key]

    def curves(self, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
        """Curves of several (method, rule) pairs in one table, for `plots.speed_accuracy`."""
        return pd.concat([self.curve(method, policy) for method, policy in pairs], ignore_index=True)

    def state(self, method: str | Sequence[str], policy: str, param) -> ExplorerState:
        """:func:`explorer_state` of this run's split and seed."""
        m = self.method(method)
        view, tokens = self._view(m)
        return state_from_view(view, study=self.study, method=m, policy=policy, param=param, texts=self.texts,
                               tokens=tokens, split=self.split, seed=self.seed)

    def operating_param(self, method: str | Sequence[str], policy: str, target: float = 3.0) -> float:
        """:func:`operating_param` (chosen on tune for `target`) for this run's seed (cached)."""
        m = self.method(method)
        key = ("param", m.members, policy, target)
        if key not in self._cache:
            self._cache[key] = operating_param(self.outputs, study=self.study, method=m, policy=policy,
                                               target=target, seed=self.seed, split=self.split)
        return self._cache[key]


def load_explorer_data(run_dir: str | Path, *, split: str = "test", seed: int | None = None) -> ExplorerData:
    """A run folder ready to explore (texts are loaded on first use)."""
    return ExplorerData.from_run(run_dir, split=split, seed=seed)


# ----------------------------------------------------------------------------- figures


def explorer_figure(state: ExplorerState, curve: pd.DataFrame, *, fig=None):
    """Three views of one operating point: the method's speed-accuracy curve with the point marked, the
    share of examples answered at each exit, and the reliability diagram of the answers (with their ECE).
    Draws on `fig` (a new matplotlib Figure, not registered with pyplot, when None) and returns it."""
    from matplotlib.figure import Figure

    use_style()
    fig = fig if fig is not None else Figure(figsize=(15, 4.2), layout="constrained")
    ax_curve, ax_exits, ax_reliability = fig.subplots(1, 3)
    speed_accuracy(curve[["method", "speedup_layers", "metric"]], ax=ax_curve, metric_name=state.metric_name)
    ax_curve.plot([state.speedup_layers], [state.metric], marker="X", ms=13, color="crimson", linestyle="none",
                  label=f"operating point: {state.rule_text()}")
    ax_curve.legend(fontsize="small", loc="best")
    ax_curve.set_title(f"{state.metric_name} {state.metric:.1f} at {state.speedup_layers:.2f}x")
    exit_histogram(state.exit_shares, ax=ax_exits)
    ax_exits.set_xticks(state.exit_shares.index.astype(int))
    if len(state.members) > 1:
        ax_exits.set_xlabel("depth of the answering member (layers)")
    ax_exits.set_title(f"{100 * state.examples['early'].mean():.0f}% exit early, "
                       f"{len(state.wrong_early_exits)} of them wrong")
    table = reliability_table(state.examples["confidence"].to_numpy(), state.examples["correct"].to_numpy())
    reliability_diagram(table, ax=ax_reliability, label="answers")
    ax_reliability.set_title(f"calibration of the answers: ECE {state.ece:.1f}")
    fig.suptitle(f"{state.method} ({state.split} split, seed {state.seed})")
    return fig


def static_explorer_figure(run: str | Path | ExplorerData, *, method: str | Sequence[str] = "deebert",
                           policy: str | None = None, param=None, target: float = 3.0, split: str = "test",
                           seed: int | None = None):
    """:func:`explorer_figure` of a run folder at one parameter value, for reading without a kernel.

    `policy` defaults to the method's own rule; `param` to the value the study chooses on the tune split for
    `target` speed-up (:func:`operating_param`). The figure is made with pyplot, so a notebook shows it
    (end the cell with `;` to show it once); returns the Figure."""
    import matplotlib.pyplot as plt

    data = run if isinstance(run, ExplorerData) else load_explorer_data(run, split=split, seed=seed)
    policy = policy or data.method(method).rules[0]
    param = data.operating_param(method, policy, target) if param is None else param
    fig = plt.figure(figsize=(15, 4.2), layout="constrained")
    return explorer_figure(data.state(method, policy, param), data.curve(method, policy), fig=fig)


def figure_png(fig, *, dpi: int = 72) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the widget UI


def _label(policy: str, value: float) -> str:
    return f"{value:.0f}" if policy == "patience" else f"{value:.6g}"


class ExplorerUI:
    """The interactive explorer over one run folder: dropdowns for method and exit rule, a slider over the
    rule's parameter grid, a checkbox for only the wrong early exits; the summary line, the figure of
    :func:`explorer_figure` and the example table update on every change. `state` is the current
    :class:`ExplorerState`; `widget` is what to display."""

    def __init__(self, data: ExplorerData, *, method: str | None = None, policy: str | None = None,
                 target: float = 3.0, rows: int = 15):
        import ipywidgets as widgets

        self.data, self.target, self.rows = data, target, rows
        method = method or data.methods[0]
        self.method = widgets.Dropdown(options=list(data.methods), value=method, description="method")
        self.policy = widgets.Dropdown(options=list(data.method(method).rules), description="exit rule")
        self.param = widgets.SelectionSlider(options=[("0", 0.0)], description="threshold", continuous_update=False,
                                             layout=widgets.Layout(width="520px"))
        self.only_wrong = widgets.Checkbox(value=False, description="only wrong early exits")
        self.summary = widgets.HTML()
        self.figure = widgets.Image(format="png")
        self.table = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox([self.method, self.policy]),
                                    widgets.HBox([self.param, self.only_wrong]),
                                    self.summary, self.figure, self.table])
        self.state: ExplorerState | None = None
        self._quiet = True
        self._set_rules(policy)
        self._quiet = False
        self._refresh()
        self.method.observe(self._on_method, names="value")
        self.policy.observe(self._on_policy, names="value")
        self.param.observe(self._on_param, names="value")
        self.only_wrong.observe(lambda _: self._show_table(), names="value")

    def __repr__(self) -> str:
        return f"ExplorerUI({self.state.summary() if self.state else 'empty'})"

    # choices -------------------------------------------------------------------------------------
    def _set_rules(self, policy: str | None = None) -> None:
        rules = list(self.data.method(self.method.value).rules)
        self.policy.options = rules
        self.policy.value = policy if policy in rules else rules[0]
        self._set_grid()

    def _set_grid(self) -> None:
        method, policy = self.method.value, self.policy.value
        chosen = self.data.operating_param(method, policy, self.target)
        grid = np.unique(np.append(self.data.grid(method, policy), chosen))
        options = list({_label(policy, v): float(v) for v in grid[::-1]}.items())[::-1]  # labels unique
        self.param.options = options
        self.param.description = "patience" if policy == "patience" else "threshold"
        self.param.value = min((v for _, v in options), key=lambda v: abs(v - chosen))

    # events --------------------------------------------------------------------------------------
    def _on_method(self, _) -> None:
        self._quiet = True
        try:
            self._set_rules()
        finally:
            self._quiet = False
        self._refresh()

    def _on_policy(self, _) -> None:
        if self._quiet:
            return
        self._quiet = True
        try:
            self._set_grid()
        finally:
            self._quiet = False
        self._refresh()

    def _on_param(self, _) -> None:
        if not self._quiet:
            self._refresh()

    # views ---------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        method, policy = self.method.value, self.policy.value
        self.state = self.data.state(method, policy, self.param.value)
        self.summary.value = f"<b>{self.state.summary()}</b>"
        self.figure.value = figure_png(explorer_figure(self.state, self.data.curve(method, policy)))
        self._show_table()

    def _show_table(self) -> None:
        if self.state is None:
            return
        rows = self.state.wrong_early_exits if self.only_wrong.value else self.state.examples
        shown = rows.head(self.rows).assign(text=lambda t: t["text"].str.slice(0, 200))
        caption = (f"{len(rows)} wrong early exits, most confident first" if self.only_wrong.value
                   else f"{len(rows)} examples") + f"; showing {len(shown)}"
        html = shown.to_html(index=False, float_format=lambda v: f"{v:.3f}", escape=True, border=0)
        self.table.value = f"<div style='font-size:small'><p>{caption}</p>{html}</div>"


def build_explorer(run: str | Path | ExplorerData, *, method: str | None = None, policy: str | None = None,
                   target: float = 3.0, rows: int = 15, split: str = "test", seed: int | None = None) -> ExplorerUI:
    """The explorer UI over a run folder, without displaying it (the slider starts at the parameter the
    study chooses on tune for `target` speed-up)."""
    data = run if isinstance(run, ExplorerData) else load_explorer_data(run, split=split, seed=seed)
    return ExplorerUI(data, method=method, policy=policy, target=target, rows=rows)


def show_explorer(run: str | Path | ExplorerData, **options) -> ExplorerUI:
    """Build the explorer UI (see :func:`build_explorer` for `options`), display it and return it; assign the
    result (`explorer = show_explorer(RUN_DIR)`) to read `explorer.state` later."""
    from IPython.display import display

    ui = build_explorer(run, **options)
    display(ui.widget)
    return ui
