"""Learn-then-Test thresholds: the guarantee holds by simulation, and bad or unreachable requests are named."""
import numpy as np
import pytest

from workbench.methods.risk import Risk, fewest_examples, harm, learn_then_test, violation_share
from workbench.methods.signals import Scored


def draw(n: int, rng) -> tuple[Scored, np.ndarray]:
    """Two stages. Stage 1's confidence c ~ U(0.5, 1) and it is right with probability c; the full model (stage 2)
    is right with probability 0.95, independently. At threshold lam >= 0.5 the population harm rate is
    P(c > lam, stage 1 wrong, full right) = 0.95 * integral_lam^1 2 (1 - c) dc = 0.95 (1 - lam)^2."""
    labels = rng.integers(0, 2, n)
    c = rng.uniform(0.5, 1.0, n)
    first = np.where(rng.uniform(size=n) < c, labels, 1 - labels)
    full = np.where(rng.uniform(size=n) < 0.95, labels, 1 - labels)
    score = np.stack([c, np.ones(n)], 1)
    return Scored("maxprob", score, np.stack([first, full], 1), score), labels


def population_harm(lam: float) -> float:
    return 0.95 * (1.0 - max(lam, 0.5)) ** 2 if np.isfinite(lam) else 0.0


def test_guarantee_holds_over_1000_draws():
    rng = np.random.default_rng(0)
    risk = Risk(delta=5.0, eps=0.1)
    chosen, violations = [], 0
    for _ in range(1000):
        scored, labels = draw(500, rng)
        choice = learn_then_test(scored, labels, risk)
        assert choice is not None
        chosen.append(choice.threshold)
        violations += population_harm(choice.threshold) > risk.delta / 100
    assert violations / 1000 <= risk.eps
    # and it is not vacuous: the thresholds let many examples out (harm 5% is reached at lam ~ 0.77)
    assert np.median(chosen) < 0.85


def test_harm_by_hand():
    conf = np.array([[0.9, 1], [0.9, 1], [0.2, 1]])
    scored = Scored("maxprob", conf, np.array([[1, 0], [0, 0], [1, 0]]), conf)
    labels = np.array([0, 0, 0])
    assert harm(scored, labels, 0.5).tolist() == [True, False, False]  # c goes on to the right full model
    assert harm(scored, labels, np.inf).tolist() == [False, False, False]


def test_unreachable_when_the_calibration_split_is_too_small():
    rng = np.random.default_rng(1)
    risk = Risk(delta=1.0, eps=0.05)
    assert fewest_examples(risk) == 299  # (0.99)^299 <= 0.05 < (0.99)^298
    scored, labels = draw(fewest_examples(risk) - 1, rng)
    assert learn_then_test(scored, labels, risk) is None


@pytest.mark.parametrize("delta,eps,match", [(-1, 0.1, "delta"), (0, 0.1, "delta"), (100, 0.1, "delta"),
                                             (1, 0, "eps"), (1, 1, "eps"), (1, 1.5, "eps")])
def test_bad_risk_is_named(delta, eps, match):
    with pytest.raises(ValueError, match=match):
        Risk(delta, eps)


def test_parse_and_violation_share():
    assert Risk.parse("1,0.1") == Risk(1.0, 0.1)
    with pytest.raises(ValueError, match="DELTA,EPS"):
        Risk.parse("1")
    assert violation_share(np.array([0.5, 1.5, 0.9, 2.0]), Risk(1.0, 0.1)) == 0.5


def test_harm_is_measured_against_the_full_models_own_answer():
    # an averaged signal's last-stage answer can differ from the full model's: the guarantee is about the latter
    conf = np.array([[0.9, 1.0], [0.9, 1.0]])
    scored = Scored("averaged", conf, np.array([[1, 1], [0, 0]]), conf)
    labels = np.array([0, 0])
    assert harm(scored, labels, 0.5).tolist() == [False, False]  # the averaged last stage is wrong on example 0
    assert harm(scored, labels, 0.5, full_pred=np.array([0, 0])).tolist() == [True, False]
