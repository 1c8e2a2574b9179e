"""A check of the workbench on a GPU (or any device), offline and without data or backbone files.

It needs only torch, transformers, accelerate, pandas, pyarrow, scikit-learn and tqdm: the models are built from
configurations with random weights (a tiny BERT like the smoke preset's, and a MiniLM-shaped and a BERT-base-
shaped encoder), and the inputs are random token sequences of 16 to 64 tokens with a learnable label (does
token 1000 occur). It prints three tables:

1. training throughput (examples/s) of the step `fit` takes (forward under autocast, PABEE's loss, scaled
   backward, clipping, AdamW; `fit` itself needs a tokenizer from files) on the CPU and on the device;
2. the batched early-exit executor against the full model on the device, at batch 32 and 256: the thresholds
   are set on the simulation (every exit's logits computed in one pass) to reach about 2x, 3x and 4x in
   layers, and the table gives the FLOPs speed-up, the wall-clock speed-up and their ratio;
3. the executor's answers against the simulation's: 0 mismatches expected in fp32. Under bf16 or fp16 a few
   may differ, because the executor runs the remaining rows of a batch as a smaller batch: other kernels, other
   rounding, and an example whose confidence lies within rounding of the threshold can exit elsewhere.

    python benchmarks/gpu_check.py --device cuda --precision bf16     # benchmarks/gpu_check.sh
    python benchmarks/gpu_check.py --device cpu --small               # a quick run of the same code on a CPU
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from torch import nn
from transformers import BertConfig, BertModel

from workbench.data.batching import Encoded, batch_indices, collate
from workbench.measures.cost import EncoderShape, complete_flops, exit_flops
from workbench.methods.executor import run_early_exit, run_full
from workbench.methods.exits import ExitOutputs, apply_policy
from workbench.models.complete import ClassifierHead
from workbench.models.multiexit import MultiExitModel, MultiExitSpec, pabee_objective
from workbench.models.precision import autocast, grad_scaler
from workbench.models.training import predict_logits, to_device
from workbench.runs.distributed import configure

SHAPES = {"tiny": dict(hidden_size=32, num_hidden_layers=6, num_attention_heads=2, intermediate_size=64),
          "minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
          "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)}
MARK = 1000  # the label: does this token occur


def synthetic(n: int, seed: int, max_length: int = 64) -> tuple[Encoded, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(16, max_length + 1, size=n)
    ids, labels = [], np.zeros(n, dtype=np.int64)
    for i, length in enumerate(lengths):
        body = rng.integers(1999, 30000, size=length - 2)
        if rng.random() < 0.5:
            body[rng.integers(len(body))] = MARK
            labels[i] = 1
        ids.append([101, *body.tolist(), 102])
    return Encoded(ids, [[0] * len(x) for x in ids], lengths, 0, max_length, 0), labels


def multi_exit(shape: str, seed: int = 0) -> MultiExitModel:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, max_position_embeddings=512, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, **SHAPES[shape])
    encoder = BertModel(config, add_pooling_layer=False)
    spec = MultiExitSpec(kind="pabee", backbone=shape, num_layers=config.num_hidden_layers, num_labels=2,
                         pooling="cls")
    heads = [ClassifierHead(config.hidden_size, 2, 0.1) for _ in range(config.num_hidden_layers)]
    return MultiExitModel(spec, encoder, nn.ModuleList(heads))


def train_throughput(shape: str, device: str, precision: str, *, steps: int, batch_size: int = 32) -> float:
    """Examples/s of the training step on `device`, after two warm-up steps."""
    configure(device)
    model = multi_exit(shape).to(torch.device(device)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    scaler = grad_scaler(precision)
    encoded, labels = synthetic(batch_size * (steps + 2), seed=1)
    y = torch.tensor(labels)
    batches = batch_indices(encoded.lengths, batch_size, shuffle=True, seed=0, epoch=0)
    start = None
    for i, idx in enumerate(batches[:steps + 2]):
        if i == 2:
            _sync(device)
            start = time.perf_counter()
        with autocast(precision):
            logits = model(**to_device(collate(encoded, idx), torch.device(device))).logits
            loss = pabee_objective(logits, y[idx].to(device))
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def executor_check(shape: str, device: str, precision: str, *, n: int, batch_sizes=(32, 256),
                   repeats: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    configure(device)
    model = multi_exit(shape).eval().to(torch.device(device))
    encoded, labels = synthetic(n, seed=2)
    layers = model.spec.num_layers
    logits = predict_logits(model, encoded, batch_size=64, precision=precision)  # every exit: the simulation
    probs = torch.softmax(torch.from_numpy(logits).double(), dim=-1).numpy()
    out = ExitOutputs(np.array([f"x{i:06d}" for i in range(n)]), labels, np.arange(1, layers + 1), probs, logits)
    shape_ = EncoderShape(hidden=SHAPES[shape]["hidden_size"], num_layers=layers,
                          intermediate=SHAPES[shape]["intermediate_size"])
    tokens = np.asarray(encoded.lengths)
    cumulative = exit_flops(shape_, tokens, 2, layers)        # [n, L]: FLOPs to reach and evaluate each exit
    full = complete_flops(shape_, layers, tokens, 2)
    timing, agreement = [], []
    top = probs.max(-1)  # [n, L]
    for target in (2.0, 3.0, 4.0):
        # the max-prob threshold whose simulated exits cost L / target layers on average
        grid = np.unique(np.quantile(top, np.linspace(0, 1, 401)))
        costs = np.array([apply_policy(out, "maxprob", t).exit_index.mean() + 1 for t in grid])
        threshold = float(grid[np.argmin(np.abs(costs - layers / target))])
        decision = apply_policy(out, "maxprob", threshold)
        speedup_layers = layers / (decision.exit_index.mean() + 1)
        speedup_flops = full.mean() / cumulative[np.arange(n), decision.exit_index].mean()
        for batch_size in batch_sizes:
            run_full(model, encoded, batch_size=batch_size, precision=precision)  # warm-up
            seconds_full, seconds_exit, result = [], [], None
            for _ in range(repeats):
                seconds_full.append(run_full(model, encoded, batch_size=batch_size, precision=precision).seconds)
                result = run_early_exit(model, encoded, policy="maxprob", param=threshold, batch_size=batch_size,
                                        precision=precision)
                seconds_exit.append(result.seconds)
            wall = float(np.median(seconds_full) / np.median(seconds_exit))
            timing.append({"target": target, "batch": batch_size, "speedup_layers": speedup_layers,
                           "speedup_flops": speedup_flops, "speedup_wallclock": wall,
                           "wallclock_over_flops": wall / speedup_flops})
            mismatched = (result.exit_index != decision.exit_index) | (result.pred != decision.pred)
            agreement.append({"target": target, "batch": batch_size, "examples": n,
                              "mismatches": int(mismatched.sum()), "share": float(mismatched.mean())})
    return pd.DataFrame(timing), pd.DataFrame(agreement)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--small", action="store_true", help="a few steps and examples: checks the code, not speed")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    steps = 3 if args.small else 20
    fmt = {"index": False, "float_format": lambda v: f"{v:.2f}"}
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    rows = []
    for shape, cpu_steps in (("tiny", steps), ("minilm", 2 if args.small else 5)):
        cpu = train_throughput(shape, "cpu", "fp32", steps=cpu_steps)
        dev = train_throughput(shape, args.device, args.precision, steps=steps)
        rows.append({"model": shape, "cpu fp32 examples/s": cpu, f"{args.device} {args.precision} examples/s": dev,
                     "ratio": dev / cpu})
    print("\ntraining throughput (batch 32, 16-64 tokens):")
    print(pd.DataFrame(rows).to_string(**fmt))
    shape = "tiny" if args.small else "bert-base"
    n = 256 if args.small else 2048
    for precision in dict.fromkeys(["fp32", args.precision]):
        timing, agreement = executor_check(shape, args.device, precision, n=n,
                                           batch_sizes=(32,) if args.small else (32, 256))
        print(f"\nearly-exit executor against the full model ({shape}, random weights, {args.device}, {precision}):")
        print(timing.to_string(**fmt))
        print(f"\nexecutor against simulation ({precision}):")
        print(agreement.to_string(**fmt))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
