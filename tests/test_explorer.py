"""The exit explorer on a real smoke run: its numbers against exits / cascade, and its widget UI."""
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.config import DifficultyConfig
from workbench.data.registry import load_task_options
from workbench.measures.calibration import ece
from workbench.methods.cascade import CascadeOutputs, evaluate_routing, route
from workbench.methods.exits import ExitOutputs, apply_policy, evaluate_decision
from workbench.methods.points import tuned_cascade_point, tuned_exit_point
from workbench.runs.folder import run_task_options
from workbench.ui.explorer import build_explorer, static_explorer_figure
from workbench.ui.state import (ExplorerData, available_methods, explorer_curve, explorer_state, load_explorer_data,
                                operating_param, resolve_method, study_of)

FULL = 6  # layers of the smoke preset's tiny backbone


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A whole study on the toy task with the smoke preset, kept small: depths 1 and 6, one cascade."""
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import toy_rows, write_csv
    folder = tmp_path_factory.mktemp("explorer")
    task = wb.TaskOptions(name="toy", train_file=write_csv(folder / "train.csv", toy_rows(240, 1)),
                          test_file=write_csv(folder / "test.csv", toy_rows(80, 2)))
    config = wb.RunConfig.from_preset("smoke", task=task, depths=(1,), cascades=((1, FULL),), targets=(2.0,),
                                      difficulty=DifficultyConfig(runs=1), out=str(folder / "run"))
    wb.reproduce(config, progress=False)
    return folder / "run"


@pytest.fixture(scope="module")
def loaded(run):
    outputs, config = wb.load_run(run)
    texts = load_task_options(wb.TaskOptions(**config["run"]["task"])).splits["test"].set_index("example_id")["text_a"]
    return outputs, config, study_of(config), texts


def test_methods_of_the_run(run, loaded):
    outputs, config, study, _ = loaded
    methods = available_methods(outputs, config)
    assert {"deebert", "pabee", "cascade 1L>6L", "cascade+DA 1L>6L"} <= set(methods)
    assert study.full_layers == FULL and study.metric == "accuracy" and study.num_labels == 2
    assert resolve_method("cascade+DA 1L>6L").members == ("complete-1L-da", "complete-6L")
    assert resolve_method(("complete-1L", "complete-6L")).label == "cascade 1L>6L"
    assert resolve_method("pabee").rules == ("patience", "maxprob", "agreement", "averaged", "ensemble", "ztw",
                                                 "learned")
    with pytest.raises(ValueError, match="cascade 1L>6L"):
        resolve_method("cascade one to six")
    with pytest.raises(ValueError, match="entropy or maxprob or agreement"):
        explorer_state(outputs, study=study, method="deebert", policy="patience", param=1)


@pytest.mark.parametrize("method,policy,params", [("deebert", "entropy", [0.0, 0.3, 0.6, 0.7]),
                                                  ("deebert", "maxprob", [0.5, 0.6, 0.9]),
                                                  ("pabee", "patience", [0, 1, 2, 5])])
def test_early_exit_state_equals_evaluate_decision(loaded, method, policy, params):
    outputs, _, study, texts = loaded
    out = ExitOutputs.from_outputs(outputs, model=method, split="test", seed=0)
    for param in params:
        state = explorer_state(outputs, texts, study=study, method=method, policy=policy, param=param)
        decision = apply_policy(out, policy, param)
        expected = evaluate_decision(out, decision, metric="accuracy", full_layers=FULL)
        assert state.metric == pytest.approx(expected["metric"])
        assert state.speedup_layers == pytest.approx(expected["speedup_layers"])
        assert state.mean_layers == pytest.approx(expected["mean_layers"])
        assert state.exit_shares.index.tolist() == out.layers.tolist()
        assert state.exit_shares.to_numpy() == pytest.approx([expected[f"share_exit_{k}"] for k in out.layers])
        assert state.exit_shares.sum() == pytest.approx(1.0)
        rows = state.examples
        assert rows["example_id"].tolist() == out.example_ids.tolist()
        assert np.array_equal(rows["exit_layer"], decision.exit_layer)
        assert np.array_equal(rows["pred"], decision.pred)
        assert np.array_equal(rows["early"], decision.exit_index < out.num_exits - 1)
        assert state.ece == pytest.approx(ece(decision.confidence, decision.pred == out.labels))
        assert (rows["text"] == texts.loc[rows["example_id"]].to_numpy()).all()
        assert (~state.wrong_early_exits["correct"] & state.wrong_early_exits["early"]).all()
        assert state.speedup_flops > 0


@pytest.mark.parametrize("method", ["cascade 1L>6L", "cascade+DA 1L>6L", ("complete-1L", "complete-6L")])
def test_cascade_state_equals_evaluate_routing(loaded, method):
    outputs, _, study, texts = loaded
    members = resolve_method(method).members
    out = CascadeOutputs.from_outputs(outputs, members=members, split="test", seed=0)
    for threshold in (0.0, 0.55, 0.7, 0.95, 1.0):
        state = explorer_state(outputs, texts, study=study, method=method, policy="maxprob", param=threshold)
        routing = route(out, [threshold])
        expected = evaluate_routing(out, routing, metric="accuracy", full_layers=FULL)
        assert state.members == members and state.thresholds == (threshold,)
        assert state.metric == pytest.approx(expected["metric"])
        assert state.speedup_layers == pytest.approx(expected["speedup_layers"])
        assert state.exit_shares.index.tolist() == [1, FULL]
        assert state.exit_shares.to_numpy() == pytest.approx([expected[f"share_member_{m}"] for m in members])
        assert np.array_equal(state.examples["layers_executed"], routing.layers_executed)
        assert np.array_equal(state.examples["early"], ~routing.escalated)
        assert state.ece == pytest.approx(ece(routing.confidence, routing.pred == out.labels))
    assert explorer_state(outputs, study=study, method=method, policy="maxprob", param=1.0).mean_layers == 1 + FULL


def test_curve_points_are_states(loaded):
    outputs, _, study, _ = loaded
    for method, policy in (("deebert", "entropy"), ("pabee", "patience"), ("cascade 1L>6L", "maxprob")):
        curve = explorer_curve(outputs, study=study, method=method, policy=policy)
        assert len(curve) > 3 and set(curve["method"]) == {resolve_method(method).label}
        for _, row in curve.iloc[::5].iterrows():
            state = explorer_state(outputs, study=study, method=method, policy=policy, param=row["param"])
            assert (state.metric, state.speedup_layers) == pytest.approx((row["metric"], row["speedup_layers"]))


def test_operating_param_is_the_main_tables_choice(loaded):
    outputs, _, study, _ = loaded
    for model in ("deebert", "pabee"):
        answers = tuned_exit_point(outputs, study, model, 2.0, 0)
        assert answers is not None
        policy = "entropy" if model == "deebert" else "patience"
        assert operating_param(outputs, study=study, method=model, policy=policy, target=2.0) == \
            pytest.approx(answers.values[0])
    answers = tuned_cascade_point(outputs, study, ("complete-1L", "complete-6L"), 2.0, 0, label="cascade 1L>6L")
    assert answers is not None
    chosen = operating_param(outputs, study=study, method="cascade 1L>6L", policy="maxprob", target=2.0)
    assert chosen == pytest.approx(answers.values)
    state = explorer_state(outputs, study=study, method="cascade 1L>6L", policy="maxprob", param=chosen)
    assert state.metric == pytest.approx(100 * answers.correct.mean())



def test_widget_ui_follows_its_controls(run):
    data = load_explorer_data(run)
    ui = build_explorer(data, method="deebert")
    assert ui.policy.options == ("entropy", "maxprob", "agreement", "averaged", "ensemble", "ztw", "learned")
    assert ui.state.method == "deebert" and ui.figure.value[:4] == b"\x89PNG"
    first = ui.state
    values = [value for _, value in ui.param.options]
    target = values[0] if ui.param.value != values[0] else values[-1]
    ui.param.value = target  # move the slider as a user would
    assert ui.state is not first and ui.state.param == pytest.approx(target)
    expected = data.state("deebert", "entropy", target)
    assert ui.state.speedup_layers == pytest.approx(expected.speedup_layers)
    assert f"{expected.metric:.1f}" in ui.summary.value
    ui.only_wrong.value = True
    assert "wrong early exits" in ui.table.value
    ui.method.value = "cascade 1L>6L"
    assert ui.policy.options == ("maxprob", "agreement", "averaged", "ensemble", "ztw", "learned")
    assert ui.state.members == ("complete-1L", "complete-6L")
    ui.policy.value = "learned"  # a cascade deferring on the learned rule
    assert ui.state.policy == "learned" and ui.state.method == "cascade 1L>6L with learned"
    ui.policy.value = "maxprob"
    ui.method.value = "pabee"
    assert ui.policy.value == "patience" and ui.param.description == "patience"
    assert [v for _, v in ui.param.options] == [float(p) for p in range(FULL)]
    ui.policy.value = "maxprob"
    assert ui.state.policy == "maxprob"


def test_static_figure_draws_three_views(run):
    import matplotlib.pyplot as plt
    fig = static_explorer_figure(run, method="cascade+DA 1L>6L")
    assert len(fig.axes) >= 3
    assert "ECE" in fig.axes[2].get_title()
    plt.close(fig)


def test_relative_data_paths_resolve_from_the_run_folder(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("text,label\n")
    config = {"run": {"out": "runs/x", "task": {"name": "toy", "train_file": "data/train.csv",
                                                 "test_file": "data/test.csv", "data_dir": "data"}}}
    monkeypatch.chdir(tmp_path / "data")  # as a notebook does, from another folder
    options = run_task_options(tmp_path / "runs" / "x", config)
    assert Path(options.train_file) == tmp_path / "data" / "train.csv"
    assert Path(options.data_dir) == tmp_path / "data"


def test_explorer_data_caches_views(run):
    data = ExplorerData.from_run(run)
    assert data.curve("deebert", "entropy") is data.curve("deebert", "entropy")
    with pytest.raises(ValueError, match="seeds"):
        ExplorerData.from_run(run, seed=7)


def test_cascade_of_a_narrower_small_backbone(tmp_path):
    """Small members from another backbone ('small-1L'): the run's labels find them, FLOPs follow each width."""
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import toy_rows, write_csv
    task = wb.TaskOptions(name="toy", train_file=write_csv(tmp_path / "train.csv", toy_rows(160, 3)),
                          test_file=write_csv(tmp_path / "test.csv", toy_rows(60, 4)))
    config = wb.RunConfig.from_preset("smoke", task=task, backbone="tiny-random-bert-64", depths=(FULL,),
                                      cascades=(), small_cascades=((1, FULL),), targets=(2.0,),
                                      small_backbone="tiny-random-bert",
                                      difficulty=DifficultyConfig(runs=1), out=str(tmp_path / "run"))
    wb.reproduce(config, progress=False)
    data = load_explorer_data(tmp_path / "run")
    assert data.method("cascade small-1L>6L").members == ("small-1L", "complete-6L")
    assert data.study.unit == "flops"  # the members differ in width
    outputs, study = data.outputs, data.study
    answers = tuned_cascade_point(outputs, study, ("small-1L", "complete-6L"), 2.0, 0, label="cascade small-1L>6L")
    assert data.operating_param("cascade small-1L>6L", "maxprob", 2.0) == answers.values  # as the main table
    state = data.state("cascade small-1L>6L", "maxprob", answers.values[0])
    assert state.metric == pytest.approx(100 * answers.correct.mean())
    assert state.speedup_flops == pytest.approx(answers.full_flops.mean() / answers.flops.mean())
    assert state.speedup_flops > state.speedup_layers  # the hidden-32 member is cheaper per layer
    ui = build_explorer(data, method="cascade+DA small-1L>6L")
    assert ui.state.members == ("small-1L-da", "complete-6L")


