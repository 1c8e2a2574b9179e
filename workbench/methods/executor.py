"""Executors that really skip work: batched early exit and routed cascades, timed.

The simulations in `workbench.methods.exits` and `workbench.methods.cascade` compute every exit of every example
and then pick one; these executors only compute what the policy needs, so their wall-clock time is
the real cost. They must return exactly the simulation's predictions and exits (tested).

- `run_early_exit`: runs a multi-exit model layer by layer; after each layer it evaluates that exit
  on the rows still running, removes the rows that exit, and trims the padding to the longest
  remaining row before the next layer.
- `run_early_exit_signal`: the same with a stop rule of `workbench.methods.signals` (agreement, ensemble,
  learned deferral, ...): after each layer the signal is scored on the exits each remaining row has run so
  far, with the very code the simulation uses, so the two agree by construction.
- `run_cascade`: runs member 1 on the batch, gathers the rows that did not exit, re-pads them and
  runs the next member on those only, then scatters the answers back in the original order. With
  `refill=True` the rows that escalate wait in a queue per member until a full batch has gathered
  (the last, partial batches run at the end), as a throughput-oriented server would run it: later
  members then see full batches instead of the few rows left in each, at the price of latency. It is the
  default up to batch 32 (`REFILL_UP_TO`), where it helps: on the quick rt run the 1L>6L cascade kept 0.89-0.95
  of its FLOPs speed-up with it against 0.72-0.85 without; at batch 256 the rows left are many already, and
  waiting for 256 of them cost more than it saved (0.70-0.92 against 0.93-1.03).
- `run_full`: the full model on the same batches, the reference for `speedup_wallclock`.

Each takes the run's `precision` ('fp32', or 'bf16'/'fp16' autocast), the one its stored outputs were computed
in, and runs on the device of `workbench.runs.distributed.context()`; on a GPU the clock is read after
`torch.cuda.synchronize`, so that the time counts the work queued on it, not only its launch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from workbench.data.batching import Encoded, batch_indices, collate
from workbench.models.backbones import additive_mask, embed, layer_stack, run_layer
from workbench.models.precision import autocast
from workbench.models.training import to_device
from workbench.runs.distributed import context

POLICIES = ("maxprob", "entropy", "patience")
REFILL_UP_TO = 32  # run_cascade refills by default up to this batch size (measured: see the module docstring)


@dataclass(frozen=True)
class ExecutionResult:
    """What an executor did for each example, in the encoded order, and how long it took."""
    exit_index: np.ndarray       # [n] 0-based exit (early exit) or member (cascade) that answered
    pred: np.ndarray             # [n]
    confidence: np.ndarray       # [n] max softmax probability at the answering exit
    layers_executed: np.ndarray  # [n] transformer layers run for the example
    seconds: float               # wall-clock time of the whole run

    @property
    def seconds_per_example(self) -> float:
        return self.seconds / max(1, len(self.pred))


def _check_policy(policy: str, param: float, num_exits: int) -> None:
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if policy == "entropy" and param < 0:
        raise ValueError(f"entropy threshold {param} < 0 can never be met; use a threshold >= 0")
    if policy == "patience" and not (0 <= param < num_exits):
        raise ValueError(f"patience {param} must be in [0, {num_exits - 1}] for {num_exits} exits")


def run_early_exit(model, encoded: Encoded, *, policy: str, param: float, batch_size: int = 32,
                   precision: str = "fp32") -> ExecutionResult:
    """Batched early exit of a `MultiExitModel` under a policy ('maxprob' > param, 'entropy' < param,
    'patience' = param unchanged predictions), removing exited rows between layers."""
    num_exits = len(layer_stack(model.encoder))
    _check_policy(policy, param, num_exits)
    n = len(encoded)
    exit_index, pred = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    confidence = np.zeros(n, dtype=np.float64)
    device = context().device
    model.eval().to(device)
    start = _now(device)
    with torch.inference_mode(), autocast(precision):
        for idx in batch_indices(encoded.lengths, batch_size, shuffle=False):
            batch = to_device(collate(encoded, idx), device)
            attention = batch["attention_mask"]
            hidden = embed(model.encoder, batch["input_ids"], batch["token_type_ids"])
            rows = np.asarray(idx)
            streak = torch.zeros(len(rows), dtype=torch.long, device=device)
            previous = torch.full((len(rows),), -1, dtype=torch.long, device=device)
            for j in range(num_exits):
                hidden = run_layer(model.encoder, j, hidden, additive_mask(attention, hidden.dtype))
                probs = torch.softmax(model.exit_logits(j, hidden, attention).double(), dim=-1)
                top, arg = probs.max(dim=-1)
                if policy == "maxprob":
                    leave = top > param
                elif policy == "entropy":
                    leave = -(probs * torch.log(probs.clamp_min(1e-300))).sum(-1) < param
                else:
                    streak = torch.where((arg == previous) & (j > 0), streak + 1, torch.zeros_like(streak))
                    previous = arg
                    leave = (streak == param) if param > 0 else torch.zeros_like(arg, dtype=torch.bool)
                if j == num_exits - 1:
                    leave = torch.ones_like(leave)
                done = leave.cpu().numpy()
                exit_index[rows[done]], pred[rows[done]] = j, arg[leave].cpu().numpy()
                confidence[rows[done]] = top[leave].cpu().numpy()
                keep = ~leave
                if not keep.any():
                    break
                rows, streak, previous = rows[~done], streak[keep], previous[keep]
                width = int(attention[keep].sum(1).max())  # trim padding to the longest remaining row
                hidden, attention = hidden[keep][:, :width], attention[keep][:, :width]
    seconds = _now(device) - start
    return ExecutionResult(exit_index, pred, confidence, exit_index + 1, seconds)


def _now(device) -> float:
    """The clock, after the device has finished the work queued so far."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def run_early_exit_signal(model, encoded: Encoded, fitted, threshold, *,
                          fold: np.ndarray | None = None, batch_size: int = 32,
                          precision: str = "fp32") -> ExecutionResult:
    """Batched early exit of a `MultiExitModel` that stops where `fitted` (a `signals.FittedSignal`) scores
    the exit > its threshold (strict; one for every exit, or one per exit as ztw's: `signals.stage_thresholds`),
    removing exited rows between layers.
    `fold` [n] says which fold model scores each example (`signals.scoring_folds`, in the encoded order); the
    input length in the signal's features is each example's token count."""
    from workbench.methods.signals import Stages, stage_thresholds
    num_exits = len(layer_stack(model.encoder))
    thresholds = stage_thresholds(threshold, num_exits)
    n = len(encoded)
    exit_index, pred = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    confidence = np.zeros(n, dtype=np.float64)
    tokens = np.asarray(encoded.lengths, dtype=np.float64)
    device = context().device
    model.eval().to(device)
    start = _now(device)
    with torch.inference_mode(), autocast(precision):
        for idx in batch_indices(encoded.lengths, batch_size, shuffle=False):
            batch = to_device(collate(encoded, idx), device)
            attention = batch["attention_mask"]
            hidden = embed(model.encoder, batch["input_ids"], batch["token_type_ids"])
            rows = np.asarray(idx)
            history = np.zeros((len(rows), 0, 0))
            for j in range(num_exits):
                hidden = run_layer(model.encoder, j, hidden, additive_mask(attention, hidden.dtype))
                probs = torch.softmax(model.exit_logits(j, hidden, attention).double(), dim=-1).cpu().numpy()
                history = probs[:, None] if j == 0 else np.concatenate([history, probs[:, None]], axis=1)
                stages = Stages(rows.astype(str), np.zeros(len(rows), dtype=np.int64), history, tokens[rows])
                scored = fitted.score(stages, None if fold is None else fold[rows])
                leave = scored.score[:, -1] > thresholds[j]
                if j == num_exits - 1:
                    leave = np.ones(len(rows), dtype=bool)
                exit_index[rows[leave]], pred[rows[leave]] = j, scored.pred[leave, -1]
                confidence[rows[leave]] = scored.confidence[leave, -1]
                if leave.all():
                    break
                keep = torch.from_numpy(~leave).to(device)
                rows, history = rows[~leave], history[~leave]
                width = int(attention[keep].sum(1).max())  # trim padding to the longest remaining row
                hidden, attention = hidden[keep][:, :width], attention[keep][:, :width]
    seconds = _now(device) - start
    return ExecutionResult(exit_index, pred, confidence, exit_index + 1, seconds)


