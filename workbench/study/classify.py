"""A trained method answering new texts, in the style of a Hugging Face pipeline.

`load_method(run, "cascade 1L>6L", target=3)` opens a finished run folder, finds the method's models in the
run's cache by name, chooses its thresholds on the tune split exactly as the main table does, and returns a
callable: `method(["a text", ...])` (or `method([("evidence", "claim"), ...])` on a pair task) answers each
text with the real batched executor, not the simulation. Each answer gives the label's name, its confidence,
where the text stopped (the exit layer, or the cascade member) and what it cost in layers and FLOPs.

Nothing is trained here: a model missing from the cache is an error that names the command that trains it.
Methods: the complete models (`complete-6L`, `small-2L`, `-da`), the early-exit models (`deebert`,
`deebert-da`, `pabee`, `fastbert`) with their own rule, every cascade (`cascade 1L>6L`, `cascade+DA small-1L>12L`,
three members too), and DeeBERT on a signal of `methods.signals` (`deebert with learned`). `read_inputs`
reads texts from a file or stdin for `python -m workbench classify`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from workbench.data.files import DataError, format_of, read_table
from workbench.methods.points import exit_costs, member_flops
from workbench.names import (JOINT_KINDS, exit_rules, hybrid_members, is_small_member, parse_cascade,
                             parse_signal_method, try_parse_model)

ANSWER_COLUMNS = ("label", "confidence", "stopped_at", "layers", "flops", "full_flops")


@dataclass(eq=False)
class TrainedMethod:
    """One method of a run at one operating point, ready to answer texts (see the module docstring)."""
    name: str
    target: float | None               # target speed-up its thresholds were chosen for (None: a complete model)
    seed: int
    setting: str                       # the rule in words, e.g. 'entropy<0.31' or 'maxprob>0.93'
    label_names: tuple[str, ...]
    study: object                      # methods.points.Study: the backbones' sizes for FLOPs
    models: tuple                      # one model (early exit, complete) or the cascade's members
    member_names: tuple[str, ...]
    tokenizers: tuple
    max_length: int
    pair: bool                         # the task reads two texts per example
    run: callable                      # (encoded per model) -> executor.ExecutionResult

    def __call__(self, inputs):
        """Answers for a list of texts (pairs on a pair task): one dict per text, in order; a single text (or
        pair) gives one dict."""
        single = isinstance(inputs, str) or (self.pair and isinstance(inputs, tuple))
        frame = self.answer_frame([inputs] if single else list(inputs))
        answers = frame.to_dict("records")
        return answers[0] if single else answers

    def answer_frame(self, inputs: Sequence) -> pd.DataFrame:
        """The answers as a table: the input (`text`, and `text_b` for pairs), then ANSWER_COLUMNS."""
        from workbench.data.batching import encode
        columns = ["text_a", "text_b"] if self.pair else ["text_a"]
        texts = pd.DataFrame(_split_inputs(inputs, self.pair), columns=columns)
        if texts.empty:
            return pd.DataFrame(columns=[*texts.rename(columns={"text_a": "text"}).columns, *ANSWER_COLUMNS])
        encoded = [encode(tokenizer, texts, self.max_length) for tokenizer in self.tokenizers]
        result = self.run(encoded)
        tokens = [np.asarray(e.lengths, dtype=np.float64) for e in encoded]
        layers, flops, full = self._costs(result, tokens)
        answers = texts.assign(label=[self.label_names[int(p)] for p in result.pred],
                               confidence=result.confidence.astype(float), stopped_at=self._stops(result),
                               layers=layers.astype(int), flops=flops, full_flops=full)
        return answers.rename(columns={"text_a": "text"})

    def _stops(self, result) -> list[str]:
        """The cascade member that answered, the early-exit layer, or the complete model's name."""
        if len(self.models) > 1:
            return [self.member_names[int(i)] for i in result.exit_index]
        if self.target is None:
            return [self.member_names[0]] * len(result.pred)
        return [f"layer {int(i) + 1}" for i in result.exit_index]

    def _costs(self, result, tokens: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Layers run, FLOPs spent and the full model's FLOPs per text, priced by the study's own functions
        (`points.member_flops`, `points.exit_costs`: members at their width, off-ramps paid as passed)."""
        rows = np.arange(len(result.pred))
        if len(self.models) > 1 or self.target is None:  # a cascade, or one complete model
            each, full = member_flops(self.study, self.member_names, [m.spec.depth for m in self.models], tokens)
            member = result.exit_index if len(self.models) > 1 else np.zeros(len(rows), dtype=np.int64)
            return result.layers_executed, np.cumsum(each, 1)[rows, member], full
        exits, full = exit_costs(self.study, tokens[0], self.study.full_layers)
        return result.layers_executed, exits[rows, result.exit_index], full


def _split_inputs(inputs: Sequence, pair: bool) -> list:
    rows = []
    for i, item in enumerate(inputs):
        if pair:
            if isinstance(item, str) or len(item) != 2 or not all(isinstance(t, str) for t in item):
                raise DataError(f"input {i}: this task reads pairs of texts; give (text, second text), got "
                                f"{str(item)[:80]!r}")
            rows.append(tuple(item))
        else:
            if not isinstance(item, str):
                raise DataError(f"input {i}: expected a text, got {type(item).__name__} {str(item)[:80]!r}")
            rows.append((item,))
        if not all(t.strip() for t in rows[-1]):
            raise DataError(f"input {i}: empty text")
    return rows


# ----------------------------------------------------------------------------- finding the models


def load_method(run, name: str, *, target: float | None = 3.0, seed: int | None = None,
                batch_size: int | None = None) -> TrainedMethod:
    """The method `name` of a finished run folder (a path or an opened `Run`) at `target` speed-up (in the run's
    unit, thresholds chosen on tune as in the main table), ready to answer texts; see the module docstring.
    `batch_size` defaults to the one the run's outputs were computed with, so that a text of the test split
    gets exactly its stored answer."""
    from workbench.config import RunConfig
    from workbench.data.registry import prepare_task
    from workbench.models.backbones import load_tokenizer
    from workbench.runs.folder import load_run, run_task_options
    from workbench.study.stages import cached_only
    from workbench.ui.state import study_of
    folder = Path(getattr(run, "folder", run))
    outputs, saved = load_run(folder)
    config = RunConfig.from_dict(saved["run"])
    seed = config.seeds[0] if seed is None else int(seed)
    if seed not in config.seeds:
        raise ValueError(f"seed {seed}: run {folder} trained seeds {list(config.seeds)}")
    study = study_of(saved)
    task = prepare_task(run_task_options(folder, saved), config.train)
    batch_size = batch_size or config.train.eval_batch_size
    small = saved.get("small_shape")
    context = _Context(task, config, outputs, study, seed, small["num_layers"] if small else None)
    with cached_only():
        parts = _resolve(context, name, target, batch_size)
    models, member_names, setting, run_fn, target = parts
    tokenizers = tuple(load_tokenizer(config.member_backbone(small=is_small_member(m))) for m in member_names)
    return TrainedMethod(name=name, target=target, seed=seed, setting=setting, label_names=tuple(task.spec.label_names),
                         study=study, models=tuple(models), member_names=tuple(member_names), tokenizers=tokenizers,
                         max_length=config.train.max_length, pair=task.spec.pair, run=run_fn)


@dataclass(frozen=True)
class _Context:
    task: object
    config: object
    outputs: pd.DataFrame
    study: object
    seed: int
    small_layers: int | None


def _resolve(c: _Context, name: str, target: float | None, batch_size: int):
    """(models, member names, setting, executor call, target) of a method name."""
    from workbench.methods.executor import run_cascade, run_early_exit, run_early_exit_signal, run_full
    from workbench.methods.points import tuned_cascade_point, tuned_exit_point
    from workbench.methods.signal_points import signal_split, tuned_signal_points
    from workbench.methods.signals import fit_signal, scoring_folds
    precision = c.config.train.precision
    if hybrid_members(name) is not None:
        raise ValueError(f"{name!r}: hybrids cannot answer new texts yet; choose DeeBERT, a cascade, a complete "
                         "model or 'deebert with <signal>'")
    signal = parse_signal_method(name)
    if signal is not None:
        base, which, risk = signal
        if exit_rules(base) is None or risk is not None or base == "probe":
            raise ValueError(f"{name!r}: of the signal methods, 'deebert with <signal>' (and pabee's, deebert-da's) "
                             "answer new texts")
        point = _reached(tuned_signal_points(c.outputs, c.study, base, which, [_target(target)], c.seed)[0],
                         name, target)
        fitted = fit_signal(which, signal_split(c.outputs, c.study, base, "tune", c.seed).stages, seed=c.seed)
        model = _exit_model(c, base)

        def run(enc):  # point.values: one threshold, or one per non-final exit (ztw)
            fold = scoring_folds(fitted, len(enc[0]), c.seed)
            return run_early_exit_signal(model, enc[0], fitted, point.values, fold=fold, batch_size=batch_size,
                                         precision=precision)
        return [model], [base], point.setting, run, target
    cascade = parse_cascade(name)
    if cascade is not None:
        members = cascade[0].members(regularized=cascade[1])
        point = _reached(tuned_cascade_point(c.outputs, c.study, members, _target(target), c.seed, label=name),
                         name, target)
        models = [_complete_model(c, m) for m in members]
        return models, list(members), point.setting, lambda enc: run_cascade(models, enc, point.values,
                                                                                  batch_size=batch_size,
                                                                                  precision=precision), target
    parsed = try_parse_model(name)
    if parsed is not None and parsed.is_complete:
        model = _complete_model(c, name)
        return ([model], [name], f"all {parsed.depth} layers",
                lambda enc: run_full(model, enc[0], batch_size=batch_size, precision=precision), None)
    if parsed is not None and parsed.family in ("deebert", "fastbert", *JOINT_KINDS):
        point = _reached(tuned_exit_point(c.outputs, c.study, name, _target(target), c.seed), name, target)
        model = _exit_model(c, name)
        return ([model], [name], point.setting,
                lambda enc: run_early_exit(model, enc[0], policy=point.policy, param=point.param,
                                           batch_size=batch_size, precision=precision), target)
    raise ValueError(f"{name!r} is not a method that can answer texts; choose a complete model ('complete-6L'), "
                     "'deebert', 'deebert-da', 'pabee', 'fastbert', 'berxit', 'mutual', a cascade ('cascade 1L>6L') "
                     "or 'deebert with learned'")


def _target(target: float | None) -> float:
    if target is None or not target > 0:
        raise ValueError(f"target {target!r}: give the target speed-up, e.g. 3 (in the run's unit)")
    return float(target)


def _reached(point, name: str, target: float | None):
    if point is None:
        raise ValueError(f"{name!r} cannot reach {target:g}x on this run's tune split; choose a lower target")
    return point


def _complete_model(c: _Context, member: str):
    from workbench.models.complete import CompleteModel
    from workbench.study.stages import complete_model, da_member, difficulty_labels
    parsed = try_parse_model(member)
    small = parsed.family == "small"
    backbone = c.config.member_backbone(small=small)
    if parsed.regularized:
        easy = difficulty_labels(c.task, c.config, parsed.depth, backbone=backbone, progress=False)
        folder, _ = da_member(c.task, c.config, parsed.depth, c.seed, easy, backbone=backbone, progress=False)
    else:
        folder, _ = complete_model(c.task, c.config, parsed.depth, c.seed, backbone=backbone, progress=False)
    return CompleteModel.from_pretrained(folder / "best")


def _exit_model(c: _Context, name: str):
    from workbench.models.multiexit import MultiExitModel
    from workbench.study.stages import deebert_model, difficulty_labels, fastbert_model, joint_model
    parsed = try_parse_model(name)
    if parsed.family in JOINT_KINDS:
        folder, _ = joint_model(c.task, c.config, c.seed, parsed.family, progress=False)
    elif parsed.family == "fastbert":
        folder, _ = fastbert_model(c.task, c.config, c.seed, progress=False)
    elif parsed.regularized:  # DeeBERT's off-ramps with the labels of the run's first regularized member
        depth, small = c.config.regularized_members(c.study.full_layers, c.small_layers)[0]
        easy = difficulty_labels(c.task, c.config, depth, backbone=c.config.member_backbone(small=small),
                                 progress=False)
        folder, _ = deebert_model(c.task, c.config, c.seed, easy=easy, progress=False)
    else:
        folder, _ = deebert_model(c.task, c.config, c.seed, progress=False)
    return MultiExitModel.from_pretrained(folder / "best")


# ----------------------------------------------------------------------------- reading texts


def read_inputs(path: str | None, *, pair: bool, text_col: str = "text", text_b_col: str | None = None,
                stdin=None) -> list:
    """Texts to classify: a CSV, TSV or JSONL file (the column `text_col`, and `text_b_col` on a pair task), or
    plain lines (a file of another extension, or stdin for None or '-'): one text a line, a tab between the
    two texts of a pair. Blank lines are skipped; a line that cannot be read is an error naming it."""
    if path not in (None, "-") and Path(path).suffix.lower() in (".csv", ".tsv", ".jsonl", ".ndjson"):
        if pair and text_b_col is None:
            raise ValueError("this task reads pairs: name the second text's column with --text-b-col")
        rows = read_table(path, fmt=format_of(Path(path), None), option="--input",
                          required=(text_col, text_b_col if pair else None))
        out = []
        for line, row in rows:
            texts = (row[text_col], row[text_b_col]) if pair else (row[text_col],)
            if not all(t.strip() for t in texts):
                raise DataError(f"{path}, line {line}: empty text in {text_col!r}"
                                + (f" or {text_b_col!r}" if pair else ""))
            out.append(texts if pair else texts[0])
        return out
    import sys
    if path in (None, "-"):
        source, lines = "stdin", (stdin or sys.stdin).read().splitlines()
    else:
        file = Path(path)
        if not file.is_file():
            raise DataError(f"--input {path}: not found; give a text file, a CSV/TSV/JSONL file, or '-' for stdin")
        source, lines = str(file), file.read_text(encoding="utf-8-sig").splitlines()
    out = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        if pair:
            parts = text.split("\t")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise DataError(f"{source}, line {number}: this task reads pairs; put one tab between the two texts "
                                f"(got {len(parts)} tab-separated part(s): {text[:80]!r})")
            out.append((parts[0], parts[1]))
        else:
            out.append(text)
    return out


def write_answers(frame: pd.DataFrame, path: str | Path) -> None:
    """The answers as CSV or JSONL (by extension), written atomically."""
    from workbench.store import atomic_write_text
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in frame.to_dict("records"))
    elif path.suffix.lower() == ".csv":
        text = frame.to_csv(index=False)
    else:
        raise ValueError(f"--out {path}: write answers as .csv or .jsonl")
    atomic_write_text(path, text)
