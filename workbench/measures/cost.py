"""Inference cost: FLOPs of encoders and heads, analytic and measured, per example.

Layer counts are the paper's cost (speed-up = L / mean layers executed), but they mislead when
members differ in width or when exit heads are not free. FLOPs here count the matrix products
(2 FLOPs per multiply-add), the convention of `torch.utils.flop_counter`, for one sequence of t
tokens through a transformer layer of hidden size h and feed-forward size f:

    layer(t) = 2 t (4 h^2 + 2 h f)   projections Q, K, V, output and the feed-forward pair
             + 4 t^2 h              attention scores Q K^T and the weighted sum of V

and a classifier head (dense h x h + linear h x C) on the pooled state: 2 h^2 + 2 h C.
Embedding lookups, LayerNorm, activations and pooling are not matrix products and count 0.
`measure_flops` runs a model under FlopCounterMode; with eager attention it equals the formula
(tested), while the default sdpa kernel may go uncounted on CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class EncoderShape:
    """The sizes that determine an encoder's FLOPs."""
    hidden: int          # h
    intermediate: int    # f, feed-forward width
    num_layers: int      # layers of the full encoder

    @classmethod
    def of_config(cls, config) -> "EncoderShape":
        """From a Hugging Face config (BERT-style field names, mapped for DistilBERT and others)."""
        return cls(hidden=int(config.hidden_size), intermediate=int(config.intermediate_size),
                   num_layers=int(config.num_hidden_layers))

    @classmethod
    def of(cls, model: torch.nn.Module) -> "EncoderShape":
        """Read the sizes from a model with `.encoder.config` (complete or multi-exit) or a bare encoder."""
        return cls.of_config(getattr(getattr(model, "encoder", model), "config"))


def layer_flops(shape: EncoderShape, tokens) -> np.ndarray:
    """FLOPs of one transformer layer per sequence of `tokens` tokens (array in, array out)."""
    t = np.asarray(tokens, dtype=np.float64)
    h, f = shape.hidden, shape.intermediate
    return 2 * t * (4 * h * h + 2 * h * f) + 4 * t * t * h


def head_flops(shape: EncoderShape, num_labels: int) -> float:
    """FLOPs of one classifier head (dense + tanh, linear) on a pooled state."""
    h = shape.hidden
    return 2.0 * h * h + 2.0 * h * num_labels


def complete_flops(shape: EncoderShape, depth: int, tokens, num_labels: int) -> np.ndarray:
    """FLOPs per example of a complete model of `depth` layers: depth layers + one head."""
    return depth * layer_flops(shape, tokens) + head_flops(shape, num_labels)


def exit_flops(shape: EncoderShape, tokens, num_labels: int, num_exits: int) -> np.ndarray:
    """Cumulative FLOPs per example to reach and evaluate each exit, [n, num_exits]: an example that
    exits after layer k has run k layers and k exit heads (every off-ramp it passed was evaluated)."""
    per_layer = layer_flops(shape, tokens)[:, None] + head_flops(shape, num_labels)  # [n, 1]
    return per_layer * np.arange(1, num_exits + 1)[None, :]


def measure_flops(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward pass counted by torch.utils.flop_counter (use eager attention to count it)."""
    model.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(**batch)
    return int(counter.get_total_flops())
