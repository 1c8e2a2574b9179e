"""How long the study's policy work takes on stored outputs alone (no model runs): a full sweep of DeeBERT's
entropy threshold, of a two-member cascade's threshold, and the operating points chosen on tune for 2x, 3x
and 4x, for one seed of a finished run. The explorer and the tables repeat these on every change, so each
should stay well under a second.

After one untimed pass, each task is timed `--repeats` times; the table gives the median, the fastest and
the slowest run in milliseconds, and how many operating points a sweep evaluated.

    python benchmarks/policy_sweep.py --run runs/rt-quick
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from workbench.methods.cascade import CascadeOutputs, sweep_cascade
from workbench.methods.exits import ExitOutputs, default_grid, sweep
from workbench.methods.points import tuned_cascade_point, tuned_exit_point
from workbench.runs.folder import load_run
from workbench.ui.state import study_of


def timed(fn, repeats: int) -> tuple[list[float], object]:
    result = fn()  # warm-up, untimed
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/rt-quick", help="a run folder written by `reproduce`")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cascade", default="complete-1L,complete-6L", help="members of the swept cascade")
    a = parser.parse_args()
    outputs, config = load_run(a.run)
    study, seed = study_of(config), int(config["run"]["seeds"][0])
    members = tuple(a.cascade.split(","))
    exits = ExitOutputs.from_outputs(outputs, model="deebert", split="test", seed=seed)
    cascade = CascadeOutputs.from_outputs(outputs, members=members, split="test", seed=seed)
    exit_grid = default_grid("entropy", exits)
    cascade_grid = np.unique(np.quantile(cascade.probs[:, 0].max(-1), np.linspace(0, 1, 201)))
    tasks = {
        "DeeBERT entropy sweep": (lambda: sweep(exits, "entropy", exit_grid, metric=study.metric,
                                                full_layers=study.full_layers), len(exit_grid)),
        f"cascade {'>'.join(members)} sweep": (lambda: sweep_cascade(cascade, cascade_grid, metric=study.metric,
                                                                     full_layers=study.full_layers),
                                               len(cascade_grid)),
        "DeeBERT at 2x, 3x, 4x (chosen on tune)": (lambda: [tuned_exit_point(outputs, study, "deebert", t, seed)
                                                            for t in (2.0, 3.0, 4.0)], 3),
        "cascade at 2x, 3x, 4x (chosen on tune)": (lambda: [tuned_cascade_point(outputs, study, members, t, seed,
                                                                                label="cascade")
                                                            for t in (2.0, 3.0, 4.0)], 3),
    }
    rows = []
    for name, (fn, points) in tasks.items():
        seconds, _ = timed(fn, a.repeats)
        rows.append({"task": name, "points": points, "median_ms": 1000 * float(np.median(seconds)),
                     "min_ms": 1000 * min(seconds), "max_ms": 1000 * max(seconds)})
    print(f"{a.run}: {len(exits.example_ids)} test examples, seed {seed}, {a.repeats} repeats")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
