"""Exit and deferral signals beyond one exit's confidence, as pure functions of stored outputs.

Early exit and a cascade make the same decision: at each stage (an off-ramp, or a member) an example stops
when a score says its answer there is right enough, or goes on and pays for the next stage. `Stages` is that
common view over `ExitOutputs` or `CascadeOutputs`; a signal turns it into a score and an answer per stage
(`Scored`, both [n, m]); `stop` applies one threshold to the score. Higher scores mean "stop here".

- `maxprob`: the stage's max softmax probability (the cascade's rule; DeeBERT's entropy ranks alike on 2 classes).
- `agreement`: PCEE-BERT / BEEM style, the sum of the max probabilities over the run of consecutive stages,
  ending at this one, whose argmax is this stage's (one confident stage, or several that agree).
- `averaged`: Tabi style, the answer from the mean of the probabilities of every stage run so far (free on
  escalation: those stages were paid for), scored by that mean's max.
- `ensemble`: Zero Time Waste style, a cumulative ensemble: stage k answers with
  softmax(sum_{j<=k} w_kj log p_j + b_k), the non-negative weights w_k and class biases b_k fitted on tune by
  log-loss (Wolczyk et al., NeurIPS 2021).
- `ztw`: the same ensemble with Zero Time Waste's threshold per exit (`thresholds_per_stage`) in place of one
  threshold for every stage; its scores are `ensemble`'s.
- `learned`: a learned deferral rule: at each stage a logistic regression predicts whether the answer there is
  right from what the stages so far show (max prob, margin, entropy, their change from the stage before, how
  many consecutive stages agree, and the input length in tokens); its probability is the score (Jitkrittum
  et al., NeurIPS 2023; CATs, Schuster et al., 2021).

`ensemble` and `learned` are fitted on the tune split and cross-fitted there (`score_splits`): each tune
example is scored by a model fitted on the other folds, so thresholds chosen on tune never rest on a score
that saw its own label. Each test example is scored by one of the same fold models (a seeded draw), so
tune and test scores come from the same distribution and a threshold means the same on both; a model
refitted on all of tune would score a little differently, and thresholds between near-equal scores do not
survive that. Train-split outputs are never used: a fine-tuned model is overconfident on them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression

from workbench.methods.cascade import CascadeOutputs
from workbench.methods.exits import ExitOutputs, entropy, stable_counter
from workbench.names import SIGNALS

FITTED = ("ensemble", "learned", "ztw")  # signals fitted on tune, so cross-fitted there
PER_STAGE = {"ztw": "ensemble"}  # signals with a threshold per stage -> the signal whose scores they stop on
FOLDS = 5
_EPS = 1e-12


@dataclass(frozen=True)
class Stages:
    """Where an example can stop, in order: the exits of a multi-exit model or the members of a cascade."""
    example_ids: np.ndarray  # [n]
    labels: np.ndarray       # [n]
    probs: np.ndarray        # [n, m, C] softmax probabilities at each stage
    tokens: np.ndarray       # [n] input length in tokens (ones when unknown)

    def __post_init__(self):
        n = len(self.example_ids)
        if self.probs.ndim != 3 or self.probs.shape[0] != n:
            raise ValueError(f"probs must have shape [n={n}, m, C], got {self.probs.shape}")
        if len(self.labels) != n or len(self.tokens) != n:
            raise ValueError(f"got {len(self.labels)} labels and {len(self.tokens)} token counts for {n} examples")

    @classmethod
    def of(cls, out: ExitOutputs | CascadeOutputs, tokens: np.ndarray | None = None) -> "Stages":
        """The stages of an early-exit model (its exits) or a cascade (its members)."""
        tokens = np.ones(out.n) if tokens is None else np.asarray(tokens, dtype=np.float64)
        return cls(example_ids=out.example_ids, labels=out.labels, probs=out.probs, tokens=tokens)

    @property
    def n(self) -> int:
        return len(self.example_ids)

    @property
    def num_stages(self) -> int:
        return self.probs.shape[1]

    def subset(self, rows: np.ndarray) -> "Stages":
        return Stages(self.example_ids[rows], self.labels[rows], self.probs[rows], self.tokens[rows])


@dataclass(frozen=True)
class Scored:
    """A signal on stages: how sure each stage is, and what it answers."""
    signal: str
    score: np.ndarray  # [n, m] higher = surer the answer at this stage is right
    pred: np.ndarray   # [n, m] the answer if the example stops at this stage
    confidence: np.ndarray  # [n, m] the probability the signal's distribution gives that answer (for ECE)


# ----------------------------------------------------------------------------- signals that need no fitting


def maxprob_signal(stages: Stages) -> Scored:
    """Each stage's max softmax probability and argmax."""
    conf = stages.probs.max(-1)
    return Scored("maxprob", conf, stages.probs.argmax(-1), conf)


