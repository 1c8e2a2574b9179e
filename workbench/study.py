"""The main job, `reproduce`: train every model once, store every output, then tables, checks and figures.

A run folder (`--out DIR`) holds:

- `outputs.parquet`   every tune/test example x model x exit (schema in `workbench.outputs`):
                      complete-kL, complete-kL-da (difficulty-aware), deebert, pabee, probe;
- `tables/`           complete_models, early_exit (policy sweeps), exit_references, sufficiency, dis,
                      calibration, difficulty, cascade_sweeps, main (the paper's table with intervals
                      and verdicts), gap_closed, executor (real execution vs simulation, wall-clock),
                      each as CSV and Markdown;
- `figures/`          speed_accuracy, sufficiency, dis_heatmap, reliability (PNG, PDF, JSON sidecar),
                      regenerated from the stored files by `python -m workbench figures --run DIR`;
- `config.json`       the full configuration, task source and notes, package versions, git commit;
- `cache/`            trained checkpoints and their outputs, keyed by config and data hash.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .analysis import dis_table
from .batching import encode
from .calibration import reliability_table
from .cascade import CascadeOutputs, sweep_cascade
from .cost import EncoderShape
from .earlyexit import MultiExitModel
from .executor import run_cascade, run_early_exit, run_full
from .metrics import task_metric
from .models import CompleteModel, backbone_config, backbone_layers, load_tokenizer
from .outputs import validate_outputs
from .pipeline import (RunConfig, complete_model, complete_model_outputs, da_member, deebert_model,
                       difficulty_labels, early_exit_outputs)
from .plots import dis_heatmap, speed_accuracy, sufficiency_bars, save_figure, use_style
from .report import (Study, cascade_answers, cascade_references, calibration_summary, early_exit_answers,
                     early_exit_sweeps, exit_references, gap_closed_table, mean_over_seeds, static_answers,
                     results_table, sufficiency_table, summarize_answers)
from .store import environment, read_json, to_jsonable, write_json, write_parquet, write_table
from .training import limit_rows


def member_names(depths: tuple[int, ...], *, regularized: bool = False, small: bool = False) -> tuple[str, ...]:
    """Model names of a cascade's members; with `regularized`, non-final members are the -da models; with
    `small`, non-final members come from the run's small backbone ('small-<k>L')."""
    names = [f"{'small' if small and i < len(depths) - 1 else 'complete'}-{d}L" for i, d in enumerate(depths)]
    if regularized:
        names[:-1] = [f"{n}-da" for n in names[:-1]]
    return tuple(names)


def cascade_label(depths: tuple[int, ...], *, regularized: bool = False) -> str:
    return ("cascade+DA " if regularized else "cascade ") + ">".join(f"{d}L" for d in depths)


def summarize_depths(outputs: pd.DataFrame, *, metric: str, full_layers: int, split: str = "test") -> pd.DataFrame:
    """Task metric per complete model (mean and sd over seeds) with its layer speed-up L / k."""
    rows = []
    complete = outputs[(outputs["split"] == split) & outputs["model"].str.fullmatch(r"complete-\d+L")]
    for (model, layer), group in complete.groupby(["model", "layer"], sort=False):
        per_seed = [task_metric(metric, g["label"], g["pred"]) for _, g in group.groupby("seed")]
        rows.append({"model": model, "layers": int(layer), "metric_name": metric, "metric": float(np.mean(per_seed)),
                     "metric_sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
                     "seeds": len(per_seed), "examples": int(group["example_id"].nunique()),
                     "speedup_layers": full_layers / layer})
    return pd.DataFrame(rows).sort_values("layers").reset_index(drop=True)


