"""Numeric precision of the encoder's matrix work: float32, or bfloat16 autocast on CPUs with bf16 instructions.

`autocast(precision)` wraps a forward pass: with 'bf16' the matrix products run in bfloat16 while softmax,
LayerNorm and the losses stay in float32 (torch's CPU autocast lists); logits leave as float32 wherever the
workbench stores or compares them. `benchmarks/precision.py` measures what it buys on this machine.
"""
from __future__ import annotations

import torch

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str):
    """A context for the forward passes of `precision` ('fp32': no change; 'bf16': CPU bfloat16 autocast)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