def agreement_signal(stages: Stages) -> Scored:
    """Sum of the max probabilities over the consecutive stages, ending at each one, that answer the same.

    >>> p = np.array([[[0.6, 0.4], [0.7, 0.3], [0.2, 0.8]]])  # 1 example, 3 stages
    >>> agreement_signal(Stages(np.array(["a"]), np.array([0]), p, np.ones(1))).score.round(2)
    array([[0.6, 1.3, 0.8]])
    """
    pred, conf = stages.probs.argmax(-1), stages.probs.max(-1)
    score = conf.copy()
    for k in range(1, stages.num_stages):
        score[:, k] += np.where(pred[:, k] == pred[:, k - 1], score[:, k - 1], 0.0)
    return Scored("agreement", score, pred, conf)


def averaged_signal(stages: Stages) -> Scored:
    """The running mean of the stages' probabilities: its argmax answers, its max scores.

    >>> p = np.array([[[0.9, 0.1], [0.2, 0.8]]])
    >>> s = averaged_signal(Stages(np.array(["a"]), np.array([1]), p, np.ones(1)))
    >>> s.pred.tolist(), s.score.round(2).tolist()
    ([[0, 0]], [[0.9, 0.55]])
    """
    mean = np.cumsum(stages.probs, axis=1) / np.arange(1, stages.num_stages + 1)[None, :, None]
    return Scored("averaged", mean.max(-1), mean.argmax(-1), mean.max(-1))


# ----------------------------------------------------------------------------- fitted signals


@dataclass(frozen=True)
class EnsembleWeights:
    """ZTW weights: stage k's log-probabilities are sum_{j<=k} weights[k][j] log p_j + biases[k]."""
    weights: tuple[np.ndarray, ...]  # [k + 1] per stage k, non-negative
    biases: np.ndarray               # [m, C]


def fit_ensemble(stages: Stages, *, l2: float = 1e-3) -> EnsembleWeights:
    """Fit each stage's non-negative weights and class biases by log-loss on `stages` (the tune split)."""
    logp = np.log(np.clip(stages.probs, _EPS, 1.0))
    weights, biases = [], []
    num_classes = stages.probs.shape[-1]
    for k in range(stages.num_stages):
        x = logp[:, : k + 1]  # [n, k+1, C]

        def loss(theta, x=x, k=k):
            w, b = theta[: k + 1], theta[k + 1:]
            z = np.einsum("njc,j->nc", x, w) + b
            lsm = log_softmax(z, axis=-1)
            nll = -lsm[np.arange(len(z)), stages.labels].mean()
            grad_z = np.exp(lsm)
            grad_z[np.arange(len(z)), stages.labels] -= 1.0
            grad_z /= len(z)
            grad_w = np.einsum("nc,njc->j", grad_z, x) + 2 * l2 * w
            return nll + l2 * float(w @ w), np.concatenate([grad_w, grad_z.sum(0)])

        start = np.concatenate([np.eye(k + 1)[k], np.zeros(num_classes)])  # the stage alone
        bounds = [(0.0, None)] * (k + 1) + [(None, None)] * num_classes
        theta = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds).x
        weights.append(theta[: k + 1])
        biases.append(theta[k + 1:])
    return EnsembleWeights(tuple(weights), np.array(biases))


