"""The executors really skip work and agree exactly with the simulations on stored outputs."""
import numpy as np
import pandas as pd
import pytest
import torch

from workbench.data.batching import encode
from workbench.methods.cascade import CascadeOutputs, route
from workbench.methods.executor import run_cascade, run_early_exit, run_full
from workbench.methods.exits import ExitOutputs, entropy_exit, maxprob_exit, patience_exit
from workbench.models.backbones import load_tokenizer
from workbench.models.complete import CompleteModel, ModelSpec
from workbench.models.multiexit import MultiExitModel, MultiExitSpec
from workbench.study.stages import predict_split


@pytest.fixture(scope="module")
def pabee(tmp_path_factory):
    torch.manual_seed(0)
    model = MultiExitModel.build_pabee(MultiExitSpec(kind="pabee", backbone="tiny-random-bert", num_layers=4,
                                                     num_labels=2), seed=3)
    for head in model.heads:  # spread the confidences so that every exit gets used
        torch.nn.init.normal_(head.out.weight, std=2.0)
    return model.eval()


def _between(values, quantiles):
    """Thresholds half-way between neighbouring observed values, so no value sits on a threshold."""
    v = np.unique(values)
    mids = (v[1:] + v[:-1]) / 2
    return [float(np.quantile(mids, q)) for q in quantiles]


def _simulated(model, split, tok):
    rows, _ = predict_split(model, tok, split, split="test", seed=0, max_length=32)
    return ExitOutputs.from_outputs(rows, model=model.spec.name, split="test", seed=0)


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_early_exit_executor_equals_simulation(pabee, toy_task, batch_size):
    tok = load_tokenizer("tiny-random-bert")
    split = toy_task.splits["test"]
    out = _simulated(pabee, split, tok)
    order = pd.Index(out.example_ids).get_indexer(split["example_id"].astype(str))
    encoded = encode(tok, split, 32)
    cases = [("maxprob", t, maxprob_exit) for t in _between(out.probs.max(-1), [0.2, 0.5, 0.8])]
    entropies = -(out.probs * np.log(out.probs)).sum(-1)
    cases += [("entropy", t, entropy_exit) for t in _between(entropies, [0.3, 0.7])]
    cases += [("patience", p, patience_exit) for p in (0, 1, 2, 3)]
    used = set()
    for policy, param, simulate in cases:
        real = run_early_exit(pabee, encoded, policy=policy, param=param, batch_size=batch_size)
        sim = simulate(out, param)
        np.testing.assert_array_equal(real.exit_index, sim.exit_index[order], err_msg=f"{policy} {param}")
        np.testing.assert_array_equal(real.pred, sim.pred[order])
        np.testing.assert_array_equal(real.layers_executed, sim.layers_executed[order])
        np.testing.assert_allclose(real.confidence, sim.confidence[order], rtol=1e-5)
        used |= set(real.exit_index.tolist())
    assert used == {0, 1, 2, 3}


def test_executor_rejects_meaningless_parameters(pabee, toy_task):
    encoded = encode(load_tokenizer("tiny-random-bert"), toy_task.splits["test"], 32)
    with pytest.raises(ValueError, match="can never be met"):
        run_early_exit(pabee, encoded, policy="entropy", param=-0.1)
    with pytest.raises(ValueError, match="patience 4"):
        run_early_exit(pabee, encoded, policy="patience", param=4)


@pytest.mark.parametrize("batch_size, refill", [(1, False), (32, False), (5, True), (32, True)])
def test_routed_cascade_equals_simulation(toy_task, batch_size, refill):
    tok = load_tokenizer("tiny-random-bert")
    split = toy_task.splits["test"]
    members = []
    for depth, seed in ((1, 0), (2, 1), (4, 2)):
        model = CompleteModel.build(ModelSpec(backbone="tiny-random-bert", depth=depth, num_labels=2), seed=seed)
        torch.nn.init.normal_(model.head.out.weight, std=2.0)
        members.append(model.eval())
    rows = pd.concat([predict_split(m, tok, split, split="test", seed=0, max_length=32)[0] for m in members])
    out = CascadeOutputs.from_outputs(rows, members=[m.spec.name for m in members], split="test", seed=0)
    order = pd.Index(out.example_ids).get_indexer(split["example_id"].astype(str))
    encoded = encode(tok, split, 32)
    t1 = _between(out.probs[:, 0].max(-1), [0.5])[0]
    t2 = _between(out.probs[:, 1].max(-1), [0.4])[0]
    for thresholds in ([t1, t2], [0.0, 0.0], [1.0, 1.0], [1.0, t2]):
        real = run_cascade(members, [encoded] * 3, thresholds, batch_size=batch_size, refill=refill)
        sim = route(out, thresholds)
        np.testing.assert_array_equal(real.exit_index, sim.member_index[order], err_msg=str(thresholds))
        np.testing.assert_array_equal(real.pred, sim.pred[order])
        np.testing.assert_array_equal(real.layers_executed, sim.layers_executed[order])
    assert set(run_cascade(members, [encoded] * 3, [t1, t2]).exit_index) == {0, 1, 2}
    full = run_full(members[-1], encoded)
    np.testing.assert_array_equal(full.pred, out.probs[:, 2].argmax(-1)[order])
    assert full.seconds > 0 and (full.layers_executed == 4).all()


