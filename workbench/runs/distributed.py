"""Where the work runs: one device, or several processes through Hugging Face Accelerate.

Single process (the default): `configure(device)` picks the device ('auto' = cuda when available, else mps,
else cpu); 'cuda' or 'mps' asked for where there is none stops with an error that says so.

Several processes: `accelerate launch [--cpu] --num_processes N -m workbench reproduce ...` starts N copies of
the same run. Each one calls the same stages in the same order; `context()` then holds the `Accelerator`, and

- training (`fit`) is data-parallel (DDP): each optimizer step takes one global batch of `batch_size`
  examples, the same batches in the same order as one process would, split across the processes
  (`shard`), whose gradients are averaged (all-reduce), so the learning rate and schedule stay those of one
  process with that batch;
- prediction gives each process every N-th example and gathers the logits back in order (`gather_rows`):
  no row is dropped or repeated, whatever the split's size;
- only the main process writes (store, cache, checkpoints, tables, figures: the store's writes are no-ops
  elsewhere), and the processes meet (`barrier`) before a cache entry is looked at and after it is written,
  so that all of them see the same cache;
- a process that fails ends the whole run: the launcher stops the others and exits non-zero with the failed
  rank's error; since every write is atomic, no half-written cache entry is left.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

DEVICES = ("auto", "cpu", "cuda", "mps")


def launched_processes() -> int:
    """How many processes the launcher started (WORLD_SIZE; 1 when run directly)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def resolve_device(name: str = "auto"):
    """The torch device for `name`: 'auto' picks cuda, then mps, then cpu; a device that is asked for by name
    and absent is an error that says what is there."""
    import torch

    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        why = ("this torch is a CPU build (see README: make setup TORCH=cu126)" if torch.version.cuda is None
               else "no CUDA GPU is visible")
        raise ValueError(f"--device cuda: {why}; use --device cpu or auto")
    if name == "mps" and not has_mps:
        raise ValueError("--device mps: Apple's Metal backend is not available here; use --device cpu or auto")
    return torch.device(name)


@dataclass
class Context:
    """The device of this process and, when launched as several processes, the Accelerator."""
    device: object                      # torch.device
    accelerator: object | None = None   # accelerate.Accelerator when more than one process runs
    process_index: int = 0
    num_processes: int = 1
    _alone: bool = field(default=False, repr=False)

    @property
    def is_main(self) -> bool:
        return self.process_index == 0

    @property
    def rank(self) -> int:
        """This process's place among those that share the work now (0 while working alone)."""
        return 0 if self._alone else self.process_index

    @property
    def world(self) -> int:
        """How many processes share the work now (1 while working alone)."""
        return 1 if self._alone else self.num_processes

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        """Wait until every process gets here (nothing to wait for in one process, or while working alone)."""
        if self.distributed:
            self.accelerator.wait_for_everyone()

    @contextlib.contextmanager
    def alone(self):
        """Inside, this process works as if it were the only one (no barrier, no shard): for the main process's
        own work after the shared part, such as the tables, the executor check and the figures."""
        before, self._alone = self._alone, True
        try:
            yield self
        finally:
            self._alone = before

    def main_first(self):
        """A context in which the main process goes first (e.g. to fetch data or a backbone once) and the others
        follow when it is done."""
        if not self.distributed:
            return contextlib.nullcontext()
        return self.accelerator.main_process_first()

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This process's part of one global batch of example positions (every world-th, from its rank)."""
        return np.asarray(idx)[self.rank::self.world] if self.distributed else np.asarray(idx)

    def gather_rows(self, positions: np.ndarray, rows: np.ndarray, total: int) -> np.ndarray:
        """The rows [k, ...] each process computed for its `positions`, put together in order for all `total`
        positions, on every process; an error if a position is missing or computed twice."""
        if not self.distributed:
            return rows
        from accelerate.utils import gather_object

        parts = gather_object([(np.asarray(positions), np.asarray(rows))])
        out = np.zeros((total, *rows.shape[1:]), dtype=rows.dtype)
        seen = np.zeros(total, dtype=np.int64)
        for pos, values in parts:
            out[pos] = values
            np.add.at(seen, pos, 1)
        if not (seen == 1).all():
            raise RuntimeError(f"gathered predictions cover {int((seen > 0).sum())} of {total} rows "
                               f"({int((seen > 1).sum())} twice)")
        return out

    def mean(self, value: float) -> float:
        """The mean of a number over the processes (e.g. a batch loss, for the log)."""
        if not self.distributed:
            return value
        import torch
        return float(self.accelerator.reduce(torch.tensor([value], device=self.device), reduction="mean")[0])

    def describe(self) -> dict:
        """What config.json records: device, its name, process count."""
        import torch
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None
        return {"device": str(self.device.type), "gpu": name, "processes": self.num_processes}


_CONTEXT: Context | None = None


def configure(device: str = "auto") -> Context:
    """Set this process's device (see resolve_device); under a launcher of several processes, the
    Accelerator's device, with `device` checked against it."""
    global _CONTEXT
    if launched_processes() > 1:
        from accelerate import Accelerator
        from accelerate.utils import InitProcessGroupKwargs

        # the other processes wait while the main one writes the tables and figures and runs the executor check
        accelerator = Accelerator(kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(hours=6))])
        if device not in ("auto", accelerator.device.type):
            raise ValueError(f"--device {device}: the launcher gave this process {accelerator.device}; leave "
                             "--device at auto under accelerate launch (use its --cpu for CPU processes)")
        _CONTEXT = Context(accelerator.device, accelerator, accelerator.process_index, accelerator.num_processes)
    else:
        _CONTEXT = Context(resolve_device(device))
    return _CONTEXT


def context() -> Context:
    """This process's context, configured with the default device on first use."""
    return _CONTEXT if _CONTEXT is not None else configure("auto" if launched_processes() > 1 else "cpu")


def is_main_process() -> bool:
    """True in the process that writes (always, in a single process); cheap, for the store's writes."""
    if _CONTEXT is not None:
        return _CONTEXT.is_main
    return os.environ.get("RANK", "0") == "0"