def reliability_bins(outputs: pd.DataFrame, *, split: str = "test") -> pd.DataFrame:
    """Per-bin reliability tables (10 equal-width bins, seeds pooled) of every exit of depth equal to the
    smallest complete model: that model with and without the regularizer, DeeBERT's and PABEE's exit."""
    test = outputs[outputs["split"] == split]
    small = sorted(int(m[9:-1]) for m in test["model"].unique() if m.startswith("complete-") and m.endswith("L"))
    if not small:
        return pd.DataFrame()
    k, parts = small[0], []
    for model in (f"complete-{k}L", f"complete-{k}L-da", "deebert", "deebert-da", "pabee", "probe"):
        rows = test[(test["model"] == model) & (test["layer"] == k)]
        if len(rows):
            table = reliability_table(rows["confidence"].to_numpy(), rows["correct"].to_numpy())
            parts.append(table.assign(model=model, layer=k))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def study_tables(outputs: pd.DataFrame, study: Study, config: RunConfig) -> dict[str, pd.DataFrame]:
    """Every table of the study, from the outputs table alone."""
    tables = {"complete_models": summarize_depths(outputs, metric=study.metric, full_layers=study.full_layers)}
    tables["dis"] = mean_over_seeds(dis_table(outputs), ["model", "layer"])
    tables["calibration"] = mean_over_seeds(calibration_summary(outputs), ["model", "layer"])
    tables["reliability"] = reliability_bins(outputs)
    if not config.study:
        return tables
    tables["early_exit"] = early_exit_sweeps(outputs, study)
    tables["exit_references"] = exit_references(outputs, study)
    tables["sufficiency"] = sufficiency_table(outputs, study, target=config.sufficiency_target)
    cascades = config.cascade_depths(study.full_layers)
    small = bool(config.small_backbone)
    small_shape = EncoderShape.of_config(backbone_config(config.small_backbone)) if small else study.shape

    def names(depths, regularized=False):
        return member_names(depths, regularized=regularized, small=small)

    def shapes(depths):
        return [small_shape] * (len(depths) - 1) + [study.shape]
    answers, references, reference_rows, sweeps = [], {}, [], []
    for seed in config.seeds:
        for target in config.targets:
            exits = [m for m in ("deebert", "deebert-da", "pabee") if (outputs["model"] == m).any()]
            for found in [static_answers(outputs, study, target, seed)] + \
                    [early_exit_answers(outputs, study, m, target, seed) for m in exits]:
                if found is not None:
                    answers.append(found)
            for depths in cascades:
                for regularized in (False, True):
                    found = cascade_answers(outputs, study, names(depths, regularized), target, seed,
                                            name=cascade_label(depths, regularized=regularized),
                                            shapes=shapes(depths))
                    if found is not None:
                        answers.append(found)
            for depths in (d for d in cascades if len(d) == 2):  # the reference lines are for two members
                pair = ">".join(f"{d}L" for d in depths)
                try:
                    refs = cascade_references(outputs, study, names(depths)[0], names(depths)[-1], target, seed)
                except ValueError:  # the target exceeds this pair's ceiling
                    continue
                reference_rows.append({"pair": pair, "target_speedup": target, "seed": seed, **refs})
                for name, key in (("random escalation", "random"), ("oracle cascade", "oracle"),
                                  ("oracle ceiling", "ceiling")):
                    references.setdefault((f"{name} {pair}", target), []).append(refs[key])
        for depths in cascades:
            if len(depths) != 2:
                continue
            for regularized in (False, True):
                out = CascadeOutputs.from_outputs(outputs, members=names(depths, regularized),
                                                  split="test", seed=seed)
                grid = np.unique(np.concatenate([np.linspace(0.5, 1.0, 26), [0.99, 0.995, 0.999]]))
                sweeps.append(sweep_cascade(out, grid, metric=study.metric, full_layers=study.full_layers)
                              .assign(method=cascade_label(depths, regularized=regularized), seed=seed))
    main = summarize_answers(answers, study, references=references)
    methods = [m for m in ("deebert", "deebert-da", "pabee") if (outputs["model"] == m).any()] + \
        [cascade_label(d, regularized=r) for d in cascades for r in (False, True)]
    unreachable = [{"task": study.task, "method": method, "target_speedup": target, "verdict": "unreachable"}
                   for method in methods for target in config.targets
                   if not ((main["method"] == method) & (main["target_speedup"] == target)).any()]
    tables["main"] = pd.concat([main, pd.DataFrame(unreachable)], ignore_index=True) if unreachable else main
    tables["gap_closed"] = gap_closed_table(answers, pd.DataFrame(reference_rows),
                                            {cascade_label(d, regularized=r): ">".join(f"{k}L" for k in d)
                                             for d in cascades if len(d) == 2 for r in (False, True)})
    tables["cascade_sweeps"] = pd.concat(sweeps, ignore_index=True) if sweeps else pd.DataFrame()
    return tables


