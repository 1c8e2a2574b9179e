"""What the explorer shows, without widgets: a run's methods, their curves and operating points.

Pure functions of the outputs table, usable without a browser:

- :func:`explorer_state`: one method at one setting as an `OperatingPoint` (metric, speed-ups, where
  examples exit, ECE of the answers, every example with its text);
- :func:`explorer_curve`: the same method over a grid of its parameter;
- :func:`operating_param`: the parameter the study chooses on tune for a target speed-up;
- :class:`ExplorerData`: a run folder with each method's arrays and curves cached, so that moving a
  threshold only routes stored numbers.

Methods are early-exit models ('deebert', 'pabee', 'deebert-da', ...) with their exit rules (entropy or
max-prob for DeeBERT, patience or max-prob for PABEE), or cascades of complete models, named as in the
study's tables ('cascade 1L>6L', 'cascade+DA 1L>6L') or given as members, smallest first
(('complete-1L', 'complete-6L')), with one max-prob threshold for every non-final member. Every method
can also stop on a signal of `methods.signals` (SIGNAL_RULES: agreement, averaged, ensemble, ztw, learned), one
threshold on its score (ztw: one per stage), exactly as the main table's '<method> with <signal>' rows.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.measures.cost import EncoderShape
from workbench.methods.cascade import CascadeOutputs, sweep_cascade
from workbench.methods.exits import ExitOutputs, default_grid, sweep
from workbench.methods.points import (OperatingPoint, Study, cascade_point, exit_point, tuned_cascade_point,
                                      tuned_exit_point)
from workbench.methods.risk import Risk
from workbench.methods.signal_points import point_at, risk_signal_point, signal_split, tuned_signal_points
from workbench.methods.signals import PER_STAGE, Scored, score_splits
from workbench.names import (CASCADE_POLICIES, EXIT_POLICIES, SIGNALS, claims_cascade, exit_rules, members_label,
                             parse_cascade)
from workbench.runs.folder import load_run, run_cascades, run_texts
from workbench.runs.outputs import prob_matrix

# max-prob is every method's own rule already. A per-stage rule (ztw) takes one threshold per stage at a target,
# or one for every stage when set by hand.
SIGNAL_RULES = tuple(s for s in SIGNALS if s != "maxprob")


# ----------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """What the explorer routes with: one early-exit model, or the members of a cascade."""
    label: str                 # e.g. 'deebert' or 'cascade 1L>6L'
    members: tuple[str, ...]   # model names in the outputs table; one for early exit, smallest first for cascades

    @property
    def is_cascade(self) -> bool:
        return len(self.members) > 1

    @property
    def rules(self) -> tuple[str, ...]:
        """The exit rules this method can use, its own first, then the signals."""
        if self.is_cascade:
            return CASCADE_POLICIES + SIGNAL_RULES
        rules = exit_rules(self.members[0])
        if rules is None:
            raise ValueError(f"{self.members[0]!r} is not an early-exit model; expected one of "
                             f"{sorted(EXIT_POLICIES)} (or a '-da' variant of them), or a cascade")
        return rules + SIGNAL_RULES


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
        return Method(members_label(members), members)
    cascade = parse_cascade(method)
    if cascade:
        return Method(method, cascade[0].members(regularized=cascade[1]))
    if claims_cascade(method):
        raise ValueError(f"cannot read the cascade {method!r}; write it as 'cascade 1L>6L' or 'cascade+DA 1L>6L', "
                         "or pass its members, e.g. ('complete-1L', 'complete-6L')")
    return Method(method, (method,))


def run_methods(outputs: pd.DataFrame, config: dict) -> dict[str, Method]:
    """Every method a run folder can explore, by label: its early-exit models, then the cascades of its config
    (plain and with the difficulty-aware members) whose members are all in the outputs table, those of a
    separate small backbone ('small-<k>L' members) first."""
    models = set(outputs["model"].unique())
    found = {m: Method(m, (m,)) for m in sorted(models) if exit_rules(m) is not None}
    for cascade in run_cascades(config):
        for regularized in (False, True):
            members = cascade.members(regularized=regularized)
            if set(members) <= models:
                found[cascade.label(regularized=regularized)] = Method(cascade.label(regularized=regularized), members)
    return found


def available_methods(outputs: pd.DataFrame, config: dict) -> tuple[str, ...]:
    """Labels of :func:`run_methods`, early-exit models first."""
    return tuple(run_methods(outputs, config))


def study_of(config: dict) -> Study:
    """The `Study` context (task, metric, backbone sizes, unit of the targets) of a run folder's config.json."""
    task = config["task"]
    small = config.get("small_shape")
    backbone = config["run"].get("small_backbone")
    if small is None and backbone and "small_shape" not in config:  # a folder written before sizes were stored
        from workbench.models.backbones import backbone_config
        try:
            small = dataclasses.asdict(EncoderShape.of_config(backbone_config(backbone)))
        except (OSError, ValueError) as err:
            warnings.warn(f"sizes of the small backbone {backbone!r} are not available ({err}); its members' FLOPs "
                          "are unknown")
    return Study(task=task["name"], metric=task["metric"], full_layers=int(config["full_layers"]),
                 shape=EncoderShape(**config["shape"]), num_labels=int(task["num_labels"]),
                 unit=config.get("speedup_unit", "layers"), small_shape=EncoderShape(**small) if small else None)


