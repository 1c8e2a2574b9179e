"""What bf16 autocast buys on this CPU: MiniLM-6L training steps and inference in float32 and in bfloat16
autocast (`torch.autocast("cpu", dtype=torch.bfloat16)`), on real rt snippets (batch 32, 64 tokens), and how
far bf16's answers move from float32's on the same inputs.

Each setting runs one untimed warm-up, then `--repeats` timed rounds of `--steps` batches, interleaved
(float32, bf16, float32, ...) so that a slow spell of the machine hits both alike; the table gives the
median examples per second and the spread. The agreement rows compare the two precisions' answers of one
freshly initialised and one briefly trained model on `--examples` test snippets.

    python benchmarks/precision.py
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from workbench.data.batching import batch_indices, collate, encode
from workbench.data.registry import load_task
from workbench.models.backbones import load_tokenizer
from workbench.models.complete import CompleteModel, ModelSpec

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def autocast(precision: str):
    dtype = PRECISIONS[precision]
    return torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="batches per timed round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=512, help="test snippets for the agreement rows")
    parser.add_argument("--data-dir", default="data")
    a = parser.parse_args()
    torch.manual_seed(0)
    task = load_task("rt", data_dir=a.data_dir)
    test = task.splits["test"].head(a.examples)
    encoded = encode(load_tokenizer("minilm"), test, 64)
    labels = torch.tensor(test["label"].to_numpy())
    batches = [(collate(encoded, idx), labels[torch.as_tensor(idx)])
               for idx in batch_indices(encoded.lengths, 32, shuffle=False)]
    model = CompleteModel.build(ModelSpec(backbone="minilm", depth=6, num_labels=2), seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)

    def train_round(precision: str) -> None:
        model.train()
        for i in range(a.steps):
            batch, gold = batches[i % len(batches)]
            with autocast(precision):
                logits = model(**batch).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), gold)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    def infer_round(precision: str) -> None:
        model.eval()
        with torch.inference_mode(), autocast(precision):
            for i in range(a.steps):
                model(**batches[i % len(batches)][0])

    rows = []
    for task_name, fn in (("train step", train_round), ("inference", infer_round)):
        times = {p: [] for p in PRECISIONS}
        for p in PRECISIONS:
            fn(p)  # warm-up
        for _ in range(a.repeats):
            for p in PRECISIONS:
                start = time.perf_counter()
                fn(p)
                times[p].append(a.steps * 32 / (time.perf_counter() - start))
        for p in PRECISIONS:
            rows.append({"task": task_name, "precision": p, "examples_per_s": float(np.median(times[p])),
                         "min": min(times[p]), "max": max(times[p])})
    table = pd.DataFrame(rows)
    fp32 = table[table["precision"] == "fp32"].set_index("task")["examples_per_s"]
    table["vs_fp32"] = table.apply(lambda r: r["examples_per_s"] / fp32[r["task"]], axis=1)
    print(f"MiniLM-6L, batch 32, 64 tokens, {torch.get_num_threads()} threads, {a.repeats} rounds of {a.steps} "
          f"batches")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))

    model.eval()
    probs = {}
    with torch.inference_mode():
        for p in PRECISIONS:
            with autocast(p):
                probs[p] = torch.cat([torch.softmax(model(**b).logits.float(), -1) for b, _ in batches]).numpy()
    same = float(np.mean(probs["fp32"].argmax(1) == probs["bf16"].argmax(1)))
    gap = float(np.abs(probs["fp32"] - probs["bf16"]).max())
    steps = (a.repeats + 1) * len(PRECISIONS) * a.steps
    print(f"after {steps} training steps: bf16 answers as fp32 on {100 * same:.1f}% of "
          f"{len(test)} test snippets; largest probability difference {gap:.4f}")


if __name__ == "__main__":
    main()
