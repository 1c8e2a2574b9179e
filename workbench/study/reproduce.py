"""The main job, `reproduce`: train every model once, store every output, then tables, checks and figures.

A run folder (`--out DIR`) holds:

- `outputs.parquet`   every tune/test example x model x exit (schema in `workbench.runs.outputs`):
                      complete-kL, complete-kL-da (difficulty-aware), deebert, pabee, probe;
- `tables/`           complete_models, early_exit (policy sweeps), exit_references, sufficiency, dis, reliability,
                      calibration, difficulty, cascade_sweeps, main (the paper's table with intervals
                      and verdicts), gap_closed, executor (real execution vs simulation, wall-clock),
                      each as CSV and Markdown;
- `figures/`          speed_accuracy, sufficiency, dis_heatmap, reliability (PNG, PDF, JSON sidecar),
                      regenerated from the stored files by `python -m workbench figures --run DIR`;
- `config.json`       the full configuration, task source and notes, package versions, git commit;
- `cache/`            trained checkpoints and their outputs, keyed by config and data hash.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.config import RunConfig
from workbench.data.batching import encode
from workbench.data.registry import prepare_task
from workbench.measures.analysis import BeyondCeiling, dis_table
from workbench.measures.cost import EncoderShape
from workbench.methods.cascade import CascadeOutputs, sweep_cascade
from workbench.methods.executor import run_cascade, run_early_exit, run_early_exit_signal, run_full
from workbench.methods.hybrid import tuned_hybrid_point
from workbench.methods.points import Study, member_costs, static_point, tuned_cascade_point, tuned_exit_point
from workbench.models.backbones import backbone_config, load_tokenizer
from workbench.models.complete import CompleteModel
from workbench.models.multiexit import MultiExitModel
from workbench.names import (EXIT_POLICIES, complete_name, display_name, hybrid_label, is_small_member, parse_model,
                             reference_label, signal_label)
from workbench.runs.cache import cache_lock
from workbench.runs.distributed import context
from workbench.runs.folder import write_run
from workbench.runs.outputs import validate_outputs
from workbench.store import atomic_write_text, environment, read_json, to_jsonable
from workbench.study.checks import check_run
from workbench.study.figures import write_figures
from workbench.study.stages import (complete_model, complete_model_outputs, da_member, deebert_model, difficulty_labels,
                                    early_exit_outputs)
from workbench.methods.risk import Risk
from workbench.methods.signal_points import signal_split, tuned_signal_points
from workbench.methods.signals import fit_signal, scoring_folds
from workbench.study.signal_tables import (risk_table, risk_violations, signal_answers, signal_auroc,
                                           signal_comparison)
from workbench.study.tables import (calibration_summary, cascade_references, early_exit_sweeps, exit_references,
                                    gap_closed_table, mean_over_seeds, operating_points_table, reliability_bins,
                                    sufficiency_table, summarize_answers, summarize_depths)


def study_tables(outputs: pd.DataFrame, study: Study, config: RunConfig,
                 small_layers: int | None = None) -> dict[str, pd.DataFrame]:
    """Every table of the study, from the outputs table alone (`small_layers`: of the small backbone, for its
    default cascades)."""
    tables = {"complete_models": summarize_depths(outputs, metric=study.metric, full_layers=study.full_layers,
                                                  study=study)}
    tables["dis"] = mean_over_seeds(dis_table(outputs), ["model", "layer"])
    tables["calibration"] = mean_over_seeds(calibration_summary(outputs), ["model", "layer"])
    tables["reliability"] = reliability_bins(outputs)
    if not config.study:
        return tables
    tables["early_exit"] = early_exit_sweeps(outputs, study)
    tables["exit_references"] = exit_references(outputs, study)
    tables["sufficiency"] = sufficiency_table(outputs, study, target=config.sufficiency_target)
    cascades = config.all_cascades(study.full_layers, small_layers)
    exits = [m for m in EXIT_POLICIES if (outputs["model"] == m).any()]
    hybrids = list(dict.fromkeys(c.members()[0] for c in cascades if len(c.depths) == 2)) if "deebert" in exits \
        else []
    answers, references, reference_rows, sweeps = [], {}, [], []
    for seed in config.seeds:
        for target in config.targets:
            found = [static_point(outputs, study, target, seed)]
            found += [tuned_exit_point(outputs, study, m, target, seed) for m in exits]
            found += [tuned_cascade_point(outputs, study, c.members(regularized=r), target, seed,
                                          label=c.label(regularized=r)) for c in cascades for r in (False, True)]
            found += [tuned_hybrid_point(outputs, study, small, target, seed) for small in hybrids]
            answers += [point for point in found if point is not None]
            for cascade in (c for c in cascades if len(c.depths) == 2):  # the reference lines are for two members
                members = cascade.members()
                try:
                    refs = cascade_references(outputs, study, members[0], members[-1], target, seed)
                except BeyondCeiling:  # the target exceeds this pair's ceiling
                    continue
                reference_rows.append({"pair": cascade.pair, "target_speedup": target, "seed": seed, **refs})
                for kind in ("random", "oracle", "ceiling"):
                    references.setdefault((reference_label(kind, cascade), target), []).append(
                        {"metric": refs[kind], "speedup_layers": refs["speedup_layers"],
                         "speedup_flops": refs["speedup_flops"]})
        for cascade in (c for c in cascades if len(c.depths) == 2):
            for regularized in (False, True):
                out = CascadeOutputs.from_outputs(outputs, members=cascade.members(regularized=regularized),
                                                  split="test", seed=seed)
                grid = np.unique(np.concatenate([np.linspace(0.5, 1.0, 26), [0.99, 0.995, 0.999]]))
                member_flops, full = member_costs(outputs, study, out.members, out.depths, "test", seed,
                                                  out.example_ids)
                sweeps.append(sweep_cascade(out, grid, metric=study.metric, full_layers=study.full_layers,
                                            member_flops=member_flops, full_flops=full)
                              .assign(method=cascade.label(regularized=regularized), seed=seed))
    main = summarize_answers(answers, study, references=references)
    methods = exits + [c.label(regularized=r) for c in cascades for r in (False, True)]
    methods += [hybrid_label(parse_model(small).depth, small=is_small_member(small)) for small in hybrids]
    unreachable = [{"task": study.task, "method": method, "target_speedup": target, "speedup_unit": study.unit,
                    "verdict": "unreachable"}
                   for method in methods for target in config.targets
                   if not ((main["method"] == method) & (main["target_speedup"] == target)).any()]
    tables["main"] = pd.concat([main, pd.DataFrame(unreachable)], ignore_index=True) if unreachable else main
    tables["gap_closed"] = gap_closed_table(answers, pd.DataFrame(reference_rows),
                                            {c.label(regularized=r): c.pair
                                             for c in cascades if len(c.depths) == 2 for r in (False, True)},
                                            metric=study.metric)
    tables["cascade_sweeps"] = pd.concat(sweeps, ignore_index=True) if sweeps else pd.DataFrame()
    # the signals on DeeBERT, on its self-distilled off-ramps, on the extra objectives and on every two-member cascade
    bases = ([m for m in ("deebert", "fastbert", *config.objectives) if m in exits]
             + [c.label() for c in cascades if len(c.depths) == 2])
    signal_points = []
    if config.signals and bases:
        signal_points = signal_answers(outputs, study, bases, config.signals, config.targets, config.seeds)
        everything = answers + signal_points
        main_signals = summarize_answers(signal_points + [a for a in answers if a.method == "deebert"], study)
        main_signals = main_signals[main_signals["method"] != "deebert"]
        missing = [{"task": study.task, "method": signal_label(base, signal), "target_speedup": target,
                    "speedup_unit": study.unit, "verdict": "unreachable"}
                   for base in bases for signal in config.signals for target in config.targets
                   if not ((main_signals["method"] == signal_label(base, signal))
                           & (main_signals["target_speedup"] == target)).any()]
        tables["main"] = pd.concat([tables["main"], main_signals, pd.DataFrame(missing)], ignore_index=True)
        tables["signals"] = signal_comparison(everything, study)
        pairs = {c.label(regularized=r): c.pair for c in cascades if len(c.depths) == 2 for r in (False, True)}
        pairs |= {signal_label(c.label(), s): c.pair for c in cascades if len(c.depths) == 2 for s in config.signals}
        tables["gap_closed"] = gap_closed_table(everything, pd.DataFrame(reference_rows), pairs, metric=study.metric)
        tables["signal_auroc"] = signal_auroc(outputs, study, bases, config.signals, config.seeds)
    tables["operating_points"] = operating_points_table(answers + signal_points, study)
    if config.risk and bases:
        tables["risk"] = risk_table(outputs, study, bases, config.signals, Risk(*config.risk), config.seeds)
        tables["risk_violations"] = risk_violations(tables["risk"], Risk(*config.risk))
    return tables


EXECUTED_SIGNAL = "learned"  # the signal method the executor check also runs for real, on DeeBERT


def executor_check(task, config: RunConfig, outputs: pd.DataFrame, study: Study, *, seed: int,
                   small_layers: int | None = None) -> pd.DataFrame:
    """Run DeeBERT, DeeBERT with the learned deferral rule (when the run tries it) and the first cascade for real
    at each target (parameters chosen on tune), check that they
    answer as the simulation did, and time them against the full model at the same batch size.

    The batch size is the one the stored outputs were computed with, so the first layer or member sees
    exactly the same batches; later ones run on fewer rows with less padding, where floating-point
    results may differ in the last bits, so an example whose confidence sits within that noise of a
    threshold can exit elsewhere: such examples are counted in `mismatches`, never hidden."""
    batch_size = config.train.eval_batch_size
    full_folder, _ = complete_model(task, config, study.full_layers, seed, progress=False)
    test = task.splits["test"]
    encoded = encode(load_tokenizer(config.backbone), test, config.train.max_length)
    order = pd.Index(test["example_id"].astype(str))
    precision = config.train.precision
    full = run_full(CompleteModel.from_pretrained(full_folder / "best"), encoded, batch_size=batch_size,
                    precision=precision)
    deebert_dir, _ = deebert_model(task, config, seed, progress=False)
    deebert = MultiExitModel.from_pretrained(deebert_dir / "best")
    cascade = config.all_cascades(study.full_layers, small_layers)[0]
    backbones = [config.member_backbone(small=cascade.small and i < len(cascade.depths) - 1)
                 for i in range(len(cascade.depths))]
    members = [CompleteModel.from_pretrained(complete_model(task, config, d, seed, backbone=b, progress=False)[0]
                                             / "best") for d, b in zip(cascade.depths, backbones)]
    member_inputs = [encode(load_tokenizer(b), test, config.train.max_length) for b in backbones]
    rows = []
    learned = EXECUTED_SIGNAL in config.signals
    if learned:  # the learned deferral on DeeBERT, with the fold models and test assignment the simulation used
        tuned = signal_split(outputs, study, "deebert", "tune", seed).stages
        fitted = fit_signal(EXECUTED_SIGNAL, tuned, seed=seed)
        sorted_ids = signal_split(outputs, study, "deebert", "test", seed).stages.example_ids
        fold = scoring_folds(fitted, len(sorted_ids), seed)
        fold = None if fold is None else fold[pd.Index(sorted_ids).get_indexer(order)]
    for target in config.targets:
        runs = []
        sim = tuned_exit_point(outputs, study, "deebert", target, seed)
        if sim is not None:
            runs.append(("deebert", sim, run_early_exit(deebert, encoded, policy=sim.policy, param=sim.param,
                                                        batch_size=batch_size, precision=precision)))
        sim = tuned_signal_points(outputs, study, "deebert", EXECUTED_SIGNAL, [target], seed)[0] if learned else None
        if sim is not None:
            runs.append((sim.method, sim, run_early_exit_signal(deebert, encoded, fitted, sim.param, fold=fold,
                                                                batch_size=batch_size, precision=precision)))
        sim = tuned_cascade_point(outputs, study, cascade.members(), target, seed, label=cascade.label())
        if sim is not None:
            runs.append((cascade.label(), sim, run_cascade(members, member_inputs, sim.values,
                                                           batch_size=batch_size, precision=precision)))
        for method, sim, real in runs:
            position = order.get_indexer(sim.example_ids)
            mismatch = (real.pred[position] != sim.pred) | (real.layers_executed[position] != sim.layers_executed)
            rows.append({"method": method, "target_speedup": target, "seed": seed, "batch_size": batch_size,
                         "params": sim.setting, "examples": len(sim.pred), "mismatches": int(mismatch.sum()),
                         "agree_pred": bool(np.array_equal(real.pred[position], sim.pred)),
                         "agree_layers": bool(np.array_equal(real.layers_executed[position], sim.layers_executed)),
                         "speedup_layers": study.full_layers / real.layers_executed.mean(),
                         "speedup_flops": sim.speedup_flops, "speedup_wallclock": full.seconds / real.seconds,
                         "ms_per_example": 1000 * real.seconds_per_example,
                         "full_ms_per_example": 1000 * full.seconds_per_example})
    return pd.DataFrame(rows)


def reproduce(config: RunConfig, *, progress: bool = True, force: bool = False) -> dict[str, Path]:
    """Run the main job described in the module docstring; returns the paths it wrote.

    When the run folder already holds a finished run of exactly this configuration it is returned as it
    is, unless `force` (the command line always recomputes the tables, reusing every cached model)."""
    out = Path(config.out)
    paths = {"outputs": out / "outputs.parquet", "config": out / "config.json", "figures": out / "figures"}
    if not force and all(p.exists() for p in paths.values()) and (out / "tables" / "main.csv").exists() == config.study:
        if read_json(paths["config"]).get("run") == json.loads(json.dumps(to_jsonable(asdict(config)))):
            print(f"{out}: up to date (outputs, tables and figures of this configuration are there)")
            return paths
    full_layers = check_run(config)
    with cache_lock(config.cache):
        _run_study(config, full_layers, progress=progress)
    return paths


class Stopwatch:
    """Seconds per stage of the main job, in the order they ran: `timings.csv` of the run folder and one line.
    A stage's seconds include its training and its predictions, or only reading them when they were cached."""

    def __init__(self):
        self.rows: list[dict] = []

    @contextlib.contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.rows.append({"stage": name, "seconds": round(time.perf_counter() - start, 2)})

    def write(self, path: Path) -> None:
        atomic_write_text(path, pd.DataFrame(self.rows, columns=["stage", "seconds"]).to_csv(index=False))

    def line(self) -> str:
        total = sum(row["seconds"] for row in self.rows)
        return ("time per stage: " + ", ".join(f"{row['stage']} {row['seconds']:.0f} s" for row in self.rows)
                + f"; {total:.0f} s in all")