def apply_ensemble(fit: EnsembleWeights, stages: Stages) -> Scored:
    """The cumulative ensemble at every stage: its max probability and argmax."""
    logp = np.log(np.clip(stages.probs, _EPS, 1.0))
    probs = np.stack([np.exp(log_softmax(np.einsum("njc,j->nc", logp[:, : k + 1], fit.weights[k]) + fit.biases[k],
                                         axis=-1))
                      for k in range(stages.num_stages)], axis=1)  # the stages given: all, or the ones run so far
    return Scored("ensemble", probs.max(-1), probs.argmax(-1), probs.max(-1))


FEATURES = ("maxprob", "margin", "entropy", "maxprob_change", "margin_change", "entropy_change", "agreeing",
            "log_tokens")


def deferral_features(stages: Stages) -> np.ndarray:
    """[n, m, F] what the stages up to each one show, FEATURES in order (changes are 0 at the first stage)."""
    ordered = np.sort(stages.probs, axis=-1)
    maxprob = ordered[..., -1]
    margin = maxprob - ordered[..., -2]
    ent = entropy(stages.probs)
    base = np.stack([maxprob, margin, ent], -1)
    change = np.concatenate([np.zeros_like(base[:, :1]), np.diff(base, axis=1)], axis=1)
    agreeing = stable_counter(stages.probs.argmax(-1)).astype(np.float64)
    log_tokens = np.broadcast_to(np.log1p(stages.tokens)[:, None], maxprob.shape)
    return np.concatenate([base, change, agreeing[..., None], log_tokens[..., None]], axis=-1)


@dataclass(frozen=True)
class DeferralRule:
    """One logistic regression per stage on `deferral_features`, or a constant where tune was all one class."""
    models: tuple[LogisticRegression | float, ...]


def fit_deferral(stages: Stages, *, seed: int = 0) -> DeferralRule:
    """Fit, per stage, P(the answer at this stage is right | features) on `stages` (the tune split)."""
    features = deferral_features(stages)
    right = stages.probs.argmax(-1) == stages.labels[:, None]
    models = []
    for k in range(stages.num_stages):
        y = right[:, k]
        if y.all() or not y.any():
            models.append(float(y.mean()))
            continue
        model = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
        models.append(model.fit(_standardize(features[:, k]), y))
    return DeferralRule(tuple(models))


def apply_deferral(rule: DeferralRule, stages: Stages) -> Scored:
    """P(right) at every stage under the fitted rule, and the stage's own argmax."""
    features = deferral_features(stages)
    score = np.stack([np.full(stages.n, m) if isinstance(m, float)
                      else m.predict_proba(_standardize(features[:, k]))[:, 1]
                      for k, m in zip(range(stages.num_stages), rule.models)], axis=1)
    return Scored("learned", score, stages.probs.argmax(-1), stages.probs.max(-1))


def _standardize(x: np.ndarray) -> np.ndarray:
    """Fixed rescaling (no statistics of the data): probabilities stay, entropy and log length shrink to ~[0, 1]."""
    return x / np.array([1.0, 1.0, 2.0, 1.0, 1.0, 2.0, 12.0, 6.0])


# ----------------------------------------------------------------------------- scoring a tune/test pair


def fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    """[n] a seeded fold index per example."""
    return np.random.default_rng(seed).permutation(np.arange(n) % folds)


@dataclass(frozen=True)
class FittedSignal:
    """A signal ready to score stages: for fitted signals one model per fold of tune, each fitted on the other
    folds; () for signals that need no fitting."""
    signal: str
    models: tuple = ()

    def score(self, stages: Stages, fold: np.ndarray | None = None) -> Scored:
        """Score `stages` (all of a model's, or only the ones run so far, as an executor has them); with fold
        models, example i is scored by models[fold[i]]."""
        if not self.models:
            return {"maxprob": maxprob_signal, "agreement": agreement_signal, "averaged": averaged_signal}[
                self.signal](stages)
        apply = apply_ensemble if scores_of(self.signal) == "ensemble" else apply_deferral
        shape = stages.probs.shape[:2]
        score, conf, pred = np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=np.int64)
        for f, model in enumerate(self.models):
            rows = fold == f
            if rows.any():
                scored = apply(model, stages.subset(rows))
                score[rows], pred[rows], conf[rows] = scored.score, scored.pred, scored.confidence
        return Scored(self.signal, score, pred, conf)


