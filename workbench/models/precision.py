"""Numeric precision of the encoder's matrix work: float32, bfloat16 autocast, or float16 autocast on a GPU.

`autocast(precision)` wraps a forward pass on the device of `workbench.runs.distributed.context()`: with
'bf16' (CPUs with bf16 instructions, recent GPUs) or 'fp16' (CUDA GPUs) the matrix products run in 16 bits
while softmax, LayerNorm and the losses stay in float32 (torch's autocast lists); logits leave as float32
wherever the workbench stores or compares them. Training in fp16 scales the loss (`grad_scaler`) so that small
gradients do not underflow; bf16 has float32's range and needs no scaler. `benchmarks/precision.py` measures
what bf16 buys on a CPU.
"""
from __future__ import annotations

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _device_type(device_type: str | None) -> str:
    if device_type is not None:
        return device_type
    from workbench.runs.distributed import context
    return context().device.type


def check_precision(precision: str, device_type: str | None = None) -> None:
    """A clear error for a precision the device cannot run."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and _device_type(device_type) != "cuda":
        raise ValueError(f"--precision fp16 needs a CUDA GPU (this run is on {_device_type(device_type)}); "
                         "use bf16 on a CPU")


def autocast(precision: str, device_type: str | None = None):
    """A context for the forward passes of `precision` ('fp32': no change) on `device_type` (default: the
    context's device)."""
    check_precision(precision, device_type)
    kind = _device_type(device_type)
    return torch.autocast(kind, dtype=_DTYPES.get(precision, torch.bfloat16), enabled=precision != "fp32")


def grad_scaler(precision: str, device_type: str | None = None):
    """The loss scaler of a training run: active for fp16 only."""
    kind = _device_type(device_type)
    return torch.amp.GradScaler(kind if kind in ("cuda", "cpu") else "cuda", enabled=precision == "fp16")