def _run_study(config: RunConfig, full_layers: int, *, progress: bool) -> None:
    """Train (or reuse) every model, store the outputs, then the tables, the executor check and the figures."""
    out = Path(config.out)
    clock = Stopwatch()
    ctx = context()
    with clock.stage("data"), ctx.main_first():  # several processes: the main one fetches, the others read
        task = prepare_task(config.task, config.train)
        shape = EncoderShape.of_config(backbone_config(config.backbone))
        small_shape = (EncoderShape.of_config(backbone_config(config.small_backbone)) if config.small_backbone
                       else None)
    for note in task.notes if ctx.is_main else ():
        tqdm.write(f"{task.spec.name}: {note}")
    small_layers = small_shape.num_layers if small_shape else None
    unit = config.unit(widths_differ=small_shape is not None and small_shape.hidden != shape.hidden)
    study = Study(task.spec.name, task.spec.metric, full_layers, shape, task.num_labels, unit=unit,
                  small_shape=small_shape)
    with clock.stage("complete models"):
        frames = [complete_model_outputs(task, config, depths=config.trained_depths(full_layers), progress=progress)]
    difficulty = []
    if config.study:
        names = ", ".join(["DeeBERT", "PABEE", "probes", "FastBERT", *(display_name(o, 1).rsplit(" exit", 1)[0]
                                                                      for o in config.objectives)])
        with clock.stage(f"early-exit models ({names})"):
            frames.append(early_exit_outputs(task, config, progress=progress))
        members = config.regularized_members(full_layers, small_layers)
        for depth, small in members:
            backbone = config.member_backbone(small=small)
            name = complete_name(depth, small=small)
            if small:
                with clock.stage(f"{name} members"):
                    frames += [complete_model(task, config, depth, seed, backbone=backbone, progress=progress)[1]
                               for seed in config.seeds]
            with clock.stage(f"difficulty labels of {name}"):
                easy = difficulty_labels(task, config, depth, backbone=backbone, progress=progress)
            difficulty.append({"depth": depth, "backbone": backbone, "rule": config.difficulty.rule,
                               "runs": config.difficulty.runs, "examples": len(easy), "easy_share": float(easy.mean())})
            with clock.stage(f"{name}-da members"):
                frames += [da_member(task, config, depth, seed, easy, backbone=backbone, progress=progress)[1]
                           for seed in config.seeds]
            if (depth, small) == members[0]:
                # beyond the paper: the same regularizer on DeeBERT's off-ramps, with the labels of the smallest
                # member (of the small backbone when there is one)
                with clock.stage("deebert-da"):
                    frames += [deebert_model(task, config, seed, easy=easy, progress=progress)[1]
                               for seed in config.seeds]
    outputs = validate_outputs(pd.concat(frames, ignore_index=True))
    if not ctx.is_main:  # the other processes of a launched run: their part (training, prediction) is done
        ctx.barrier()
        return
    with ctx.alone():  # the main process alone from here; the others wait at the barrier below
        _finish_study(out, clock, task, config, study, outputs, difficulty, full_layers, small_layers, unit,
                      small_shape)
    ctx.barrier()


