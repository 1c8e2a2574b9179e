"""Measured inference speed-ups of early exit and routed cascades against the full model.

For each run folder written by `python -m workbench reproduce` (its models are reused from the
run's cache; nothing is retrained), at the parameters chosen on the tune split for 2x, 3x and 4x
(`speedup_layers`), this runs on the test split, for real:

- DeeBERT (entropy) and PABEE (patience) with the batched early-exit executor;
- the plain and the difficulty-aware 1L -> L cascades with the routed executor, as specified (each
  batch's escalated rows run the next member at once) and, at batch 32, with `refill` (escalated
  rows wait until a whole batch has gathered; same answers);
- the complete L-layer model, the reference, with the same batches;

at the `--batch-sizes` (default 1, 32 and 256: batch 1 on the first `--batch1-examples` test examples, the
others on all of them). After one untimed warm-up pass, every method and the reference are timed `--repeats`
times in interleaved order, so that a slow spell of the machine hits all of them alike; `speedup_wallclock` is
the median reference time over the median method time, divided by `speedup_flops` (the physical limit; the
target is 0.9) and by `speedup_layers`, and `ratio_min` / `ratio_max` give the spread of the per-repeat
ratios over `speedup_flops`. Each cascade runs as specified and, above batch 1, with `refill` (before and
after: the same answers). The table also has the task metric (mean over seeds, from the run's main table),
`speedup_layers` (of the examples timed) and `speedup_flops` (of the simulation on the whole test split).
Above batch 1 it checks that the executors answer exactly as the simulation did.

    python benchmarks/inference_speedup.py --run runs/rt-quick --run runs/sst2-quick
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from workbench.config import RunConfig
from workbench.data.batching import encode
from workbench.data.registry import prepare_task
from workbench.data.task import limit_rows
from workbench.methods.executor import run_cascade, run_early_exit, run_full
from workbench.methods.points import tuned_cascade_point, tuned_exit_point
from workbench.models.backbones import load_tokenizer
from workbench.models.complete import CompleteModel
from workbench.models.multiexit import MultiExitModel
from workbench.runs.folder import load_run, load_tables, run_cascades
from workbench.study.stages import complete_model, da_member, deebert_model, difficulty_labels, pabee_model
from workbench.ui.state import study_of


def benchmark_run(run: Path, *, targets, batch1_examples: int, seed: int, repeats: int,
                  batch_sizes=(1, 32, 256)) -> pd.DataFrame:
    outputs, saved = load_run(run)
    config = RunConfig.from_dict(saved["run"])
    task = prepare_task(config.task, config.train)
    study = study_of(saved)  # the run's sizes and the unit its targets were chosen in
    layers = study.full_layers
    main = load_tables(run).get("main", pd.DataFrame())
    tokenizer = load_tokenizer(config.backbone)
    test = task.splits["test"]
    encoded = encode(tokenizer, test, config.train.max_length)
    small_set = limit_rows(test, batch1_examples) if batch1_examples < len(test) else test
    encoded_small = encode(tokenizer, small_set, config.train.max_length)
    order = pd.Index(test["example_id"].astype(str))

    def load(folder):
        return CompleteModel.from_pretrained(folder / "best")
    full = load(complete_model(task, config, layers, seed, progress=False)[0])
    deebert = MultiExitModel.from_pretrained(deebert_model(task, config, seed, progress=False)[0] / "best")
    pabee = MultiExitModel.from_pretrained(pabee_model(task, config, seed, progress=False)[0] / "best")
    cascades = {}
    cascade = run_cascades(saved)[0]
    if len(cascade.depths) == 2:  # the first cascade: small-1L > L with a small backbone, else 1L > L (2L > 12L)
        small = config.member_backbone(small=cascade.small)
        small_folder = complete_model(task, config, cascade.depths[0], seed, backbone=small, progress=False)[0]
        easy = difficulty_labels(task, config, cascade.depths[0], backbone=small, progress=False)
        da_folder, _ = da_member(task, config, cascade.depths[0], seed, easy, backbone=small, progress=False)
        small_inputs = encode(load_tokenizer(small), test, config.train.max_length)
        small_inputs_1 = encode(load_tokenizer(small), small_set, config.train.max_length)
        for regularized, first in ((False, small_folder), (True, da_folder)):
            cascades[cascade.label(regularized=regularized)] = (
                cascade.members(regularized=regularized), [load(first), full],
                {b: small_inputs_1 if b == 1 else small_inputs for b in batch_sizes})

    rows = []
    for batch_size in batch_sizes:
        enc = encoded_small if batch_size == 1 else encoded
        plans = [("full", None, lambda e=enc, b=batch_size: run_full(full, e, batch_size=b))]
        for target in targets:
            for name, model in (("deebert", deebert), ("pabee", pabee)):
                sim = tuned_exit_point(outputs, study, name, target, seed)
                if sim is not None:
                    policy = "entropy" if name == "deebert" else "patience"
                    plans.append((name, (target, sim), lambda m=model, p=policy, v=sim.values[0], e=enc, b=batch_size:
                                  run_early_exit(m, e, policy=p, param=v, batch_size=b)))
            for label, (names, members, small_inputs) in cascades.items():
                sim = tuned_cascade_point(outputs, study, names, target, seed, label=label)
                if sim is None:
                    continue
                for refill in ((False, True) if batch_size > 1 else (False,)):
                    plans.append((label + (" refill" if refill else ""), (target, sim),
                                  lambda ms=members, v=sim.values, first=small_inputs[batch_size], e=enc, b=batch_size,
                                  r=refill: run_cascade(ms, [first, e], v, batch_size=b, refill=r)))
        plans[0][2]()  # warm-up: the first pass pays one-time costs (thread pool, allocator)
        seconds = {i: [] for i in range(len(plans))}
        results = {}
        for _ in range(repeats):  # interleaved, so that slow spells of the machine hit every plan alike
            for i, (_, _, execute) in enumerate(plans):
                results[i] = execute()
                seconds[i].append(results[i].seconds)
        reference = np.array(seconds[0])
        for i, (method, (target, sim), _) in list(enumerate(plans))[1:]:
            real, spent = results[i], np.array(seconds[i])
            picked = main[(main["method"] == method.removesuffix(" refill")) & (main["target_speedup"] == target)]
            speedup_layers = study.full_layers / real.layers_executed.mean()  # on the examples timed
            wallclock = np.median(reference) / np.median(spent)
            paired = reference / spent  # the ratio within each repeat, for its spread
            position = order.get_indexer(sim.example_ids)
            agrees = bool(np.array_equal(real.pred[position], sim.pred)) if batch_size > 1 else None
            speedup_flops = sim.full_flops.mean() / sim.flops.mean()
            rows.append({"task": task.spec.name, "method": method, "target": target, "batch": batch_size,
                         "examples": len(real.pred), "metric": float(picked["metric"].iloc[0]) if len(picked)
                         else np.nan, "speedup_layers": speedup_layers, "speedup_flops": speedup_flops,
                         "speedup_wallclock": wallclock, "wallclock_over_flops": wallclock / speedup_flops,
                         "wallclock_over_layers": wallclock / speedup_layers,
                         "ratio_min": paired.min() / speedup_flops, "ratio_max": paired.max() / speedup_flops,
                         "full_ms_per_example": 1000 * np.median(reference) / len(real.pred),
                         "same_preds_as_simulation": agrees})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="run folder (repeat for several tasks)")
    parser.add_argument("--targets", default="2,3,4")
    parser.add_argument("--batch-sizes", default="1,32,256", help="batch sizes to time (default: 1,32,256)")
    parser.add_argument("--batch1-examples", type=int, default=200, help="test examples timed at batch size 1")
    parser.add_argument("--seed", type=int, default=0, help="which seed's models to time")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per method, interleaved; medians")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    targets = [float(t) for t in args.targets.split(",")]
    batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    table = pd.concat([benchmark_run(Path(r), targets=targets, batch1_examples=args.batch1_examples, seed=args.seed,
                                     repeats=args.repeats, batch_sizes=batch_sizes)
                       for r in args.run], ignore_index=True)
    print(f"inference on the test split, {args.threads} threads; speed-ups relative to the full model "
          f"in the same run")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    summary = table.pivot_table(index=["task", "method"], columns=["batch", "target"], values="wallclock_over_flops")
    print("\nspeedup_wallclock / speedup_flops by batch size and target (1.00 = the FLOPs promise kept; target 0.9):")
    print(summary.to_string(float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
