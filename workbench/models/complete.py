"""Complete models of any depth: the first k layers of a pre-trained encoder plus a fresh head.

A *complete* model of depth k (BERT-kL in the paper) keeps the embeddings and the first k
transformer layers of the backbone, pools the sequence (`cls` or `mean` over the attention mask)
and classifies with a head (dense + tanh, dropout, linear), all of it fine-tuned on the task.


Backbones and their loading live in `workbench.models.backbones`.
Pooling defaults to the backbone's own convention: a sentence-transformers folder declares it in
`1_Pooling/config.json` (all-MiniLM-L6-v2 uses mean pooling); classic checkpoints use [CLS].
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer

from workbench.config import DEFAULT_BACKBONE
from workbench.models.backbones import POOLINGS, auto_encoder, checkpoint_files, default_pooling, load_encoder, load_tokenizer
from workbench.names import complete_name
from workbench.store import fresh_tmp_dir, replace_dir, write_json


@dataclass(frozen=True)
class ModelSpec:
    """What a complete model is made of; serialised next to every checkpoint."""
    backbone: str = DEFAULT_BACKBONE   # alias, Hugging Face name or local folder
    depth: int = 6                     # number of transformer layers kept (k in BERT-kL)
    num_labels: int = 2                # size of the classification head
    pooling: str | None = None         # 'cls' | 'mean'; None = the backbone's own convention
    dropout: float = 0.1               # dropout of the encoder and the head
    attn_implementation: str = "sdpa"  # 'sdpa' (fast) or 'eager' (needed to count attention FLOPs)

    def resolved(self) -> "ModelSpec":
        """This spec with `pooling` filled in from the backbone's convention."""
        spec = self if self.pooling else replace(self, pooling=default_pooling(self.backbone))
        if spec.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {spec.pooling!r}")
        if spec.depth < 1:
            raise ValueError(f"depth must be at least 1, got {spec.depth}")
        return spec

    @property
    def name(self) -> str:
        """Short label used in the `model` column of outputs tables, e.g. `complete-2L`."""
        return complete_name(self.depth)

    @classmethod
    def from_checkpoint(cls, folder: str | Path) -> "ModelSpec":
        """The spec stored in a checkpoint folder's spec.json."""
        return cls(**json.loads((Path(folder) / "spec.json").read_text()))


@dataclass
class ClassifierOutput:
    """What a classifier returns for a batch."""
    logits: torch.Tensor  # [batch, num_labels]
    pooled: torch.Tensor  # [batch, hidden], the pooled sequence before the head


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """Pool token states [batch, seq, hidden] into [batch, hidden]: the [CLS] state or the masked mean."""
    if how == "cls":
        return hidden[:, 0]
    if how == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [batch, seq, 1]
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {how!r}")


class ClassifierHead(nn.Module):
    """dense + tanh (BERT's pooler), dropout, linear: the head of complete models and of off-ramps."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_labels)
        for layer in (self.dense, self.out):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:  # [batch, hidden] -> [batch, num_labels]
        return self.out(self.dropout(torch.tanh(self.dense(pooled))))


class CompleteModel(nn.Module):
    """First k layers of a backbone + pooling + head; see the module docstring."""

    def __init__(self, spec: ModelSpec, encoder: nn.Module, head: ClassifierHead):
        super().__init__()
        self.spec = spec
        self.encoder = encoder
        self.head = head

    @classmethod
    def build(cls, spec: ModelSpec, *, seed: int = 0) -> "CompleteModel":
        """A fresh model: pre-trained layers, head initialised from `seed` (dense from the backbone's pooler)."""
        spec = spec.resolved()
        encoder = load_encoder(spec.backbone, spec.depth, dropout=spec.dropout,
                               attn_implementation=spec.attn_implementation)
        torch.manual_seed(seed)
        head = ClassifierHead(encoder.config.hidden_size, spec.num_labels, spec.dropout)
        pooler = getattr(encoder, "pooler", None)
        if pooler is not None and isinstance(getattr(pooler, "dense", None), nn.Linear):
            head.dense.load_state_dict(pooler.dense.state_dict())
        if hasattr(encoder, "pooler"):
            encoder.pooler = None  # the head owns the pooler; the encoder's would be wasted work
        return cls(spec, encoder, head)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> ClassifierOutput:
        """input_ids, attention_mask, token_type_ids: [batch, seq] -> logits [batch, num_labels]."""
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        pooled = pool(hidden, attention_mask, self.spec.pooling)
        return ClassifierOutput(logits=self.head(pooled), pooled=pooled)

    def save_pretrained(self, folder: str | Path, *, tokenizer=None) -> Path:
        """Write `spec.json`, `encoder/` (safetensors), `head.safetensors` and the tokenizer, atomically."""
        folder = Path(folder)
        tmp = fresh_tmp_dir(folder)
        write_json(tmp / "spec.json", asdict(self.spec))
        self.encoder.save_pretrained(tmp / "encoder", safe_serialization=True)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(tmp / "head.safetensors"))
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp / "tokenizer")
        return replace_dir(tmp, folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "CompleteModel":
        """Load a folder written by `save_pretrained`."""
        folder = Path(folder)
        if not (folder / "spec.json").is_file():
            raise FileNotFoundError(f"{folder} is not a complete-model checkpoint (no spec.json); "
                                    "pass a folder written by `train`")
        with checkpoint_files(folder):
            spec = ModelSpec(**json.loads((folder / "spec.json").read_text()))
            transformers.logging.set_verbosity_error()
            encoder = auto_encoder(folder / "encoder", attn_implementation=spec.attn_implementation)
            if hasattr(encoder, "pooler"):
                encoder.pooler = None
            head = ClassifierHead(encoder.config.hidden_size, spec.num_labels, spec.dropout)
            head.load_state_dict(load_file(str(folder / "head.safetensors")))
        return cls(spec, encoder, head)


def load_checkpoint_tokenizer(folder: str | Path, spec: ModelSpec):
    """The tokenizer stored with a checkpoint, or the backbone's."""
    stored = Path(folder) / "tokenizer"
    return AutoTokenizer.from_pretrained(stored) if stored.is_dir() else load_tokenizer(spec.backbone)