def view_of(outputs: pd.DataFrame, method: str | Sequence[str], *, split: str = "test",
            seed: int = 0) -> ExitOutputs | CascadeOutputs:
    """The method's outputs on one split and seed as arrays: ExitOutputs (early exit) or CascadeOutputs."""
    m = resolve_method(method)
    if m.is_cascade:
        return CascadeOutputs.from_outputs(outputs, members=m.members, split=split, seed=seed)
    return ExitOutputs.from_outputs(outputs, model=m.members[0], split=split, seed=seed)


def _thresholds(param, members: int) -> tuple[float, ...]:
    values = tuple(float(t) for t in np.atleast_1d(np.asarray(param, dtype=np.float64)))
    if len(values) == 1:
        return values * (members - 1)
    if len(values) != members - 1:
        raise ValueError(f"a cascade of {members} members needs 1 or {members - 1} threshold(s), got {list(values)}")
    return values


def signal_scores(outputs: pd.DataFrame, *, study: Study, method: Method, signal: str, split: str = "test",
                  seed: int = 0, tune: str = "tune") -> Scored:
    """`method`'s stages on `split` scored by `signal`, fitted on `tune` as in the main table (on tune itself,
    the cross-fitted scores)."""
    tuned = signal_split(outputs, study, method.label, tune, seed)
    shown = tuned if split == tune else signal_split(outputs, study, method.label, split, seed)
    scored_tune, scored_shown = score_splits(signal, tuned.stages, shown.stages, seed=seed)
    return scored_tune if split == tune else scored_shown


def point_from_view(outputs: pd.DataFrame, view: ExitOutputs | CascadeOutputs, *, study: Study, method: Method,
                    policy: str, param, texts: pd.Series | None = None, split: str = "test",
                    seed: int = 0, scored: Scored | None = None) -> OperatingPoint:
    """The operating point of `method` at `param` from its arrays (see :func:`explorer_state`); for a signal
    rule, `scored` are its scores on this split when already at hand."""
    if policy not in method.rules:
        raise ValueError(f"{method.label} exits by {' or '.join(method.rules)}, not {policy!r}")
    if policy in SIGNAL_RULES:
        scored = scored or signal_scores(outputs, study=study, method=method, signal=policy, split=split, seed=seed)
        point = point_at(signal_split(outputs, study, method.label, split, seed), scored, param, study=study,
                         split_name=split, seed=seed)  # one threshold, or one per non-final stage (ztw)
        return dataclasses.replace(point, texts=texts)
    if isinstance(view, ExitOutputs):
        point = exit_point(outputs, view, study=study, model=method.members[0], policy=policy, param=float(param),
                           split=split, seed=seed, texts=texts)
        return dataclasses.replace(point, method=method.label)
    return cascade_point(outputs, view, study=study, label=method.label,
                         thresholds=_thresholds(param, view.num_members), split=split, seed=seed, texts=texts)