@pytest.mark.parametrize("signal", ["maxprob", "agreement", "averaged", "ensemble", "ztw", "learned"])
def test_signal_executor_equals_simulation(pabee, toy_task, signal):
    from workbench.methods.executor import run_early_exit_signal
    from workbench.methods.signals import Stages, fit_signal, scoring_folds, stop
    tok = load_tokenizer("tiny-random-bert")
    split = toy_task.splits["test"]
    rows, _ = predict_split(pabee, tok, split, split="test", seed=0, max_length=32)
    out = ExitOutputs.from_outputs(rows, model=pabee.spec.name, split="test", seed=0)
    tokens = rows.drop_duplicates("example_id").set_index("example_id").loc[out.example_ids, "tokens"].to_numpy()
    stages = Stages.of(out, tokens)
    fitted = fit_signal(signal, stages, folds=2, seed=0)  # fitted on these outputs: enough to compare the two
    fold = scoring_folds(fitted, out.n, seed=0)
    scored = fitted.score(stages, fold)
    order = pd.Index(out.example_ids).get_indexer(split["example_id"].astype(str))
    encoded = encode(tok, split, 32)
    thresholds = _between(scored.score[:, :-1], [0.3, 0.7])
    if signal == "ztw":  # one threshold per non-final exit: a different quantile of each exit's scores
        thresholds = [np.array([np.quantile(scored.score[:, j], 0.2 + 0.1 * j) for j in range(out.num_exits - 1)])]
    used = set()
    for threshold in thresholds:
        real = run_early_exit_signal(pabee, encoded, fitted, threshold, batch_size=7,
                                     fold=None if fold is None else fold[order])
        index = stop(scored, threshold)
        np.testing.assert_array_equal(real.exit_index, index[order], err_msg=f"{signal} {threshold}")
        np.testing.assert_array_equal(real.pred, scored.pred[np.arange(out.n), index][order])
        used |= set(real.exit_index.tolist())
    assert len(used) > 1


def test_bf16_executor_follows_the_bf16_simulation(pabee, toy_task):
    tok = load_tokenizer("tiny-random-bert")
    split = toy_task.splits["test"]
    rows32, _ = predict_split(pabee, tok, split, split="test", seed=0, max_length=32)
    rows16, _ = predict_split(pabee, tok, split, split="test", seed=0, max_length=32, precision="bf16")
    assert rows16["prob_0"].dtype == np.float64  # stored as float32 logits -> float64 probabilities, as ever
    gap = np.abs(rows16["prob_0"].to_numpy() - rows32["prob_0"].to_numpy())
    assert 0 < gap.max() < 0.05  # bf16 rounds the matrix work: close to fp32, not equal
    out = ExitOutputs.from_outputs(rows16, model=pabee.spec.name, split="test", seed=0)
    order = pd.Index(out.example_ids).get_indexer(split["example_id"].astype(str))
    param = _between(out.probs.max(-1), [0.5])[0]
    real = run_early_exit(pabee, encode(tok, split, 32), policy="maxprob", param=param, batch_size=64,
                          precision="bf16")
    sim = maxprob_exit(out, param)
    agree = np.mean(real.exit_index == sim.exit_index[order])
    assert agree >= 0.95, agree  # the same batches at layer 1; later layers see fewer rows, so bf16 may differ


def test_precision_enters_the_cache_key_only_when_not_fp32(toy_task):
    from dataclasses import asdict, replace
    from workbench.config import TrainConfig
    from workbench.models.training import model_folder
    from workbench.store import content_hash
    spec = ModelSpec(backbone="tiny-random-bert", depth=2, num_labels=2)
    config = TrainConfig()
    before = {k: v for k, v in asdict(config).items() if k != "precision"}  # a key made before the setting existed
    expected = content_hash(asdict(spec.resolved()), before, 0, toy_task.fingerprint())
    assert model_folder("cache", spec, config, 0, toy_task).name.endswith(expected)
    assert model_folder("cache", spec, replace(config, precision="bf16"), 0, toy_task) != \
        model_folder("cache", spec, config, 0, toy_task)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")