def run_cascade(members: Sequence, encoded: Sequence[Encoded], thresholds: Sequence[float], *,
                batch_size: int = 32, refill: bool | None = None, precision: str = "fp32") -> ExecutionResult:
    """Routed cascade of complete models (smallest first): member i answers when its max probability >
    thresholds[i] (strict); only the rows that did not exit run the next member. `encoded[i]` is the
    split tokenised for member i (members may use different tokenizers). `refill` (default: up to batch
    `REFILL_UP_TO`) queues the escalated rows until `batch_size` of them have gathered for the next member
    (same answers, fuller batches)."""
    if len(thresholds) != len(members) - 1:
        raise ValueError(f"{len(members)} members need {len(members) - 1} thresholds, got {len(thresholds)}")
    if len(encoded) != len(members):
        raise ValueError(f"got {len(encoded)} encoded splits for {len(members)} members")
    n = len(encoded[0])
    depths = np.cumsum([m.spec.depth for m in members])
    member_index, pred = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    confidence = np.zeros(n, dtype=np.float64)

    def answer(i: int, rows: np.ndarray) -> np.ndarray:
        """Run member i on `rows`, batch by batch; record the rows that exit there and return the others."""
        escalated = [np.zeros(0, dtype=np.int64)]
        for chunk in (rows[k:k + batch_size] for k in range(0, len(rows), batch_size)):
            probs = torch.softmax(members[i](**to_device(collate(encoded[i], chunk), device)).logits.double(), dim=-1)
            top, arg = (t.cpu() for t in probs.max(dim=-1))
            leave = (top > thresholds[i]).numpy() if i < len(thresholds) else np.ones(len(chunk), dtype=bool)
            member_index[chunk[leave]], pred[chunk[leave]] = i, arg.numpy()[leave]
            confidence[chunk[leave]] = top.numpy()[leave]
            escalated.append(chunk[~leave])
        return np.concatenate(escalated)

    refill = batch_size <= REFILL_UP_TO if refill is None else refill
    queues = [np.zeros(0, dtype=np.int64) for _ in members]  # refill: rows waiting for member i
    device = context().device
    for m in members:
        m.eval().to(device)
    start = _now(device)
    with torch.inference_mode(), autocast(precision):
        for idx in batch_indices(encoded[0].lengths, batch_size, shuffle=False):
            rows = answer(0, np.asarray(idx, dtype=np.int64))
            for i in range(1, len(members)):
                if refill:  # run only whole batches now; the rest waits for the next rows
                    queues[i] = np.concatenate([queues[i], rows])
                    ready = len(queues[i]) - len(queues[i]) % batch_size
                    rows, queues[i] = queues[i][:ready], queues[i][ready:]
                rows = answer(i, rows)
        for i in range(1, len(members)):  # refill: the partial batches left at the end, member by member
            rest = answer(i, queues[i])
            if i + 1 < len(members):
                queues[i + 1] = np.concatenate([queues[i + 1], rest])
    seconds = _now(device) - start
    return ExecutionResult(member_index, pred, confidence, depths[member_index], seconds)


def run_full(model, encoded: Encoded, *, batch_size: int = 32, precision: str = "fp32") -> ExecutionResult:
    """The model's final answer on every example, timed the same way (the speed-up reference)."""
    n = len(encoded)
    pred, confidence = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.float64)
    device = context().device
    model.eval().to(device)
    start = _now(device)
    with torch.inference_mode(), autocast(precision):
        for idx in batch_indices(encoded.lengths, batch_size, shuffle=False):
            logits = model(**to_device(collate(encoded, idx), device)).logits
            logits = logits[:, -1] if logits.ndim == 3 else logits  # a multi-exit model's last exit
            top, arg = torch.softmax(logits.double(), dim=-1).max(dim=-1)
            pred[idx], confidence[idx] = arg.cpu().numpy(), top.cpu().numpy()
    seconds = _now(device) - start
    layers = len(layer_stack(model.encoder))
    return ExecutionResult(np.full(n, layers - 1), pred, confidence, np.full(n, layers), seconds)