def explorer_state(outputs: pd.DataFrame, texts: pd.Series | None = None, *, study: Study,
                   method: str | Sequence[str], policy: str, param, split: str = "test",
                   seed: int = 0) -> OperatingPoint:
    """One operating point of an early-exit model or a cascade, from the outputs table alone.

    `method`: an early-exit model ('deebert', 'pabee', ...) or a cascade ('cascade 1L>6L', or its members,
    smallest first); `policy`: one of the method's exit rules ('entropy', 'maxprob', 'patience'; cascades
    'maxprob'); `param`: the threshold or patience (a cascade: one threshold for every non-final member, or
    one per non-final member); `texts`: the examples' texts indexed by example_id (see `runs.folder.run_texts`).
    Metric, speed-ups and exit shares are exactly those of `exits.evaluate_decision` or
    `cascade.evaluate_routing`.
    """
    m = resolve_method(method)
    return point_from_view(outputs, view_of(outputs, m, split=split, seed=seed), study=study, method=m,
                           policy=policy, param=param, texts=texts, split=split, seed=seed)


def parameter_grid(view: ExitOutputs | CascadeOutputs, policy: str, scored: Scored | None = None) -> np.ndarray:
    """Parameter values spanning every behaviour of `policy` on these outputs, full model to first exit:
    `exits.default_grid` for early exit; for a cascade 0, the quantiles (every 2.5%) of the non-final members'
    confidences, 0.9, 0.99, ..., 1 - 1e-6 and 1; for a signal (`scored` its scores) the quantiles of its
    scores before the last stage, and just above the largest (nobody stops early)."""
    if policy in SIGNAL_RULES:
        if scored is None:
            raise ValueError(f"the grid of signal {policy!r} needs its scores")
        early = scored.score[:, :-1]
        return np.unique(np.concatenate([[early.min() - 1e-9], np.quantile(early, np.linspace(0, 1, 41)),
                                         [early.max() + 1e-9]]))
    if isinstance(view, ExitOutputs):
        return default_grid(policy, view)
    if policy not in CASCADE_POLICIES:
        raise ValueError(f"a cascade exits by {' or '.join(CASCADE_POLICIES)}, not {policy!r}")
    quantiles = np.quantile(view.confidence[:, :-1], np.linspace(0, 1, 41))
    return np.unique(np.concatenate([[0.0], quantiles, 1.0 - 10.0 ** -np.arange(1, 7), [1.0]]))


def curve_from_view(view: ExitOutputs | CascadeOutputs, *, study: Study, method: Method, policy: str,
                    grid=None, outputs: pd.DataFrame | None = None, split: str = "test", seed: int = 0,
                    scored: Scored | None = None) -> pd.DataFrame:
    """The method over its parameter grid: columns method, policy, param, metric, mean_layers, speedup_layers
    (a signal rule needs the `outputs` table too, and uses `scored` when given)."""
    if policy in SIGNAL_RULES:
        if outputs is None:
            raise ValueError(f"the curve of signal {policy!r} needs the outputs table")
        scored = scored or signal_scores(outputs, study=study, method=method, signal=policy, split=split, seed=seed)
        grid = parameter_grid(view, policy, scored) if grid is None else np.asarray(grid, dtype=np.float64)
        points = [point_from_view(outputs, view, study=study, method=method, policy=policy, param=t, split=split,
                                  seed=seed, scored=scored) for t in grid]
        return pd.DataFrame({"method": method.label, "policy": policy, "param": grid,
                             "metric": [p.metric for p in points], "mean_layers": [p.mean_layers for p in points],
                             "speedup_layers": [p.speedup_layers for p in points]})
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
                           grid=grid, outputs=outputs, split=split, seed=seed)


