"""Methods of different runs side by side: the same task, split and seeds, each method at each target with its
parameters chosen on tune as in its own run's main table, and the paired 95% interval of its difference to a
baseline method (of any of the runs), over the same test examples.

Two runs that share their cache differ only where their options differ, e.g. a run with `--distill-members`
against one without: `cascade 1L>6L` of each is then a cascade of students against one of plain members::

    python -m workbench compare --baseline runs/rt-quick:"cascade+DA 1L>6L" \\
        runs/rt-kd:"cascade 1L>6L" runs/rt-kd:"cascade+DA 1L>6L" --targets 2,3,4
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workbench.names import parse_signal_method
from workbench.runs.folder import load_run


def parse_entry(text: str) -> tuple[Path, str]:
    """'RUN_FOLDER:METHOD' -> (folder, method); the method is what follows the last ':' that leaves a folder."""
    folder, sep, method = str(text).rpartition(":")
    if not sep or not folder or not method.strip():
        raise ValueError(f"{text!r}: write a run folder and a method of its main table, as RUN:METHOD, e.g. "
                         "'runs/rt-quick:cascade 1L>6L'")
    return Path(folder), method.strip()


def _method_and_rule(data, method: str) -> tuple[str, str]:
    """(method of the run, rule) for a label of its main table: a method with its own rule, or
    '<method> with <signal>' with that signal as its rule (risk-controlled thresholds are not compared)."""
    if method in data.methods:
        return method, data.method(method).rules[0]
    parsed = parse_signal_method(method)
    if parsed and parsed[0] in data.methods and parsed[1] in data.method(parsed[0]).rules and not parsed[2]:
        return parsed[0], parsed[1]
    raise ValueError(f"{data.run_dir} has no method {method!r}; its methods are {', '.join(data.methods)}, each "
                     "also as '<method> with <signal>'")


def compare_runs(entries: list[tuple[str | Path, str]], targets: list[float], *,
                 baseline: tuple[str | Path, str] | None = None) -> pd.DataFrame:
    """One row per entry (run folder, method) and target: the metric (mean over the seeds all runs share), both
    speed-ups, ECE, the per-seed settings, and against `baseline` (default: the first entry) the difference with
    its paired bootstrap 95% interval over the test examples and a verdict. A method out of reach at a target
    gets a row that says so. The runs must hold the same task with the same test examples for every seed."""
    from workbench.study.tables import paired_difference
    from workbench.ui.state import ExplorerData

    entries = [(Path(run), method) for run, method in entries]
    baseline = (Path(baseline[0]), baseline[1]) if baseline is not None else entries[0]
    runs = {}
    for run, _ in dict.fromkeys([baseline, *entries]):
        if run not in runs:
            runs[run] = ExplorerData.from_run(run, loaded=load_run(run))
    tasks = {run: data.config["task"].get("name", data.study.task) for run, data in runs.items()}
    if len(set(tasks.values())) > 1:
        raise ValueError(f"the runs hold different tasks: {tasks}")
    seeds = sorted(set.intersection(*(set(data.seeds) for data in runs.values())))
    if not seeds:
        raise ValueError("the runs share no seed: " + "; ".join(f"{r}: {list(d.seeds)}" for r, d in runs.items()))
    rules = {entry: _method_and_rule(runs[entry[0]], entry[1]) for entry in dict.fromkeys([baseline, *entries])}

    def points(run: Path, method: str, target: float) -> list | None:
        found = []
        base, rule = rules[(run, method)]
        for seed in seeds:
            data = runs[run].with_seed(seed)
            point = data.target_state(base, rule, target)
            if point is None:
                return None
            found.append(point)
        return found

    study = runs[baseline[0]].study
    rows = []
    for target in targets:
        base = points(*baseline, target)
        for run, method in entries:
            row = {"run": str(run), "method": method, "target_speedup": float(target), "seeds": len(seeds)}
            mine = points(run, method, target)
            if mine is None:
                rows.append({**row, "verdict": "unreachable"})
                continue
            row.update({"metric_name": study.metric, "metric": float(np.mean([p.metric for p in mine])),
                        "speedup_layers": float(np.mean([p.speedup_layers for p in mine])),
                        "speedup_flops": float(np.mean([p.speedup_flops for p in mine])),
                        "ece": float(np.mean([p.ece for p in mine])),
                        "settings": "; ".join(p.setting for p in mine)})
            if base is not None and (run, method) != baseline:
                row["difference"] = row["metric"] - float(np.mean([p.metric for p in base]))
                row.update(paired_difference(list(zip(mine, base)), study))
            rows.append(row)
    columns = ["run", "method", "target_speedup", "seeds", "metric_name", "metric", "speedup_layers",
               "speedup_flops", "ece", "difference", "ci_low", "ci_high", "verdict", "settings"]
    return pd.DataFrame(rows).reindex(columns=columns)
