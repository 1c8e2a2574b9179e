"""Run folders: reading and writing them, opening one as a typed :class:`Run`, and gathering several.

A run folder (`--out DIR` of `reproduce`) holds:

- `outputs.parquet`   every tune/test example x model x exit (schema in `workbench.runs.outputs`);
- `tables/`           every table of the study as CSV and Markdown (see `workbench.study.reproduce`);
- `figures/`          PNG, PDF and a JSON sidecar per figure;
- `config.json`       the full configuration, task source and notes, package versions, git commit;
- `cache/`            trained checkpoints and their outputs, keyed by config and data hash.

`open_run` is what a notebook calls: the run of a task and preset, made first when the folder holds none.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from workbench.config import RunConfig, TaskOptions
from workbench.data.files import DataError
from workbench.data.registry import load_task_options
from workbench.names import Cascade
from workbench.store import content_hash, read_json, write_json, write_parquet, write_table

MANIFEST = "manifest.json"  # tables/manifest.json: which tables this run made, and for which configuration


# ----------------------------------------------------------------------------- reading


def load_run(folder: str | Path) -> tuple[pd.DataFrame, dict]:
    """The outputs table and config.json of a finished run folder."""
    folder = Path(folder)
    if not (folder / "outputs.parquet").is_file():
        raise FileNotFoundError(f"{folder} holds no outputs.parquet; run `python -m workbench reproduce --out "
                                f"{folder}` first")
    return pd.read_parquet(folder / "outputs.parquet"), read_json(folder / "config.json")


def load_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of a run folder by name: those its manifest lists, after checking that the manifest was
    written for the configuration in config.json (a folder from before manifests: every CSV)."""
    folder = Path(folder)
    manifest = folder / "tables" / MANIFEST
    paths = sorted((folder / "tables").glob("*.csv"))
    if manifest.is_file():
        listed = read_json(manifest)
        config = folder / "config.json"
        made_by = content_hash(read_json(config)["run"]) if config.is_file() else None
        if listed.get("run_sha") != made_by:
            raise ValueError(f"{folder}: its tables were written for another configuration than its config.json "
                             f"(an interrupted or mixed run); rerun `python -m workbench reproduce --out {folder}`")
        paths = [folder / "tables" / f"{name}.csv" for name in listed["tables"]]
    return {p.stem: pd.read_csv(p) if p.stat().st_size > 1 else pd.DataFrame() for p in paths}


# ----------------------------------------------------------------------------- writing


def write_run(folder: str | Path, *, outputs: pd.DataFrame | None = None,
              tables: dict[str, pd.DataFrame] | None = None, config: dict | None = None) -> None:
    """Write the parts of a run folder that are given (each file atomically): outputs.parquet; tables/ with
    every table of this run, the tables of an earlier run that this one did not make removed, and a manifest
    naming the tables and the configuration that made them (`config`, required with `tables`); config.json."""
    folder = Path(folder)
    if outputs is not None:
        if tables is None:  # new outputs start a new run: the old config and manifest no longer describe it
            (folder / "tables" / MANIFEST).unlink(missing_ok=True)
            (folder / "config.json").unlink(missing_ok=True)
        write_parquet(folder / "outputs.parquet", outputs)
    if tables is not None:
        if config is None:
            raise ValueError("write_run: tables need the config that made them")
        for name, table in tables.items():
            write_table(folder / "tables" / name, table)
        for path in (folder / "tables").glob("*"):
            if path.suffix in (".csv", ".md") and path.stem not in tables:
                path.unlink()  # a table of an earlier configuration that this one does not make
        write_json(folder / "tables" / MANIFEST, {"run_sha": content_hash(config["run"]), "tables": sorted(tables)})
    if config is not None:
        write_json(folder / "config.json", config)


# ----------------------------------------------------------------------------- the texts of a run


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
    return task_texts(load_task_options(run_task_options(run_dir, config)).splits)


# ----------------------------------------------------------------------------- a run, opened


@dataclass(eq=False)
class Run:
    """A finished run folder, opened: its outputs table, config.json and tables, with the facts notebooks ask."""
    folder: Path
    outputs: pd.DataFrame
    config: dict
    tables: dict[str, pd.DataFrame]

    @classmethod
    def load(cls, folder: str | Path) -> Run:
        outputs, config = load_run(folder)
        return cls(Path(folder), outputs, config, load_tables(folder))

    @property
    def task(self) -> str:
        return self.config["task"]["name"]

    @property
    def metric(self) -> str:
        """The task's metric: 'accuracy', 'f1' or 'mcc'."""
        return self.config["task"]["metric"]

    @property
    def full_layers(self) -> int:
        """L, the layers of the full backbone."""
        return int(self.config["full_layers"])

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.config["run"]["seeds"])

    @property
    def seed(self) -> int:
        """The first training seed, the one single-seed views show."""
        return self.seeds[0]

    @property
    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(self.config["run"])

    def cascade_labels(self, *, regularized: bool = False) -> tuple[str, ...]:
        """Labels of the run's cascades in the order of its config (the first is the one the executor check
        runs), plain or with the difficulty-aware members."""
        return tuple(cascade.label(regularized=regularized) for cascade in run_cascades(self.config))

    def texts(self) -> pd.Series:
        """Texts of the run's examples, by example_id (loads the task's data)."""
        return run_texts(self.folder, self.config)

    def explorer(self, *, split: str = "test", seed: int | None = None):
        """The run's methods, curves and operating points, ready to explore (`workbench.ui.state.ExplorerData`)."""
        from workbench.ui.state import ExplorerData
        return ExplorerData.from_run(self.folder, split=split, seed=seed, loaded=(self.outputs, self.config))