def _finish_study(out: Path, clock: Stopwatch, task, config: RunConfig, study: Study, outputs: pd.DataFrame,
                  difficulty: list[dict], full_layers: int, small_layers: int | None, unit: str,
                  small_shape) -> None:
    """The main job after every model's outputs are stored: tables, executor check, config.json, figures."""
    ctx = context()
    write_run(out, outputs=outputs)
    with clock.stage("tables"):
        tables = study_tables(outputs, study, config, small_layers)
    if difficulty:
        tables["difficulty"] = pd.DataFrame(difficulty)
    if config.study:
        with clock.stage("executor check"):
            tables["executor"] = executor_check(task, config, outputs, study, seed=config.seeds[0],
                                                small_layers=small_layers)
    write_run(out, tables=tables, config={
        "run": asdict(config), "task": {"name": task.spec.name, "source": task.source, "notes": list(task.notes),
                                        "fingerprint": task.fingerprint(), "split_seed": task.split_seed,
                                        "tune_from": task.tune_from, "metric": task.spec.metric,
                                        "num_labels": task.num_labels, "label_names": list(task.spec.label_names),
                                        "sizes": {k: len(v) for k, v in task.splits.items()}},
        "full_layers": full_layers, "shape": asdict(study.shape), "speedup_unit": unit,
        "small_shape": asdict(small_shape) if small_shape else None, "environment": environment(),
        "execution": {**ctx.describe(), "precision": config.train.precision,
                      "global_batch": config.train.batch_size,  # the same optimizer steps in any process count
                      "per_process_batch": -(-config.train.batch_size // ctx.num_processes)}})
    with clock.stage("figures"):
        write_figures(out, out / "figures")
    _print_summary(task, config, tables)
    clock.write(out / "timings.csv")
    print(clock.line())


def _print_summary(task, config: RunConfig, tables: dict[str, pd.DataFrame]) -> None:
    fmt = {"float_format": lambda v: f"{v:.2f}", "index": False}
    print(f"\n{task.spec.name}: complete models ({task.spec.metric} on the test split, {config.backbone}, "
          f"seeds {list(config.seeds)}):")
    print(tables["complete_models"].to_string(**fmt))
    if "main" in tables:
        cols = ["target_speedup", "method", "metric", "metric_sd", "speedup_layers", "speedup_flops", "ece",
                "ci_low", "ci_high", "verdict"]
        unit = tables["main"]["speedup_unit"].iloc[0] if "speedup_unit" in tables["main"] else "layers"
        print(f"\nmain table (targets in {unit}; paired 95% interval of the difference to DeeBERT at the same "
              "target):")
        print(tables["main"][[c for c in cols if c in tables["main"]]].to_string(**fmt))
    if "executor" in tables and len(tables["executor"]):
        print(f"\nreal execution vs simulation (batch {config.train.eval_batch_size}):")
        print(tables["executor"][["method", "target_speedup", "mismatches", "speedup_layers",
                                  "speedup_wallclock"]].to_string(**fmt))
    print(f"\nwrote {config.out}/outputs.parquet, tables/, figures/, config.json")
