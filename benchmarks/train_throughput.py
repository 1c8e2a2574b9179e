"""Training throughput: length-bucketed dynamic padding vs fixed padding to 128, on SST-2 sentences.

Runs the same training steps (same model, optimizer, examples and batch size) twice, each in a fresh
child process so that peak memory is measured per variant:

- `bucketed`: batches of similar lengths (workbench.data.batching), padded to the longest in the batch;
- `fixed-128`: random batches padded to 128 tokens, as peer implementations do.

Prints one table with examples/s, peak resident memory and the ratio bucketed / fixed.

    python benchmarks/train_throughput.py --glue-dir ../shared/glue
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time


def run_variant(variant: str, args: argparse.Namespace, queue) -> None:
    import numpy as np
    import torch

    from workbench.data.batching import batch_indices, collate, encode
    from workbench.data.registry import load_task
    from workbench.data.task import limit_rows
    from workbench.models.backbones import load_tokenizer
    from workbench.models.complete import CompleteModel, ModelSpec

    torch.set_num_threads(args.threads)
    task = load_task("sst2", glue_dir=args.glue_dir)
    train = limit_rows(task.splits["train"], args.examples, seed=0)
    encoded = encode(load_tokenizer(args.model), train, 128)
    labels = torch.tensor(train["label"].to_numpy())
    model = CompleteModel.build(ModelSpec(backbone=args.model, depth=args.depth, num_labels=2), seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    bucket = variant == "bucketed"
    batches = batch_indices(encoded.lengths, args.batch_size, shuffle=True, seed=0, bucket=bucket)
    pad_to = None if bucket else 128

    def step(idx):
        batch = collate(encoded, idx, pad_to=pad_to)
        loss = torch.nn.functional.cross_entropy(model(**batch).logits, labels[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return batch["input_ids"].shape[1]

    model.train()
    for idx in batches[:args.warmup]:  # warm-up steps, not timed
        step(idx)
    timed = batches[args.warmup:]
    start = time.perf_counter()
    widths = [step(idx) for idx in timed]
    seconds = time.perf_counter() - start
    n = int(sum(len(idx) for idx in timed))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"variant": variant, "examples": n, "seconds": seconds, "examples_per_s": n / seconds,
               "mean_padded_length": float(np.mean(widths)), "mean_tokens": float(encoded.lengths.mean()),
               "peak_rss_mb": peak_mb})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glue-dir", default="../shared/glue", help="GLUE folder holding SST-2/train.tsv")
    parser.add_argument("--model", default="minilm", help="backbone (default: packaged all-MiniLM-L6-v2)")
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--examples", type=int, default=1024, help="SST-2 training sentences per variant")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import pandas as pd

    ctx = mp.get_context("spawn")
    rows = []
    for variant in ("bucketed", "fixed-128"):
        queue = ctx.Queue()
        proc = ctx.Process(target=run_variant, args=(variant, args, queue))
        proc.start()
        rows.append(queue.get())
        proc.join()
        if proc.exitcode:
            raise SystemExit(f"variant {variant} failed with exit code {proc.exitcode}")
    table = pd.DataFrame(rows)
    print(f"training throughput, {args.model} {args.depth}L, batch {args.batch_size}, "
          f"{args.threads} threads, SST-2 train sentences")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    bucketed, fixed = table.iloc[0], table.iloc[1]
    print(f"\nthroughput ratio bucketed / fixed-128: {bucketed.examples_per_s / fixed.examples_per_s:.2f}x")
    print(f"peak memory ratio bucketed / fixed-128: {bucketed.peak_rss_mb / fixed.peak_rss_mb:.2f}")


if __name__ == "__main__":
    main()