def tuned_point(outputs: pd.DataFrame, *, study: Study, method: str | Sequence[str], policy: str, target: float,
                seed: int = 0, tune: str = "tune", split: str = "test") -> OperatingPoint | None:
    """The method at `target` speed-up (in the study's unit) on `split`, its parameters chosen on `tune` exactly as
    in the main table (`points.tuned_exit_point`; for a cascade `points.tuned_cascade_point`, one threshold per
    non-final member); None when there are no tune rows or the target is out of reach."""
    m = resolve_method(method)
    if not (outputs["split"] == tune).any():
        return None
    if policy in SIGNAL_RULES:
        return tuned_signal_points(outputs, study, m.label, policy, [target], seed, tune=tune, test=split)[0]
    if m.is_cascade:
        return tuned_cascade_point(outputs, study, m.members, target, seed, label=m.label, tune=tune, test=split)
    point = tuned_exit_point(outputs, study, m.members[0], target, seed, policy=policy, tune=tune, test=split)
    return None if point is None else dataclasses.replace(point, method=m.label)


def operating_param(outputs: pd.DataFrame, *, study: Study, method: str | Sequence[str], policy: str,
                    target: float = 3.0, seed: int = 0, tune: str = "tune",
                    split: str = "test") -> float | tuple[float, ...]:
    """The parameter the study would use for `target` speed-up (in the study's unit): that of
    :func:`tuned_point` (for a cascade one threshold per non-final member, as a tuple). When that is not
    possible (no tune rows, target unreachable), the grid value whose speed-up (in the study's unit) on
    `split` is closest to `target`."""
    m = resolve_method(method)
    chosen = tuned_point(outputs, study=study, method=m, policy=policy, target=target, seed=seed, tune=tune,
                         split=split)
    if chosen is not None:
        per_member = m.is_cascade and policy not in SIGNAL_RULES
        return tuple(chosen.values) if per_member or policy in PER_STAGE else chosen.param
    curve = explorer_curve(outputs, study=study, method=m, policy=policy, split=split, seed=seed)
    speedups = curve["speedup_layers"].to_numpy()
    if study.unit == "flops":  # the fallback, too, in the unit of the targets
        view = view_of(outputs, m, split=split, seed=seed)
        speedups = np.array([point_from_view(outputs, view, study=study, method=m, policy=policy, param=p,
                                             split=split, seed=seed).speedup_flops for p in curve["param"]])
    return float(curve["param"].iloc[int(np.nanargmin(np.abs(speedups - target)))])


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
    def from_run(cls, run_dir: str | Path, *, split: str = "test", seed: int | None = None,
                 loaded: tuple[pd.DataFrame, dict] | None = None) -> ExplorerData:
        """A run folder's data; `loaded` = (outputs, config) already read from it (an opened `Run`)."""
        outputs, config = loaded if loaded is not None else load_run(run_dir)
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
            self._cache[key] = view_of(self.outputs, method, split=self.split, seed=self.seed)
        return self._cache[key]

    def _scored(self, method: Method, policy: str) -> Scored | None:
        if policy not in SIGNAL_RULES:
            return None
        key = ("scored", method.members, policy)
        if key not in self._cache:
            self._cache[key] = signal_scores(self.outputs, study=self.study, method=method, signal=policy,
                                             split=self.split, seed=self.seed)
        return self._cache[key]

    def grid(self, method: str | Sequence[str], policy: str) -> np.ndarray:
        """The parameter grid of :func:`parameter_grid` for this method and rule."""
        m = self.method(method)
        return parameter_grid(self._view(m), policy, self._scored(m, policy))

    def curve(self, method: str | Sequence[str], policy: str) -> pd.DataFrame:
        """:func:`explorer_curve` of this run's split and seed (cached)."""
        m = self.method(method)
        key = ("curve", m.members, policy)
        if key not in self._cache:
            self._cache[key] = curve_from_view(self._view(m), study=self.study, method=m, policy=policy,
                                               outputs=self.outputs, split=self.split, seed=self.seed,
                                               scored=self._scored(m, policy))
        return self._cache[key]

    def curves(self, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
        """Curves of several (method, rule) pairs in one table, for `figures.speed_accuracy`."""
        return pd.concat([self.curve(method, policy) for method, policy in pairs], ignore_index=True)

    def state(self, method: str | Sequence[str], policy: str, param) -> OperatingPoint:
        """:func:`explorer_state` of this run's split and seed."""
        m = self.method(method)
        return point_from_view(self.outputs, self._view(m), study=self.study, method=m, policy=policy, param=param,
                               texts=self.texts, split=self.split, seed=self.seed, scored=self._scored(m, policy))

    def risk_state(self, method: str | Sequence[str], signal: str, delta: float, eps: float) -> OperatingPoint:
        """The method stopping on `signal` ('maxprob' too) at the threshold Learn-then-Test accepts on tune for
        at most `delta` accuracy points below the full model with probability 1 - `eps` (see
        `methods.risk`); a ValueError when no threshold can be accepted."""
        m = self.method(method)
        point, choice = risk_signal_point(self.outputs, self.study, m.label, signal, Risk(delta, eps), self.seed,
                                          test=self.split)
        if point is None:
            raise ValueError(f"{m.label} with {signal}: no threshold keeps the drop within {delta:g} points with "
                             f"probability {1 - eps:g} on this tune split (too few examples, or even nobody stopping "
                             f"early misses it); allow a larger delta or eps")
        return dataclasses.replace(point, texts=self.texts)

    # targets, comparison, one example -------------------------------------------------------------------
    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted(int(s) for s in self.outputs["seed"].unique()))

    def with_seed(self, seed: int) -> ExplorerData:
        """The same run at another training seed (texts shared, caches fresh)."""
        if seed not in self.seeds:
            raise ValueError(f"this run has seeds {list(self.seeds)}, not {seed}")
        return dataclasses.replace(self, seed=int(seed), _cache={"texts": True} if self._texts is not None else {})

    @property
    def label_names(self) -> tuple[str, ...]:
        """The task's label names: from config.json, else (a run that did not record them) from its task's
        data, else '0', '1', ..."""
        task = self.config["task"]
        if task.get("label_names"):
            return tuple(task["label_names"])
        if "label_names" not in self._cache:
            names = tuple(str(i) for i in range(int(task["num_labels"])))
            if self.run_dir is not None:
                try:
                    from workbench.data.registry import load_task_options
                    from workbench.runs.folder import run_task_options
                    names = tuple(load_task_options(run_task_options(self.run_dir, self.config)).spec.label_names)
                except (OSError, ValueError) as err:
                    warnings.warn(f"label names of {self.run_dir} are not available ({err}); showing label ids")
            self._cache["label_names"] = names
        return self._cache["label_names"]

    def target_state(self, method: str | Sequence[str], policy: str, target: float) -> OperatingPoint | None:
        """The method at `target` speed-up with its parameters chosen on tune exactly as in the main table (a
        cascade: one threshold per non-final member); None when the target is out of reach."""
        m = self.method(method)
        key = ("target", m.members, policy, float(target))
        if key not in self._cache:
            point = tuned_point(self.outputs, study=self.study, method=m, policy=policy, target=target,
                                seed=self.seed, split=self.split)
            self._cache[key] = None if point is None else dataclasses.replace(point, texts=self.texts)
        return self._cache[key]

    def compare(self, methods: Sequence[str], target: float, *, baseline: str = "deebert") -> pd.DataFrame:
        """Several methods at one target, each with its own rule and the main table's parameters: the metric,
        both speed-ups, ECE, and the paired 95% interval of the difference to `baseline` (at the same target).
        A method out of reach gets a row that says so."""
        from workbench.study.tables import paired_difference
        base = self.target_state(baseline, self.method(baseline).rules[0], target)
        rows = []
        for label in dict.fromkeys(methods):
            point = self.target_state(label, self.method(label).rules[0], target)
            if point is None:
                rows.append({"method": label, "target_speedup": float(target), "verdict": "unreachable"})
                continue
            row = {"method": label, "target_speedup": float(target), "metric_name": point.metric_name,
                   "metric": point.metric, "speedup_layers": point.speedup_layers,
                   "speedup_flops": point.speedup_flops, "ece": point.ece, "setting": point.setting}
            if base is not None and label != baseline:
                compared = paired_difference([(point, base)], self.study)
                row.update({f"vs_{baseline}": point.metric - base.metric, "ci_low": compared["ci_low"],
                            "ci_high": compared["ci_high"], "verdict": compared["verdict"]})
            rows.append(row)
        return pd.DataFrame(rows)

    def search(self, text: str, *, limit: int = 50) -> pd.DataFrame:
        """Examples of this split whose text contains `text` (any case): example_id and text."""
        ids = pd.Index(self.outputs.loc[(self.outputs["split"] == self.split) & (self.outputs["seed"] == self.seed),
                                        "example_id"].unique())
        texts = self.texts
        if texts is None:
            return pd.DataFrame({"example_id": ids[ids.str.contains(text, case=False, regex=False)][:limit],
                                 "text": ""})
        shown = texts.reindex(ids).fillna("")
        found = shown[shown.str.contains(text, case=False, regex=False)].head(limit)
        return pd.DataFrame({"example_id": found.index, "text": found.to_numpy()})

    def example(self, example_id: str, *, methods: Sequence[str] = (), target: float = 3.0) -> dict:
        """One example, drilled down: its text and gold label; `panel`, one row per model and exit (every
        model of the run): the probability of each class, the max-prob, the answer and whether it is right;
        and `stops`, where each of `methods` stops at `target` (parameters as in the main table), its answer
        and whether it is right."""
        example_id = str(example_id)
        rows = self.outputs[(self.outputs["split"] == self.split) & (self.outputs["seed"] == self.seed)
                            & (self.outputs["example_id"] == example_id)]
        if rows.empty:
            raise ValueError(f"example {example_id!r} is not in the {self.split} split of seed {self.seed}")
        names = self.label_names
        probs = prob_matrix(rows)
        panel = pd.DataFrame({"model": rows["model"].to_numpy(), "layer": rows["layer"].to_numpy()})
        for c, name in enumerate(names):
            panel[f"p({name})"] = probs[:, c]
        panel = panel.assign(max_prob=probs.max(1), answer=[names[int(p)] for p in rows["pred"]],
                             right=rows["correct"].to_numpy().astype(bool))
        stops = []
        for label in methods:
            point = self.target_state(label, self.method(label).rules[0], target)
            if point is None:
                stops.append({"method": label, "stops_at": "unreachable"})
                continue
            i = int(np.flatnonzero(point.example_ids == example_id)[0])
            where = (point.members[point.exit_index[i]] if len(point.members) > 1 else
                     f"layer {point.exits[point.exit_index[i]]}")
            stops.append({"method": label, "stops_at": where, "layers": int(point.layers_executed[i]),
                          "answer": names[int(point.pred[i])], "right": bool(point.pred[i] == point.labels[i]),
                          "setting": point.setting})
        texts = self.texts
        return {"example_id": example_id, "text": None if texts is None else texts.get(example_id),
                "label": names[int(rows["label"].iloc[0])],
                "panel": panel.sort_values(["model", "layer"], kind="stable").reset_index(drop=True),
                "stops": pd.DataFrame(stops)}

    def operating_param(self, method: str | Sequence[str], policy: str,
                        target: float = 3.0) -> float | tuple[float, ...]:
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
