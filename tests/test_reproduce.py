"""The whole study on the smoke preset: every table, the executor check, figures from stored files."""
import json

import numpy as np
import pandas as pd
import pytest

from workbench.config import RunConfig
from workbench.names import parse_cascade
from workbench.runs.folder import load_run, load_tables
from workbench.study.figures import write_figures
from workbench.ui.cli import main

TABLES = {"complete_models", "dis", "calibration", "early_exit", "exit_references", "sufficiency", "main",
          "gap_closed", "cascade_sweeps", "difficulty", "executor", "signals", "signal_auroc", "operating_points"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from conftest import toy_rows, write_csv
    folder = tmp_path_factory.mktemp("study")
    train = write_csv(folder / "train.csv", toy_rows(400, 1))
    test = write_csv(folder / "test.csv", toy_rows(200, 2))
    code = main(["reproduce", "--preset", "smoke", "--train-file", train, "--test-file", test, "--task", "toy",
                 "--seeds", "0,1", "--objectives", "berxit,mutual", "--out", str(folder / "run")])
    assert code == 0
    return folder / "run"


def test_every_table_is_written(run):
    tables = load_tables(run)
    assert TABLES <= set(tables)
    outputs, config = load_run(run)
    assert {"complete-1L", "complete-2L", "complete-6L", "complete-1L-da", "complete-2L-da", "deebert", "deebert-da",
            "pabee", "probe", "fastbert", "berxit", "mutual"} == set(outputs["model"])
    assert set(outputs.loc[outputs["model"] == "deebert", "layer"]) == set(range(1, 7))
    assert RunConfig.from_dict(config["run"]).seeds == (0, 1)
    assert RunConfig.from_dict(config["run"]).objectives == ("berxit", "mutual")


def test_every_objective_is_a_method_of_the_main_table(run):
    main_table = load_tables(run)["main"]
    for kind in ("berxit", "mutual"):
        rows = main_table[main_table["method"] == kind]
        assert set(rows["target_speedup"]) == {2.0, 3.0, 4.0}, kind
        reached = rows[rows["verdict"] != "unreachable"]
        assert len(reached) and reached["thresholds"].str.startswith("entropy=").all()
        assert reached["verdict"].isin(["better", "worse", "indistinguishable"]).all()


def test_operating_points_hold_the_main_tables_seeds_one_row_each(run):
    tables = load_tables(run)
    main_table, points = tables["main"], tables["operating_points"]
    assert set(points["seed"]) == {0, 1}
    assert not points.duplicated(["method", "target_speedup", "seed"]).any()
    for _, row in main_table[main_table["verdict"] != "unreachable"].iterrows():
        if row["method"].startswith(("random escalation", "oracle cascade", "oracle ceiling")):
            continue
        mine = points[(points["method"] == row["method"]) & (points["target_speedup"] == row["target_speedup"])]
        assert list(mine["seed"]) == [0, 1], row["method"]
        assert "; ".join(mine["setting"]) == row["thresholds"]
        assert mine["metric"].mean() == pytest.approx(row["metric"])


def test_main_table_schema_and_comparisons(run):
    main_table = load_tables(run)["main"]
    for column in ("task", "method", "target_speedup", "thresholds", "metric_name", "metric", "metric_sd", "ci_low",
                   "ci_high", "verdict", "speedup_layers", "speedup_flops", "ece"):
        assert column in main_table.columns
    rows = main_table[main_table["verdict"] != "unreachable"]
    references = rows["method"].str.startswith(("random escalation", "oracle cascade", "oracle ceiling"))
    compared = rows[~references & (rows["method"] != "deebert")]
    assert compared["verdict"].isin(["better", "worse", "indistinguishable"]).all()
    assert (compared["ci_low"] <= compared["ci_high"]).all()
    reached = rows[rows["method"].str.startswith("cascade")]
    assert (reached["speedup_layers"] > 0).all() and (reached["seeds"] == 2).all()
    # the 2L>6L cascade costs at least 2 layers: 4x is beyond its 3x ceiling and must say so
    assert ((main_table["method"] == "cascade 2L>6L") & (main_table["target_speedup"] == 4.0)
            & (main_table["verdict"] == "unreachable")).any()
    refs = main_table.set_index(["method", "target_speedup"])["metric"]
    for target in (2.0, 3.0, 4.0):
        assert refs[("random escalation 1L>6L", target)] <= refs[("oracle cascade 1L>6L", target)] + 1e-9
        assert refs[("oracle cascade 1L>6L", target)] <= refs[("oracle ceiling 1L>6L", target)] + 1e-9
    gap = load_tables(run)["gap_closed"]
    assert set(gap["pair"]) <= {"1L>6L", "2L>6L"} and {"cascade 1L>6L", "cascade+DA 1L>6L"} <= set(gap["method"])


def test_executor_agrees_with_simulation(run):
    executor = load_tables(run)["executor"]
    assert set(executor["method"]) == {"deebert", "deebert with learned", "cascade 1L>6L"}
    assert (executor["mismatches"] == 0).all()
    assert (executor["speedup_wallclock"] > 0).all()


def test_difficulty_and_sufficiency_tables(run):
    tables = load_tables(run)
    difficulty = tables["difficulty"]
    assert difficulty["depth"].tolist() == [1, 2]
    assert ((difficulty["easy_share"] > 0) & (difficulty["easy_share"] <= 1)).all()
    dis = tables["dis"]
    assert {"model", "layer", "dis", "dis_logit", "ties"} <= set(dis.columns)
    scored = dis["dis"].dropna()  # a model without any error has no (correct, wrong) pair: DIS is undefined
    assert len(scored) and scored.between(0, 100).all()


def test_figures_regenerate_from_stored_files(run, tmp_path):
    paths = write_figures(run, tmp_path / "figs")
    names = {p.name for p in paths}
    for stem in ("speed_accuracy", "dis_heatmap", "reliability", "exit_accuracy"):
        assert {f"{stem}.png", f"{stem}.pdf", f"{stem}.json", f"{stem}.csv"} <= names  # the data beside each figure
    drawn = pd.read_csv(tmp_path / "figs" / "exit_accuracy.csv")
    assert {"deebert", "pabee", "berxit", "mutual", "complete-1L"} <= set(drawn["model"])
    assert not any(m.endswith("-da") for m in drawn["model"])
    sidecar = json.loads((tmp_path / "figs" / "speed_accuracy.json").read_text())
    assert sidecar["config"]["task"] == "toy"


@pytest.mark.parametrize("unit", ["flops", None])
def test_cascade_with_a_narrower_small_backbone(tmp_path, toy_files, unit):
    """Members of different widths: the small members come from another backbone, FLOPs follow each width, and
    the targets are in FLOPs (asked for, or by default because the widths differ)."""
    out = tmp_path / "run"
    code = main(["reproduce", "--preset", "smoke", "--model", "tiny-random-bert-64", "--small-model",
                 "tiny-random-bert", "--train-file", toy_files["train"], "--test-file", toy_files["test"],
                 "--task", "toy", "--cascades", "s1>6,2>6", "--depths", "6", "--targets", "2,4", "--out", str(out)]
                + (["--speedup-unit", unit] if unit else []))
    assert code == 0
    outputs, config = load_run(out)
    assert {"small-1L", "small-1L-da", "complete-2L", "complete-2L-da", "complete-6L"} <= set(outputs["model"])
    assert "complete-1L" not in set(outputs["model"]) and config["speedup_unit"] == "flops"
    main_table = load_tables(out)["main"]
    assert (main_table["speedup_unit"] == "flops").all()
    rows = main_table.set_index(["method", "target_speedup"])
    small = rows.loc[("cascade small-1L>6L", 2.0)]
    # a hidden-32 member costs about a quarter of a hidden-64 layer: FLOPs speed-up exceeds the layer speed-up
    assert small["speedup_flops"] > small["speedup_layers"]
    assert ("cascade 2L>6L", 2.0) in rows.index and ("cascade+DA small-1L>6L", 2.0) in rows.index
    assert ("hybrid small-1L>deebert", 2.0) in rows.index
    for method in ("cascade small-1L>6L", "hybrid small-1L>deebert"):  # chosen on tune in FLOPs, so on test the
        row = rows.loc[(method, 4.0)]                                # FLOPs speed-up lies nearer the target
        assert abs(row["speedup_flops"] - 4.0) < abs(row["speedup_layers"] - 4.0)
    assert rows.loc[("random escalation small-1L>6L", 2.0), "speedup_flops"] == pytest.approx(2.0)
    assert (load_tables(out)["executor"]["mismatches"] == 0).all()
    assert set(load_tables(out)["executor"]["method"]) == {"deebert", "deebert with learned", "cascade small-1L>6L"}
    from workbench.study.figures import speed_accuracy_curves
    tables = load_tables(out)  # the figure is drawn in the run's unit: every curve has FLOPs speed-ups
    curves = speed_accuracy_curves(tables, x="speedup_flops")
    assert {"deebert", "cascade small-1L>6L", "cascade 2L>6L", "complete kL"} <= set(curves["method"])
    complete = tables["complete_models"]  # L / k, less the share of the head: a head costs under 1% of a layer
    assert ((complete["speedup_flops"] <= complete["speedup_layers"] + 1e-9)
            & (complete["speedup_flops"] > 0.98 * complete["speedup_layers"])).all()


def test_reproduce_of_a_finished_run_returns_at_once(run, capsys):
    from workbench.study.reproduce import reproduce
    _, saved = load_run(run)
    before = (run / "tables" / "main.csv").stat().st_mtime_ns
    reproduce(RunConfig.from_dict(saved["run"]))
    assert "up to date" in capsys.readouterr().out
    assert (run / "tables" / "main.csv").stat().st_mtime_ns == before


def test_default_cascades_follow_the_backbone_depth():
    config = RunConfig()
    assert config.cascade_depths(6) == ((1, 6), (2, 6), (1, 2, 6))
    assert config.cascade_depths(12)[0] == (2, 12)  # the paper's BERT-base cascade comes first
    with pytest.raises(ValueError, match="increasing depths from 1 to 6"):
        RunConfig(cascades=((2, 1),)).cascade_depths(6)


@pytest.mark.parametrize("preset", ["paper", "quick"])
def test_default_cascades_of_an_mpnet_run(preset):
    """On the 12-layer mpnet, MiniLM's complete 1L, 2L and 6L models go in front of it (the paper's separately
    pre-trained members), with the truncated 2L>12L beside them for contrast."""
    config = RunConfig.from_preset(preset, backbone="mpnet")
    assert config.small_backbone == "minilm"
    labels = [c.label() for c in config.all_cascades(12, 6)]
    assert labels == ["cascade small-1L>12L", "cascade small-2L>12L", "cascade small-6L>12L", "cascade 2L>12L"]
    assert config.regularized_members(12, 6) == ((1, True), (2, True), (6, True), (2, False))
    assert config.trained_depths(12) == tuple(sorted(set(config.depths) | {2, 12}))
    without = RunConfig.from_preset(preset, backbone="mpnet", small_backbone="")
    assert [c.label() for c in without.all_cascades(12)] == ["cascade 2L>12L", "cascade 1L>12L", "cascade 1L>2L>12L"]
    assert RunConfig.from_preset("quick").small_backbone is None
    with pytest.raises(ValueError, match="must fit the 6 layers"):
        RunConfig(small_backbone="minilm", small_cascades=((8, 12),)).all_cascades(12, 6)
    as_deep = RunConfig(backbone="mpnet", small_backbone="another-12-layer-model").all_cascades(12, 12)
    assert [c.label() for c in as_deep] == ["cascade small-1L>12L", "cascade small-2L>12L", "cascade 2L>12L"]


def test_a_folder_written_before_both_families_keeps_its_small_cascades():
    """Such a folder has a small backbone but no 'small_shape': all its cascades had small members."""
    from workbench.runs.folder import run_cascades
    from workbench.ui.state import study_of
    old = {"run": json.loads(json.dumps(__import__("dataclasses").asdict(
               RunConfig(backbone="tiny-random-bert-64", small_backbone="tiny-random-bert", cascades=((1, 6),))))),
           "full_layers": 6, "shape": {"hidden": 64, "intermediate": 256, "num_layers": 6},
           "task": {"name": "toy", "metric": "accuracy", "num_labels": 2}}
    for key in ("small_cascades", "speedup_unit"):
        del old["run"][key]
    assert [c.label() for c in run_cascades(old)] == ["cascade small-1L>6L"]
    study = study_of(old)
    assert study.unit == "layers" and study.small_shape is not None and study.small_shape.hidden == 32


def test_summary_gathers_runs_into_the_papers_layout(run, tmp_path, capsys):
    assert main(["summary", "--run", str(run), "--out", str(tmp_path / "sum")]) == 0
    printed = capsys.readouterr().out
    assert "| target_speedup | method | toy (accuracy) |" in printed
    results = pd.read_csv(tmp_path / "sum" / "results.csv")
    main_table = load_tables(run)["main"]
    shown = main_table[~main_table["method"].str.startswith(("random", "oracle"))]
    assert len(results) == len(shown[["target_speedup", "method"]].drop_duplicates())
    row = shown[shown["verdict"] != "unreachable"].iloc[0]
    cell = results[(results["method"] == row["method"]) & (results["target_speedup"] == row["target_speedup"])]
    assert cell["toy (accuracy)"].iloc[0].startswith(f"{row['metric']:.2f} ± {row['metric_sd']:.2f} "
                                                     f"({row['speedup_layers']:.2f}x)")
    assert results["method"].iloc[0].startswith("static")
    assert main(["summary", "--run", str(run), "--run", str(run), "--out", str(tmp_path / "x")]) == 2
    assert "given twice" in capsys.readouterr().err
    import shutil
    shutil.copytree(run / "tables", tmp_path / "other" / "tables")
    shutil.copy(run / "config.json", tmp_path / "other" / "config.json")  # its tables' configuration
    assert main(["summary", "--run", str(run), "--run", str(tmp_path / "other"), "--out", str(tmp_path / "y")]) == 0
    columns = pd.read_csv(tmp_path / "y" / "results.csv").columns
    assert {f"toy {run.name} (accuracy)", "toy other (accuracy)"} <= set(columns)
    assert main(["summary", "--run", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "no main table" in capsys.readouterr().err


def test_kfold_difficulty_rule_runs_the_whole_study(tmp_path):
    """`--difficulty-rule kfold`: each small member is judged on the training examples it was not trained on."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from conftest import toy_rows, write_csv
    train = write_csv(tmp_path / "train.csv", toy_rows(240, 1))
    test = write_csv(tmp_path / "test.csv", toy_rows(80, 2))
    code = main(["reproduce", "--preset", "smoke", "--train-file", train, "--test-file", test, "--task", "toy",
                 "--cascades", "1>6", "--difficulty-rule", "kfold", "--difficulty-runs", "2", "--out",
                 str(tmp_path / "run")])
    assert code == 0
    difficulty = load_tables(tmp_path / "run")["difficulty"]
    assert difficulty["rule"].tolist() == ["kfold"] and difficulty["runs"].tolist() == [2]
    assert difficulty["examples"].tolist() == [216]  # the 90% of train left after carving tune
    held_out = list((tmp_path / "run" / "cache").glob("*/held_out_outputs.parquet"))
    assert len(held_out) == 2 and sum(len(pd.read_parquet(p)) for p in held_out) == 216
    outputs, _ = load_run(tmp_path / "run")
    assert {"complete-1L-da", "deebert-da"} <= set(outputs["model"])


def test_a_run_opens_as_one_object_and_answers_its_questions(run):
    import numpy as np

    import workbench as wb
    opened = wb.Run.load(run)
    assert (opened.full_layers, opened.seeds, opened.seed, opened.metric) == (6, (0, 1), 0, "accuracy")
    assert opened.cascade_labels() == ("cascade 1L>6L", "cascade 2L>6L", "cascade 1L>2L>6L")
    assert opened.cascade_labels(regularized=True)[0] == "cascade+DA 1L>6L"
    main = opened.tables["main"]
    answer = wb.answers.cascade_vs_deebert(opened)
    for target in (2.0, 3.0, 4.0):
        row = main[(main["method"] == "cascade 1L>6L") & np.isclose(main["target_speedup"], target)].iloc[0]
        assert f"{target:g}x: {row['metric']:.2f} ({row['speedup_layers']:.2f}x)" in answer
    calibration = opened.tables["calibration"].set_index("model")
    assert f"{calibration.loc['complete-1L', 'ece']:.2f}" in wb.answers.calibration(opened)
    assert wb.answers.exit_reliability(opened).startswith("DIS at layer 1 (50 = chance")
    best = wb.answers.best_at_highest_target(opened)
    assert best.startswith("At 4x the most accurate method is") and "oracle" not in best
    sign = wb.answers.paper_sign(opened)
    assert sign.startswith("Cascades against DeeBERT, targets in layers")
    verdicts = main[main["method"].map(parse_cascade).notna() & np.isclose(main["target_speedup"], 2.0)]["verdict"]
    assert f"2x: {(verdicts == 'better').sum()} of {len(verdicts)} cascades better, " in sign
    cascades = main[main["method"].map(parse_cascade).notna() & np.isclose(main["target_speedup"], 2.0)]
    best_cascade = cascades.sort_values("metric", ascending=False).iloc[0]
    assert f"best {best_cascade['method']} {best_cascade['metric']:.2f}" in sign
    data = opened.explorer()
    assert all(method in wb.answers.explorer(data) for method in data.methods)


def test_answers_say_when_a_run_compared_nothing(tmp_path, toy_files):
    import workbench as wb
    assert main(["reproduce", "--preset", "smoke", "--train-file", toy_files["train"], "--test-file",
                 toy_files["test"], "--task", "toy", "--depths", "1", "--complete-only", "--out",
                 str(tmp_path / "run")]) == 0
    opened = wb.Run.load(tmp_path / "run")
    assert "--complete-only" in wb.answers.cascade_vs_deebert(opened)
    assert "--complete-only" in wb.answers.best_at_highest_target(opened)
    assert "enough inputs" in wb.answers.shallow_representations(opened)


def test_a_rerun_with_other_options_leaves_no_stale_table(run, tmp_path, capsys):
    import shutil
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert (copy / "tables" / "main.csv").is_file() and (copy / "figures" / "speed_accuracy.png").is_file()
    code = main(["reproduce", "--preset", "smoke", "--train-file", str(run.parent / "train.csv"), "--test-file",
                 str(run.parent / "test.csv"), "--task", "toy", "--seeds", "0,1", "--complete-only", "--out",
                 str(copy)])
    assert code == 0
    assert set(load_tables(copy)) == {"complete_models", "dis", "calibration", "reliability"}
    assert not list((copy / "tables").glob("main.*")) and not list((copy / "tables").glob("executor.*"))
    assert not list((copy / "figures").glob("speed_accuracy.*")) and (copy / "figures" / "dis_heatmap.png").is_file()
    capsys.readouterr()
    assert main(["summary", "--run", str(copy), "--out", str(tmp_path / "summary")]) == 2
    assert "no main table" in capsys.readouterr().err
    config = json.loads((copy / "config.json").read_text())
    config["run"]["seeds"] = [7]  # as if another run had written config.json after these tables
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="another configuration than its config.json"):
        load_tables(copy)


def test_the_sufficiency_answer_reads_the_shallowest_layer():
    import types

    import pandas as pd

    import workbench as wb
    table = pd.DataFrame([{"layer": 2, "n": 50, "acc_internal": 70.0, "acc_complete": 72.0, "diff": 2.0,
                           "ci_low": -1.0, "ci_high": 5.0, "verdict": "indistinguishable"},
                          {"layer": 1, "n": 300, "acc_internal": 80.0, "acc_complete": 83.5, "diff": 3.5,
                           "ci_low": 1.25, "ci_high": 5.75, "verdict": "better"}])
    answer = wb.answers.shallow_representations(types.SimpleNamespace(tables={"sufficiency": table}))
    assert answer == ("On the 300 (input, seed) pairs DeeBERT lets out at layer 1, the complete 1-layer model is "
                      "more accurate than DeeBERT's off-ramp: 83.50 vs 80.00% (difference +3.50 points, 95% "
                      "interval [1.25, 5.75]).")


def test_signal_methods_sit_in_the_main_table_and_compare_with_their_base(run):
    tables = load_tables(run)
    main_table = tables["main"]
    for method in ("deebert with learned", "cascade 1L>6L with ensemble", "cascade 2L>6L with averaged"):
        assert (main_table["method"] == method).sum() == 3  # one row per target, reached or 'unreachable'
    signals = tables["signals"]
    assert {"agreement", "averaged", "ensemble", "ztw", "learned"} == set(signals["signal"])
    assert {"deebert", "fastbert", "berxit", "mutual", "cascade 1L>6L", "cascade 2L>6L"} == set(signals["base"])
    compared = signals.dropna(subset=["vs_base_low"])
    assert (compared["vs_base_low"] <= compared["vs_base"] + 1e-9).all()
    assert (compared["vs_base"] <= compared["vs_base_high"] + 1e-9).all()
    auroc = tables["signal_auroc"]
    assert set(auroc["signal"]) == {"maxprob", "agreement", "averaged", "ensemble", "learned"}
    assert auroc["auroc"].dropna().between(0, 1).all()


def test_tables_recomputes_a_run_with_a_risk_guarantee(run, tmp_path, capsys):
    import shutil
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = load_tables(copy)
    assert main(["tables", "--run", str(copy), "--signals", "learned", "--risk", "5,0.2"]) == 0
    after = load_tables(copy)
    old = before["main"][~before["main"]["method"].str.contains(" with ")].reset_index(drop=True)
    new = after["main"][~after["main"]["method"].str.contains(" with ")].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, new)  # only the signal rows change
    assert set(after["signals"]["signal"]) == {"learned"}
    risk = after["risk"]
    assert set(risk["signal"]) == {"maxprob", "learned"} and set(risk["verdict"]) <= {"controlled", "unreachable"}
    controlled = risk[risk["verdict"] == "controlled"]
    assert ((controlled["drop"] > 5.0) == controlled["violated"]).all()
    share = after["risk_violations"].set_index("signal").loc["all"]
    assert share["controlled"] == len(controlled) and share["violations"] == controlled["violated"].sum()
    assert share["violation_share"] == pytest.approx(controlled["violated"].mean())
    assert after["executor"].equals(before["executor"])
    assert main(["execute", "--run", str(copy)]) == 0  # the executor check again, from the cached models
    again = load_tables(copy)["executor"]
    assert again["method"].tolist() == before["executor"]["method"].tolist() and (again["mismatches"] == 0).all()
    assert main(["tables", "--run", str(copy), "--risk", "0,0.1"]) == 2
    assert "delta" in capsys.readouterr().err


def test_tables_in_the_other_speedup_unit(run, tmp_path):
    import shutil
    copy = tmp_path / "flops"
    copy.mkdir()
    for name in ("outputs.parquet", "config.json"):
        shutil.copy(run / name, copy / name)
    shutil.copytree(run / "tables", copy / "tables")
    assert main(["tables", "--run", str(copy), "--speedup-unit", "flops", "--signals", "none"]) == 0
    flops = load_tables(copy)["main"]
    assert set(flops["speedup_unit"]) == {"flops"} and load_run(copy)[1]["speedup_unit"] == "flops"
    # a FLOPs target also pays for every off-ramp head, so reaching it takes thresholds that let out at least
    # as many examples: with the same seeds, each realised FLOPs speed-up is at least the layer run's
    layers = load_tables(run)["main"].set_index(["method", "target_speedup"])
    reached = flops[(flops["method"] == "deebert") & flops["metric"].notna()].set_index("target_speedup")
    assert len(reached)
    for target, row in reached.iterrows():
        assert row["speedup_flops"] >= layers.loc[("deebert", target), "speedup_flops"] - 1e-9


def test_gap_closed_covers_the_cascades_with_a_signal(run):
    gap = load_tables(run)["gap_closed"]
    assert {"cascade 1L>6L with learned", "cascade 1L>6L with ensemble"} <= set(gap["method"])
    assert not gap["method"].str.startswith("deebert").any()  # early exit has its own references


# ----------------------------------------------------------------------------- a trained method on new texts


def _test_texts(run, method_view):
    from workbench.runs.folder import run_texts
    outputs, config = load_run(run)
    return run_texts(run, config).loc[method_view.example_ids].tolist()


@pytest.mark.parametrize("name", ["deebert", "fastbert", "cascade 1L>6L", "cascade+DA 1L>2L>6L", "deebert with learned",
                                  "deebert with ztw"])
def test_a_trained_method_answers_texts_exactly_as_the_outputs_store(run, name):
    from workbench.methods.points import tuned_cascade_point, tuned_exit_point
    from workbench.methods.signal_points import tuned_signal_points
    from workbench.study.classify import load_method
    from workbench.ui.state import study_of
    outputs, config = load_run(run)
    study = study_of(config)
    if name.startswith("cascade"):
        cascade = parse_cascade(name)
        point = tuned_cascade_point(outputs, study, cascade[0].members(regularized=cascade[1]), 2.0, 0, label=name)
    elif " with " in name:
        point = tuned_signal_points(outputs, study, "deebert", name.split(" with ")[1], [2.0], 0)[0]
    else:
        point = tuned_exit_point(outputs, study, name, 2.0, 0)
    method = load_method(run, name, target=2)
    answers = method.answer_frame(_test_texts(run, point))
    assert len(answers) == len(point.pred) and method.setting == point.setting
    assert answers["label"].tolist() == [method.label_names[p] for p in point.pred]
    assert answers["layers"].tolist() == point.layers_executed.tolist()
    if name.startswith("cascade"):
        assert answers["stopped_at"].tolist() == [point.members[i] for i in point.exit_index]
    else:
        assert answers["stopped_at"].tolist() == [f"layer {i + 1}" for i in point.exit_index]
    assert (answers["flops"] <= answers["full_flops"] * 2).all() and (answers["confidence"] <= 1).all()
    np.testing.assert_allclose(answers["flops"].mean(), point.flops.mean())


def test_classify_from_python_and_the_command_line(run, tmp_path, monkeypatch, capsys):
    import io
    import workbench as wb
    method = wb.load_method(run, "complete-6L")
    one = method("the film is great and very funny")
    assert set(one) >= {"label", "confidence", "stopped_at", "layers", "flops"} and one["layers"] == 6
    assert one["stopped_at"] == "complete-6L" and method([]) == []
    assert one["flops"] == pytest.approx(one["full_flops"])  # the full model itself, priced as the study prices it
    texts = tmp_path / "texts.txt"
    texts.write_text("the plot is dull\n\nsuperb cast and a charming story\n")
    out = tmp_path / "answers.jsonl"
    assert main(["classify", "--run", str(run), "--method", "cascade 1L>6L", "--target", "2x", "--input", str(texts),
                 "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["the plot is dull", "superb cast and a charming story"]  # blank skipped
    assert all(r["stopped_at"] in ("complete-1L", "complete-6L") for r in rows)
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("a boring film\n"))
    assert main(["classify", "--run", str(run), "--method", "deebert", "--target", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["stopped_at"].startswith("layer ")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["classify", "--run", str(run), "--method", "deebert"]) == 0
    assert capsys.readouterr().out == ""  # an empty input gets an empty answer


def test_classify_names_what_is_wrong(run, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": \n')
    assert main(["classify", "--run", str(run), "--method", "deebert", "--input", str(bad)]) == 2
    assert "line 2" in capsys.readouterr().err
    missing = tmp_path / "other.csv"
    missing.write_text("sentence\ngood\n")
    assert main(["classify", "--run", str(run), "--method", "deebert", "--input", str(missing)]) == 2
    assert "text" in capsys.readouterr().err
    assert main(["classify", "--run", str(run), "--method", "complete-3L"]) == 2
    assert "not in the run's cache" in capsys.readouterr().err  # never trains: depth 3 was not part of the run
    assert main(["classify", "--run", str(run), "--method", "cascade 2L>6L", "--target", "4x"]) == 2
    assert "cannot reach 4x" in capsys.readouterr().err
    assert main(["classify", "--run", str(run), "--method", "probe"]) == 2
    assert "not a method that can answer" in capsys.readouterr().err
    assert main(["classify", "--run", str(run), "--method", "deebert", "--target", "fast"]) == 2
    assert "--target 'fast'" in capsys.readouterr().err


def test_every_markdown_table_is_valid(run):
    import re
    tables = sorted((run / "tables").glob("*.md"))
    assert len(tables) >= len(TABLES)
    for path in tables:
        rows = [line for line in path.read_text().splitlines() if line.startswith("|")]
        cells = {len(re.split(r"(?<!\\)\|", line)) for line in rows}  # unescaped pipes only
        assert len(cells) == 1, f"{path.name}: rows with different cell counts {cells}"
        assert not re.search(r"\|\s*nan\s*\|", path.read_text()), f"{path.name} prints nan"
    main_md = (run / "tables" / "main.md").read_text()
    assert "; " in main_md  # the two seeds' thresholds share one cell without breaking the row


# ---------------------------------------------------------------------- explorer: targets, comparison, one example


def test_explorer_targets_match_the_main_table_for_three_members_too(run):
    from workbench.ui.state import load_explorer_data
    data = load_explorer_data(run)
    main_table = load_tables(run)["main"].set_index(["method", "target_speedup"])
    for method in ("cascade 1L>2L>6L", "cascade 1L>6L", "deebert"):
        for target in (2.0, 3.0):
            points = [data.with_seed(s).target_state(method, data.method(method).rules[0], target) for s in data.seeds]
            row = main_table.loc[(method, target)]
            if row["verdict"] == "unreachable":
                assert any(p is None for p in points)
                continue
            assert np.mean([p.metric for p in points]) == pytest.approx(row["metric"])
            assert np.mean([p.speedup_layers for p in points]) == pytest.approx(row["speedup_layers"])
    three = data.target_state("cascade 1L>2L>6L", "maxprob", 2.0)
    assert len(three.values) == 2  # one threshold per non-final member


def test_explorer_compares_methods_and_drills_down_to_one_example(run):
    from workbench.ui.state import load_explorer_data
    data = load_explorer_data(run)
    table = data.compare(["deebert", "cascade 1L>6L", "pabee"], 2.0)
    assert table["method"].tolist() == ["deebert", "cascade 1L>6L", "pabee"]
    reached = table[table["verdict"] != "unreachable"]
    assert np.isnan(reached.iloc[0]["ci_low"])  # the baseline against itself has no interval
    cascade = reached[reached["method"] == "cascade 1L>6L"].iloc[0]
    assert cascade["ci_low"] <= cascade["vs_deebert"] <= cascade["ci_high"]
    assert cascade["metric"] == pytest.approx(data.target_state("cascade 1L>6L", "maxprob", 2.0).metric)

    found = data.search("SUPERB")
    assert len(found) and found["text"].str.contains("superb").all()
    one = data.example(found["example_id"].iloc[0], methods=["deebert", "cascade 1L>6L"], target=2.0)
    assert "superb" in one["text"] and one["label"] in data.label_names
    panel = one["panel"]
    assert len(panel[panel["model"] == "deebert"]) == 6 and len(panel[panel["model"] == "complete-1L"]) == 1
    probs = panel[[f"p({name})" for name in data.label_names]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    stops = one["stops"].set_index("method")
    point = data.target_state("cascade 1L>6L", "maxprob", 2.0)
    i = int(np.flatnonzero(point.example_ids == one["example_id"])[0])
    assert stops.loc["cascade 1L>6L", "stops_at"] == point.members[point.exit_index[i]]
    assert stops.loc["cascade 1L>6L", "right"] == bool(point.correct[i])
    with pytest.raises(ValueError, match="not in the test split"):
        data.example("no-such-id")


def test_explorer_widgets_for_targets_seeds_pages_comparison_and_drill_down(run):
    from workbench.ui.explorer import FREE, build_explorer
    from workbench.ui.state import load_explorer_data
    data = load_explorer_data(run)
    ui = build_explorer(data, method="cascade 1L>2L>6L", target=2.0)
    expected = data.target_state("cascade 1L>2L>6L", "maxprob", 2.0)
    # the target sets both thresholds as the main table does
    assert ui.state.values == pytest.approx(expected.values) and ui.state.metric == pytest.approx(expected.metric)
    assert [s.layout.display for s in ui.params[:2]] == [None, None]
    first = ui.params[1].options[0][1]
    ui.params[1].value = first if ui.params[1].value != first else ui.params[1].options[-1][1]
    assert ui.target.value == FREE and ui.state.values[1] == pytest.approx(ui.params[1].value)
    ui.target.value = 2.0
    assert ui.state.values == pytest.approx(expected.values)
    ui.seed.value = 1
    assert ui.state.seed == 1
    assert ui.page.max == -(-len(ui.state.examples) // ui.rows)
    ui.page.value = 2
    assert f"rows {ui.rows + 1}-" in ui.table.value
    ui.compared.value = ("deebert", "cascade 1L>6L")
    assert "cascade 1L&gt;6L" in ui.comparison.value and "paired bootstrap" in ui.comparison.value
    ui.search.value = "superb"
    assert ui.example_id.options and "contain" in ui.drill.value
    ui.example_id.value = ui.example_id.options[0]
    assert "gold label" in ui.drill.value and "every exit of every model" in ui.drill.value


def test_speed_accuracy_figure_marks_every_method_at_its_targets(run):
    import matplotlib
    matplotlib.use("Agg")
    from workbench.study.figures import speed_accuracy, speed_accuracy_curves, target_points
    tables = load_tables(run)
    points = target_points(tables)
    assert "cascade 1L>2L>6L" in set(points["method"])  # no curve of its own, but its operating points
    assert not points["method"].str.contains(" with |random|oracle|static").any()
    ax = speed_accuracy(speed_accuracy_curves(tables), points=points, targets=[2.0, 3.0, 4.0])
    labels = [line.get_label() for line in ax.get_lines()]
    assert "cascade 1L>2L>6L (at the targets)" in labels
    assert sum(1 for line in ax.get_lines() if line.get_marker() == "D") == points["method"].nunique()


def test_the_main_job_times_its_stages(run):
    timings = pd.read_csv(run / "timings.csv")
    stages = list(timings["stage"])
    assert stages[:3] == ["data", "complete models",
                          "early-exit models (DeeBERT, PABEE, probes, FastBERT, BERxiT, mutual distillation)"]
    assert {"difficulty labels of complete-1L", "complete-1L-da members", "deebert-da", "tables", "executor check",
            "figures"} <= set(stages)
    assert (timings["seconds"] >= 0).all() and timings["seconds"].sum() > 0


def test_compare_across_runs_gives_the_main_tables_intervals(run, tmp_path, capsys):
    from workbench.study.compare import compare_runs, parse_entry
    main_table = load_tables(run)["main"].set_index(["method", "target_speedup"])
    table = compare_runs([(run, "deebert"), (run, "cascade 1L>6L"), (run, "mutual")], [2.0, 3.0],
                         baseline=(run, "deebert"))
    for _, row in table[table["method"] != "deebert"].iterrows():
        expected = main_table.loc[(row["method"], row["target_speedup"])]
        assert row["metric"] == pytest.approx(expected["metric"])
        assert (row["ci_low"], row["ci_high"], row["verdict"]) == pytest.approx(
            (expected["ci_low"], expected["ci_high"], expected["verdict"]))
        assert row["seeds"] == 2 and row["settings"] == expected["thresholds"]
    assert table.loc[table["method"] == "deebert", "ci_low"].isna().all()  # the baseline against itself: no interval

    assert main(["compare", f"{run}:deebert", f"{run}:cascade 1L>6L", "--targets", "2",
                 "--out", str(tmp_path / "cmp")]) == 0
    assert "cascade 1L>6L" in capsys.readouterr().out and (tmp_path / "cmp.md").is_file()
    assert main(["compare", f"{run}:no such method"]) == 2
    assert "has no method 'no such method'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="RUN:METHOD"):
        parse_entry("deebert")