@pytest.mark.parametrize("method", ["deebert", "cascade 1L>6L"])
@pytest.mark.parametrize("signal", ["agreement", "averaged", "ensemble", "ztw", "learned"])
def test_every_method_stops_on_every_signal_as_in_the_main_table(loaded, method, signal):
    from workbench.methods.signal_points import tuned_signal_points
    outputs, _, study, _ = loaded
    chosen = tuned_signal_points(outputs, study, method, signal, [2.0], 0)[0]
    param = operating_param(outputs, study=study, method=method, policy=signal, target=2.0)
    if chosen is not None:  # ztw on DeeBERT: one threshold per exit
        assert np.atleast_1d(param) == pytest.approx(np.atleast_1d(chosen.values if signal == "ztw" else chosen.param))
        state = explorer_state(outputs, study=study, method=method, policy=signal, param=param)
        assert state.metric == pytest.approx(chosen.metric) and state.speedup_layers == pytest.approx(
            chosen.speedup_layers)
    curve = explorer_curve(outputs, study=study, method=method, policy=signal)
    assert len(curve) > 3 and curve["speedup_layers"].max() > curve["speedup_layers"].min()
    for _, row in curve.iloc[::10].iterrows():
        state = explorer_state(outputs, study=study, method=method, policy=signal, param=row["param"])
        assert state.metric == pytest.approx(row["metric"])


def test_risk_state_carries_the_guarantee_or_says_why_not(run):
    data = load_explorer_data(run)
    point = data.risk_state("deebert", "learned", 20.0, 0.2)
    assert point.method == "deebert with learned, risk 20,0.2" and point.target is None
    with pytest.raises(ValueError, match="no threshold keeps the drop within 0.1 points"):
        data.risk_state("deebert", "maxprob", 0.1, 0.05)  # 80 tune examples cannot certify 0.1 points
    with pytest.raises(ValueError, match="delta"):
        data.risk_state("deebert", "maxprob", -1, 0.05)