def repository_root() -> Path:
    """The source checkout the package was installed from (editable install), else the current folder."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() and (here / "notebooks").is_dir() else Path.cwd()


class RunNotMade(DataError):
    """A notebook asked for a run that does not exist yet, and making it is a long job it was not asked to
    start. Shown in a notebook as its message alone (IPython's `_render_traceback_`), not as a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def open_run(task: str, preset: str, *, glue_dir: str | None = None, run_dir: str | None = None,
             root: str | Path | None = None, train: bool | None = None) -> Run:
    """What a notebook needs, in one call: the main job of `task` on `preset` (run folder
    `<root>/runs/<task>-<preset>` unless `run_dir`; root defaults to the source checkout), then opened as a
    :class:`Run`. A folder that holds a run of another configuration is brought up to date (its cached models
    reused). A folder that holds no run at all is made only when `train` is true, which is the default for the
    smoke preset alone (about a minute); for the others RunNotMade says which command makes it and how long it
    takes, so that no notebook starts a half-hour job by surprise."""
    from workbench.config import get_preset
    from workbench.study.reproduce import reproduce

    root = Path(root).resolve() if root is not None else repository_root()
    folder = root / (run_dir or f"runs/{task}-{preset}")
    if not (train if train is not None else preset == "smoke") and not (folder / "outputs.parquet").is_file():
        glue = f" --glue-dir {glue_dir}" if glue_dir else ""
        raise RunNotMade(
            f"{folder} holds no run yet, and the {preset!r} preset trains for a while "
            f"({get_preset(preset).description}). Make it from a shell with `python -m workbench reproduce --task "
            f"{task} --preset {preset}{glue} --out {folder}` (the notebooks then read it), or here with "
            "wb.open_run(..., train=True); PRESET = 'smoke' shows the plumbing in about a minute (a tiny random "
            "BERT: its numbers mean nothing).")
    options = TaskOptions(name=task, glue_dir=str((root / glue_dir).resolve()) if glue_dir else None,
                          data_dir=str(root / "data"))
    reproduce(RunConfig.from_preset(preset, task=options, out=str(folder)))
    return Run.load(folder)


def run_cascades(config: dict) -> tuple[Cascade, ...]:
    """The cascades of a run folder's config.json, in the order of the study (the first is the one the executor
    check ran). A folder written before a run could hold both families (no 'small_shape' entry, but a small
    backbone) put the small backbone's members in front of the full model in every one of its cascades."""
    run, full_layers = RunConfig.from_dict(config["run"]), int(config["full_layers"])
    if run.small_backbone and "small_shape" not in config:
        depths = RunConfig(cascades=run.cascades).cascade_depths(full_layers)  # that version's defaults
        return tuple(Cascade(d, small=True) for d in depths)
    small = config.get("small_shape")
    return run.all_cascades(full_layers, small["num_layers"] if small else None)


# ----------------------------------------------------------------------------- several runs


def summarize_runs(runs: list[str | Path], out: str | Path) -> dict[str, Path]:
    """Gather the main tables of several run folders (one per task, or per backbone: a task that comes
    twice is labelled with its run folder's name) into `<out>/main_all`
    (every row, with its run folder) and `<out>/results` (`study.tables.results_table`: targets x methods by
    task, the paper's layout), each as CSV and Markdown."""
    from workbench.study.tables import results_table

    if len(set(map(str, runs))) < len(runs):
        raise ValueError(f"runs {[str(r) for r in runs]}: a run folder is given twice")
    mains = []
    for run in map(Path, runs):
        main = load_tables(run).get("main")  # only tables its config.json produced
        if main is None:
            raise FileNotFoundError(f"{run / 'tables' / 'main.csv'}: no main table; run `python -m workbench "
                                    f"reproduce --out {run}` first (without --complete-only)")
        mains.append(main.assign(run=str(run)))
    tasks = [m["task"].iloc[0] if len(m) else "" for m in mains]
    if len(set(tasks)) < len(tasks):  # e.g. one task on two backbones: tell the columns apart by run folder
        mains = [m.assign(task=m["task"] + " " + Path(m["run"].iloc[0]).name) if tasks.count(t) > 1 else m
                 for m, t in zip(mains, tasks)]
    out = Path(out)
    everything = pd.concat(mains, ignore_index=True)
    write_table(out / "main_all", everything)
    write_table(out / "results", results_table(everything), floatfmt=".1f")
    return {"main_all": out / "main_all.csv", "results": out / "results.md"}