def executor_check(task, config: RunConfig, outputs: pd.DataFrame, study: Study, *, seed: int) -> pd.DataFrame:
    """Run DeeBERT and the first cascade for real at each target (parameters chosen on tune), check that they
    answer as the simulation did, and time them against the full model at the same batch size.

    The batch size is the one the stored outputs were computed with, so the first layer or member sees
    exactly the same batches; later ones run on fewer rows with less padding, where floating-point
    results may differ in the last bits, so an example whose confidence sits within that noise of a
    threshold can exit elsewhere: such examples are counted in `mismatches`, never hidden."""
    batch_size = config.train.eval_batch_size
    full_folder, _ = complete_model(task, config, study.full_layers, seed, progress=False)
    test = limit_rows(task.splits["test"], config.train.eval_limit)
    encoded = encode(load_tokenizer(config.backbone), test, config.train.max_length)
    order = pd.Index(test["example_id"].astype(str))
    full = run_full(CompleteModel.from_pretrained(full_folder / "best"), encoded, batch_size=batch_size)
    deebert_dir, _ = deebert_model(task, config, seed, progress=False)
    deebert = MultiExitModel.from_pretrained(deebert_dir / "best")
    depths = config.cascade_depths(study.full_layers)[0]
    backbones = [config.member_backbone(final=i == len(depths) - 1) for i in range(len(depths))]
    members = [CompleteModel.from_pretrained(complete_model(task, config, d, seed, backbone=b, progress=False)[0]
                                             / "best") for d, b in zip(depths, backbones)]
    member_inputs = [encode(load_tokenizer(b), test, config.train.max_length) for b in backbones]
    small_shape = EncoderShape.of_config(backbone_config(backbones[0]))
    rows = []
    for target in config.targets:
        runs = []
        sim = early_exit_answers(outputs, study, "deebert", target, seed)
        if sim is not None:
            runs.append(("deebert", sim, run_early_exit(deebert, encoded, policy="entropy", param=sim.values[0],
                                                        batch_size=batch_size)))
        sim = cascade_answers(outputs, study, member_names(depths, small=bool(config.small_backbone)), target, seed,
                              name=cascade_label(depths), shapes=[small_shape] * (len(depths) - 1) + [study.shape])
        if sim is not None:
            runs.append((cascade_label(depths), sim, run_cascade(members, member_inputs, sim.values,
                                                                 batch_size=batch_size)))
        for method, sim, real in runs:
            position = order.get_indexer(sim.example_ids)
            mismatch = (real.pred[position] != sim.pred) | (real.layers_executed[position] != sim.layers_executed)
            rows.append({"method": method, "target_speedup": target, "seed": seed, "batch_size": batch_size,
                         "params": sim.params, "examples": len(sim.pred), "mismatches": int(mismatch.sum()),
                         "agree_pred": bool(np.array_equal(real.pred[position], sim.pred)),
                         "agree_layers": bool(np.array_equal(real.layers_executed[position], sim.layers_executed)),
                         "speedup_layers": study.full_layers / real.layers_executed.mean(),
                         "speedup_wallclock": full.seconds / real.seconds,
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
    task = config.task.load()
    for note in task.notes:
        tqdm.write(f"{task.spec.name}: {note}")
    full_layers = backbone_layers(config.backbone)
    study = Study(task.spec.name, task.spec.metric, full_layers,
                  EncoderShape.of_config(backbone_config(config.backbone)), task.num_labels)
    frames = [complete_model_outputs(task, config, depths=config.trained_depths(full_layers), progress=progress)]
    difficulty = []
    if config.study:
        frames.append(early_exit_outputs(task, config, progress=progress))
        small = config.member_backbone(final=False)
        for depth in config.small_depths(full_layers):
            if config.small_backbone:
                frames += [complete_model(task, config, depth, seed, backbone=small, progress=progress)[1]
                           for seed in config.seeds]
            easy = difficulty_labels(task, config, depth, backbone=small, progress=progress)
            difficulty.append({"depth": depth, "backbone": small, "rule": config.difficulty.rule,
                               "runs": config.difficulty.runs, "examples": len(easy), "easy_share": float(easy.mean())})
            frames += [da_member(task, config, depth, seed, easy, backbone=small, progress=progress)[1]
                       for seed in config.seeds]
            if depth == min(d for m in config.cascade_depths(full_layers) for d in m):
                # beyond the paper: the same regularizer on DeeBERT's off-ramps, with the smallest member's labels
                frames += [deebert_model(task, config, seed, easy=easy, progress=progress)[1] for seed in config.seeds]
    outputs = validate_outputs(pd.concat(frames, ignore_index=True))
    write_parquet(paths["outputs"], outputs)
    tables = study_tables(outputs, study, config)
    if difficulty:
        tables["difficulty"] = pd.DataFrame(difficulty)
    if config.study:
        tables["executor"] = executor_check(task, config, outputs, study, seed=config.seeds[0])
    for name, table in tables.items():
        write_table(out / "tables" / name, table)
    write_json(paths["config"], {
        "run": asdict(config), "task": {"name": task.spec.name, "source": task.source, "notes": list(task.notes),
                                        "fingerprint": task.fingerprint(), "split_seed": task.split_seed,
                                        "tune_from": task.tune_from, "metric": task.spec.metric,
                                        "num_labels": task.num_labels,
                                        "sizes": {k: len(v) for k, v in task.splits.items()}},
        "full_layers": full_layers, "shape": asdict(study.shape), "environment": environment()})
    write_figures(out, paths["figures"])
    _print_summary(task, config, tables)
    return paths


def _print_summary(task, config: RunConfig, tables: dict[str, pd.DataFrame]) -> None:
    fmt = {"float_format": lambda v: f"{v:.2f}", "index": False}
    print(f"\n{task.spec.name}: complete models ({task.spec.metric} on the test split, {config.backbone}, "
          f"seeds {list(config.seeds)}):")
    print(tables["complete_models"].to_string(**fmt))
    if "main" in tables:
        cols = ["target_speedup", "method", "metric", "metric_sd", "speedup_layers", "speedup_flops", "ece",
                "ci_low", "ci_high", "verdict"]
        print("\nmain table (paired 95% interval of the difference to DeeBERT at the same target):")
        print(tables["main"][[c for c in cols if c in tables["main"]]].to_string(**fmt))
    if "executor" in tables and len(tables["executor"]):
        print(f"\nreal execution vs simulation (batch {config.train.eval_batch_size}):")
        print(tables["executor"][["method", "target_speedup", "mismatches", "speedup_layers",
                                  "speedup_wallclock"]].to_string(**fmt))
    print(f"\nwrote {config.out}/outputs.parquet, tables/, figures/, config.json")


def open_run(task: str, preset: str, *, glue_dir: str | None = None, run_dir: str | None = None,
             root: str | Path = ".") -> tuple[Path, pd.DataFrame, dict, dict[str, pd.DataFrame]]:
    """What a notebook needs: run (or reuse) the main job of `task` on `preset` under the repository `root`
    (run folder `runs/<task>-<preset>` unless `run_dir`), then its folder, outputs, config and tables."""
    from .pipeline import TaskOptions
    root = Path(root).resolve()
    folder = root / (run_dir or f"runs/{task}-{preset}")
    options = TaskOptions(name=task, glue_dir=str((root / glue_dir).resolve()) if glue_dir else None,
                          data_dir=str(root / "data"))
    reproduce(RunConfig.from_preset(preset, task=options, out=str(folder)))
    outputs, config = load_run(folder)
    return folder, outputs, config, load_tables(folder)


def load_run(folder: str | Path) -> tuple[pd.DataFrame, dict]:
    """The outputs table and config.json of a finished run folder."""
    folder = Path(folder)
    if not (folder / "outputs.parquet").is_file():
        raise FileNotFoundError(f"{folder} holds no outputs.parquet; run `python -m workbench reproduce --out "
                                f"{folder}` first")
    return pd.read_parquet(folder / "outputs.parquet"), read_json(folder / "config.json")


def load_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of a run folder by name."""
    return {p.stem: pd.read_csv(p) if p.stat().st_size > 1 else pd.DataFrame()
            for p in sorted((Path(folder) / "tables").glob("*.csv"))}


def summarize_runs(runs: list[str | Path], out: str | Path) -> dict[str, Path]:
    """Gather the main tables of several run folders (one per task, or per backbone: a task that comes
    twice is labelled with its run folder's name) into `<out>/main_all`
    (every row, with its run folder) and `<out>/results` (`report.results_table`: targets x methods by
    task, the paper's layout), each as CSV and Markdown."""
    if len(set(map(str, runs))) < len(runs):
        raise ValueError(f"runs {[str(r) for r in runs]}: a run folder is given twice")
    mains = []
    for run in map(Path, runs):
        table = run / "tables" / "main.csv"
        if not table.is_file():
            raise FileNotFoundError(f"{table}: no main table; run `python -m workbench reproduce --out {run}` "
                                    "first (without --complete-only)")
        mains.append(pd.read_csv(table).assign(run=str(run)))
    tasks = [m["task"].iloc[0] if len(m) else "" for m in mains]
    if len(set(tasks)) < len(tasks):  # e.g. one task on two backbones: tell the columns apart by run folder
        mains = [m.assign(task=m["task"] + " " + Path(m["run"].iloc[0]).name) if tasks.count(t) > 1 else m
                 for m, t in zip(mains, tasks)]
    out = Path(out)
    everything = pd.concat(mains, ignore_index=True)
    write_table(out / "main_all", everything)
    write_table(out / "results", results_table(everything), floatfmt=".1f")
    return {"main_all": out / "main_all.csv", "results": out / "results.md"}


def write_figures(run: str | Path, out: str | Path) -> list[Path]:
    """Regenerate every figure of a run folder from its stored tables and outputs (no model runs)."""
    run, out = Path(run), Path(out)
    outputs, config = load_run(run)
    tables = load_tables(run)
    use_style()
    written, metric = [], config["task"].get("metric", "accuracy")
    settings = {"run": str(run), "task": config["task"]["name"]}
    if len(tables.get("early_exit", ())):
        ax = speed_accuracy(speed_accuracy_curves(tables), metric_name=metric,
                            references=speed_accuracy_references(tables))
        ax.set_title(f"{config['task']['name']}: speed vs {metric} (test split, mean over seeds)")
        written += save_figure(ax, out / "speed_accuracy", config=settings)
    if len(tables.get("sufficiency", ())):
        ax = sufficiency_bars(tables["sufficiency"])
        ax.set_title("instances DeeBERT exits at layer k")
        written += save_figure(ax, out / "sufficiency", config=settings)
    if "dis" in tables:
        ax = dis_heatmap(tables["dis"])
        ax.set_title("Difficulty Inversion Score (test split; 50 = chance)")
        written += save_figure(ax, out / "dis_heatmap", config=settings)
    written += _reliability_figure(tables, out / "reliability", settings)
    return written


def speed_accuracy_curves(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The curves of the speed-accuracy figure (method, speedup_layers, metric), averaged over seeds: each
    baseline's own exit rule over its grid, the two-member cascades over a threshold grid, the complete models."""
    sweeps = tables["early_exit"]
    own = sweeps[(sweeps["method"].isin(["deebert", "deebert-da"]) & (sweeps["policy"] == "entropy")) |
                 ((sweeps["method"] == "pabee") & (sweeps["policy"] == "patience"))]
    curves = own.groupby(["method", "param"])[["speedup_layers", "metric"]].mean().reset_index()
    parts = [curves]
    if "cascade_sweeps" in tables:
        cs = tables["cascade_sweeps"]
        key = [c for c in cs.columns if c.startswith("threshold")]
        parts.append(cs.groupby(["method", *key], dropna=False)[["speedup_layers", "metric"]].mean().reset_index())
    static = tables["complete_models"].assign(method="complete kL")
    parts.append(static[["method", "speedup_layers", "metric"]])
    return pd.concat(parts, ignore_index=True)[["method", "speedup_layers", "metric"]]


def speed_accuracy_references(tables: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """The reference lines of the speed-accuracy figure: oracle exit, random exit, and the random and oracle
    escalation of the first two-member cascade, averaged over seeds."""
    refs, main = tables.get("exit_references"), tables.get("main")
    parts = []
    if refs is not None:  # oracle exit: one point per seed, averaged; random exit: a line on a fixed grid
        parts.append(refs.groupby(["method", refs["speedup_layers"].round(6)])["metric"].mean().reset_index())
        oracle = refs[refs["method"] == "oracle exit"]
        if len(oracle):
            parts[-1] = pd.concat([parts[-1][parts[-1]["method"] != "oracle exit"],
                                   oracle[["speedup_layers", "metric"]].mean().to_frame().T.assign(method="oracle exit")])
    if main is not None:
        lines = main[main["method"].str.startswith(("random escalation ", "oracle cascade "))]
        if len(lines):
            first = lines["method"].iloc[0].rsplit(" ", 1)[1]  # the first pair, e.g. 1L>6L
            parts.append(lines[lines["method"].str.endswith(" " + first)][["method", "speedup_layers", "metric"]])
    return pd.concat(parts, ignore_index=True) if parts else None


def _reliability_figure(tables: dict[str, pd.DataFrame], stem: Path, settings: dict) -> list[Path]:
    """Reliability diagrams of the smallest member, with and without the regularizer, and the early-exit
    classifiers of the same depth (test split, all seeds pooled), from the stored per-bin table."""
    from .calibration import reliability_diagram
    import matplotlib.pyplot as plt
    bins = tables.get("reliability")
    if bins is None or bins.empty:
        return []
    labels = {"complete-{k}L": "complete {k}L", "complete-{k}L-da": "complete {k}L + DA", "deebert": "DeeBERT exit {k}",
              "deebert-da": "DeeBERT + DA exit {k}", "pabee": "PABEE exit {k}", "probe": "probe (pre-trained) {k}"}
    panels = list(dict.fromkeys(bins["model"]))
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, model in zip(axes.flat, panels):
        table = bins[bins["model"] == model]
        k = int(table["layer"].iloc[0])
        label = next(v for key, v in labels.items() if key.format(k=k) == model).format(k=k)
        reliability_diagram(table.drop(columns=["model", "layer"]), ax=ax, label=label)
        ax.set_title(f"{label} (test, seeds pooled)", fontsize="medium")
        ax.legend(fontsize="x-small", loc="upper left")
    return save_figure(fig, stem, config={**settings, "panels": panels})