def scores_of(signal: str) -> str:
    """The signal whose scores `signal` stops on (itself, except for the per-stage variants of PER_STAGE)."""
    return PER_STAGE.get(signal, signal)


def fit_signal(signal: str, tune: Stages, *, folds: int = FOLDS, seed: int = 0) -> FittedSignal:
    """The signal fitted on tune: for `ensemble` and `learned`, one model per fold of `fold_ids(tune.n, folds,
    seed)`, fitted on the other folds."""
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal {signal!r}; expected one of {', '.join(SIGNALS)}")
    if signal not in FITTED:
        return FittedSignal(signal)
    if tune.n < 2 * folds:
        raise ValueError(f"signal {signal!r} is cross-fitted over {folds} folds of the tune split, which has only "
                         f"{tune.n} examples; give it at least {2 * folds}")
    fit = fit_ensemble if scores_of(signal) == "ensemble" else (lambda s: fit_deferral(s, seed=seed))
    fold = fold_ids(tune.n, folds, seed)
    return FittedSignal(signal, tuple(fit(tune.subset(fold != f)) for f in range(folds)))


def scoring_folds(fitted: FittedSignal, n: int, seed: int) -> np.ndarray | None:
    """[n] which fold model scores each test example (a seeded draw); None for signals that need no fitting."""
    return fold_ids(n, len(fitted.models), seed + 1) if fitted.models else None


def score_splits(signal: str, tune: Stages, test: Stages, *, folds: int = FOLDS,
                 seed: int = 0) -> tuple[Scored, Scored]:
    """The signal on the tune split and on the test split; fitted signals are cross-fitted over `folds` folds
    of tune (each tune example scored by the model that did not see it), and each test example is scored by
    one of those fold models (`scoring_folds`)."""
    fitted = fit_signal(signal, tune, folds=folds, seed=seed)
    tune_fold = fold_ids(tune.n, folds, seed) if fitted.models else None
    return fitted.score(tune, tune_fold), fitted.score(test, scoring_folds(fitted, test.n, seed))


def score_for_calibration(signal: str, tune: Stages, test: Stages, *,
                          seed: int = 0) -> tuple[np.ndarray, Scored, Scored]:
    """(calibration rows of tune, their scores, test scores) for thresholds with a guarantee. A guarantee
    needs the calibration examples scored by the very model that scores test, and unseen by it: fitted
    signals are fitted on a seeded half of tune and calibrated on the other half; the others calibrate on
    all of tune."""
    if signal not in FITTED:
        tuned, tested = score_splits(signal, tune, test)
        return np.arange(tune.n), tuned, tested
    if tune.n < 4:
        raise ValueError(f"signal {signal!r} needs a tune split of at least 4 examples to fit on one half and "
                         f"calibrate on the other, got {tune.n}")
    calibrate = fold_ids(tune.n, 2, seed) == 1
    fit, apply = ((fit_ensemble, apply_ensemble) if scores_of(signal) == "ensemble"
                  else (lambda s: fit_deferral(s, seed=seed), apply_deferral))
    model = fit(tune.subset(~calibrate))
    return np.flatnonzero(calibrate), apply(model, tune.subset(calibrate)), apply(model, test)


# ----------------------------------------------------------------------------- stopping on a score


def stage_thresholds(threshold, stages: int) -> np.ndarray:
    """[stages] the threshold of every stage from one threshold for all, or one per non-final stage (or per
    stage: the last one is never read, since the last stage always answers)."""
    values = np.ravel(np.asarray(threshold, dtype=np.float64))
    if len(values) == 1:
        return np.full(stages, values[0])
    if len(values) not in (stages - 1, stages):
        raise ValueError(f"{stages} stages need one threshold, or one per non-final stage, got {len(values)}")
    return np.append(values[:stages - 1], np.inf)


def stop(scored: Scored, threshold) -> np.ndarray:
    """[n] the first stage whose score is > its threshold (strict; see `stage_thresholds`); the last stage when
    none is."""
    may = scored.score > stage_thresholds(threshold, scored.score.shape[1])
    may[:, -1] = True
    return may.argmax(1)


def threshold_for_speedup(scored: Scored, cost: np.ndarray, full: np.ndarray, target: float) -> float | None:
    """The largest threshold whose speed-up mean(full) / mean(cost at the stop) is >= target, where `cost`
    [n, m] is what reaching and answering at each stage costs (cumulative; layers or FLOPs) and `full` [n]
    the full model's. Raising the threshold only delays stops, so the speed-up falls monotonically and a
    bisection over the midpoints between distinct scores finds it exactly. None when even stopping everyone
    at the first stage misses the target."""
    values = np.unique(scored.score)
    candidates = np.concatenate([[-np.inf], (values[:-1] + values[1:]) / 2, [np.inf]])
    rows = np.arange(len(cost))

    def speedup(i: int) -> float:
        return float(np.mean(full) / np.mean(cost[rows, stop(scored, candidates[i])]))

    if speedup(0) < target:
        return None
    lo, hi = 0, len(candidates) - 1  # speedup(lo) >= target; find the last such index
    if speedup(hi) >= target:
        return float(candidates[hi])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if speedup(mid) >= target else (lo, mid)
    return float(candidates[lo])


def thresholds_per_stage(scored: Scored, labels: np.ndarray, cost: np.ndarray, full: np.ndarray, target: float, *,
                         metric: str = "accuracy", rounds: int = 2, grid: int = 16) -> np.ndarray | None:
    """[m] a threshold per stage (the last one is never read) that reaches `target` speed-up on this split with
    the best `metric` a coordinate search finds, as Zero Time Waste tunes one threshold per internal
    classifier. It starts from the single threshold of `threshold_for_speedup` at every stage; then, `rounds`
    times over the stages in order, each stage's threshold moves to the value among `grid` quantiles of its
    scores (and -inf, +inf: always or never stop there) that raises the metric most while the speed-up stays
    at or above the target (a tie keeps the higher speed-up). None when the target is unreachable."""
    from workbench.measures.metrics import task_metric
    start = threshold_for_speedup(scored, cost, full, target)
    if start is None:
        return None
    rows, m = np.arange(len(labels)), scored.score.shape[1]
    mean_full = float(np.mean(full))

    def value(thresholds: np.ndarray) -> tuple[float, float]:
        index = stop(scored, thresholds)
        return task_metric(metric, labels, scored.pred[rows, index]), mean_full / float(np.mean(cost[rows, index]))

    thresholds = np.full(m, start)
    best = value(thresholds)
    for _ in range(rounds):
        moved = False
        for k in range(m - 1):
            for candidate in np.concatenate([[-np.inf, np.inf], np.quantile(scored.score[:, k],
                                                                             np.linspace(0, 1, grid))]):
                trial = thresholds.copy()
                trial[k] = candidate
                got = value(trial)
                if got[1] >= target and got > best:
                    thresholds, best, moved = trial, got, True
        if not moved:
            break
    return thresholds


def auroc_wrong(scored: Scored, labels: np.ndarray) -> np.ndarray:
    """[m] per stage, the AUROC of -score at telling a wrong answer from a right one (0.5 = no better than
    chance; NaN where a stage is all right or all wrong)."""
    from sklearn.metrics import roc_auc_score
    wrong = scored.pred != labels[:, None]
    return np.array([roc_auc_score(wrong[:, k], -scored.score[:, k]) if 0 < wrong[:, k].sum() < len(labels)
                     else float("nan") for k in range(scored.score.shape[1])])
