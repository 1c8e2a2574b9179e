"""Internal classifiers at every layer of one backbone: DeeBERT off-ramps, PABEE, and probes.

- **DeeBERT** (Xin et al. 2020): stage 1 is the fine-tuned complete L-layer model; stage 2 freezes
  it and trains one off-ramp per layer (dense + tanh on the pooled state, initialised from the final
  pooler, dropout, linear). The last exit is the fine-tuned model's own head. Because the backbone is
  frozen, stage 2 trains from cached pooled states (`pooled_features`), which costs seconds.
- **PABEE** (Zhou et al. 2020): a linear classifier per layer on one shared pooler, trained jointly
  with the backbone on sum_j j * CE_j / sum_j j.
- **Probes**: the same per-layer heads trained on the frozen *pre-trained* backbone, showing how much
  task information each layer holds before fine-tuning.
- **BERxiT** (Xin et al. 2021) and **mutual** (after LeeBERT, Zhu 2021, and GAML-BERT, Zhu et al. 2021), beyond
  the paper: PABEE's architecture trained jointly with the backbone on another objective of the per-exit logits
  (`alternating_objective`, `mutual_objective`; `JointObjective` picks one by kind), so that the objective is
  the only difference between the three.
- **FastBERT** (Liu et al. 2020), beyond the paper: DeeBERT's frozen backbone and off-ramps, each off-ramp
  trained by self-distillation from the last layer (`self_distillation_loss`): the fine-tuned model's own
  answer, softened, teaches every earlier exit.

All three are a `MultiExitModel`, whose forward returns logits at every exit, [batch, L, C].
Off-ramps and probes are trained with Adam for up to `HeadTrainConfig.epochs` epochs on the cached
states, each layer's head kept at its best tune-split epoch: at least as much training as DeeBERT's
own recipe (which reuses the fine-tuning schedule), so the baseline is not weakened.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from workbench.config import DifficultyConfig, DistillConfig, HeadTrainConfig
from workbench.data.batching import Encoded, batch_indices, collate
from workbench.measures.metrics import task_metric
from workbench.methods.difficulty import difficulty_aware_loss
from workbench.models.backbones import auto_encoder, checkpoint_files, backbone_layers, default_pooling, load_encoder
from workbench.models.complete import ClassifierHead, CompleteModel, pool
from workbench.models.precision import autocast
from workbench.names import JOINT_KINDS, LEARNED_WEIGHT_KINDS, MULTI_EXIT_KINDS
from workbench.store import fresh_tmp_dir, replace_dir, write_json


@dataclass(frozen=True)
class MultiExitSpec:
    """What a multi-exit model is made of; serialised next to every checkpoint."""
    kind: str                          # one of MULTI_EXIT_KINDS
    backbone: str = "minilm"           # alias, Hugging Face name or local folder
    num_layers: int = 6                # L: layers of the backbone, one exit after each
    num_labels: int = 2
    pooling: str | None = None         # 'cls' | 'mean'; None = the backbone's convention
    dropout: float = 0.1
    attn_implementation: str = "sdpa"

    def resolved(self) -> "MultiExitSpec":
        if self.kind not in MULTI_EXIT_KINDS:
            raise ValueError(f"kind must be one of {MULTI_EXIT_KINDS}, got {self.kind!r}")
        return self if self.pooling else replace(self, pooling=default_pooling(self.backbone))

    @property
    def name(self) -> str:
        return self.kind


@dataclass
class MultiExitOutput:
    logits: torch.Tensor  # [batch, exits, num_labels]


class MultiExitModel(nn.Module):
    """An encoder of L layers with a classifier after every layer."""

    def __init__(self, spec: MultiExitSpec, encoder: nn.Module, heads: nn.ModuleList):
        super().__init__()
        self.spec = spec
        self.encoder = encoder
        self.heads = heads

    @classmethod
    def build_pabee(cls, spec: MultiExitSpec, *, seed: int = 0) -> "MultiExitModel":
        """Pre-trained encoder + one shared pooler (from the backbone's) + a fresh linear per layer; the
        architecture of every jointly trained kind (JOINT_KINDS). The 'mutual' kind also learns one weight per
        exit (`exit_weights`, logits of a softmax, starting equal)."""
        spec = spec.resolved()
        if spec.kind not in JOINT_KINDS:
            raise ValueError(f"{spec.kind!r} is not trained jointly with its backbone; expected one of {JOINT_KINDS}")
        encoder = _encoder(spec)
        torch.manual_seed(seed)
        heads = [ClassifierHead(encoder.config.hidden_size, spec.num_labels, spec.dropout)
                 for _ in range(spec.num_layers)]
        shared = heads[0].dense
        _copy_backbone_pooler(encoder, shared)
        for head in heads:
            head.dense = shared
        _drop_pooler(encoder)
        model = cls(spec, encoder, nn.ModuleList(heads))
        if spec.kind in LEARNED_WEIGHT_KINDS:
            model.exit_weights = nn.Parameter(torch.zeros(spec.num_layers))
        return model

    def loss_weights(self) -> np.ndarray | None:
        """The learned weight of every exit's loss (positive, summing to one), or None for a kind without them."""
        weights = getattr(self, "exit_weights", None)
        return None if weights is None else torch.softmax(weights.detach().float(), dim=0).numpy()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> MultiExitOutput:
        """[batch, seq] inputs -> logits at every exit [batch, L, C]."""
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                              **kwargs).hidden_states[1:]
        logits = [head(pool(h, attention_mask, self.spec.pooling)) for head, h in zip(self.heads, states)]
        return MultiExitOutput(logits=torch.stack(logits, dim=1))

    def exit_logits(self, index: int, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits [batch, C] of exit `index` (0-based) from that layer's hidden states [batch, seq, H]."""
        return self.heads[index](pool(hidden, attention_mask, self.spec.pooling))

    def save_pretrained(self, folder: str | Path, *, tokenizer=None) -> Path:
        """Write `spec.json`, `encoder/` and `heads.safetensors` (safetensors, atomically)."""
        folder = Path(folder)
        tmp = fresh_tmp_dir(folder)
        write_json(tmp / "spec.json", asdict(self.spec))
        self.encoder.save_pretrained(tmp / "encoder", safe_serialization=True)
        # PABEE's heads share one pooler: store copies, sharing is rebuilt on load
        save_file({k: v.detach().clone().contiguous() for k, v in self.heads.state_dict().items()},
                  str(tmp / "heads.safetensors"))
        if getattr(self, "exit_weights", None) is not None:
            save_file({"exit_weights": self.exit_weights.detach().clone()}, str(tmp / "exit_weights.safetensors"))
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp / "tokenizer")
        return replace_dir(tmp, folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "MultiExitModel":
        folder = Path(folder)
        if not (folder / "heads.safetensors").is_file():
            raise FileNotFoundError(f"{folder} is not a multi-exit checkpoint (no heads.safetensors)")
        with checkpoint_files(folder):
            spec = MultiExitSpec(**json.loads((folder / "spec.json").read_text()))
            transformers.logging.set_verbosity_error()
            encoder = auto_encoder(folder / "encoder", attn_implementation=spec.attn_implementation)
            _drop_pooler(encoder)
            heads = [ClassifierHead(encoder.config.hidden_size, spec.num_labels, spec.dropout)
                     for _ in range(spec.num_layers)]
            if spec.kind in JOINT_KINDS:
                for head in heads[1:]:
                    head.dense = heads[0].dense
            module = nn.ModuleList(heads)
            module.load_state_dict(load_file(str(folder / "heads.safetensors")))
            model = cls(spec, encoder, module)
            if (folder / "exit_weights.safetensors").is_file():
                model.exit_weights = nn.Parameter(load_file(str(folder / "exit_weights.safetensors"))["exit_weights"])
        return model


def _encoder(spec: MultiExitSpec) -> nn.Module:
    total = backbone_layers(spec.backbone)
    if spec.num_layers > total:
        raise ValueError(f"num_layers {spec.num_layers} exceeds the {total} layers of {spec.backbone!r}")
    return load_encoder(spec.backbone, spec.num_layers, dropout=spec.dropout,
                        attn_implementation=spec.attn_implementation)


def _copy_backbone_pooler(encoder: nn.Module, dense: nn.Linear) -> None:
    pooler = getattr(encoder, "pooler", None)
    if pooler is not None and isinstance(getattr(pooler, "dense", None), nn.Linear):
        dense.load_state_dict(pooler.dense.state_dict())


def _drop_pooler(encoder: nn.Module) -> None:
    if hasattr(encoder, "pooler"):
        encoder.pooler = None


def _exit_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every exit, [L], from logits [batch, L, C]."""
    return torch.stack([nn.functional.cross_entropy(logits[:, j], labels) for j in range(logits.shape[1])])


def pabee_objective(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """PABEE's weighted objective (Zhou et al., NeurIPS 2020): sum_j j * CE_j / sum_j j over exits j = 1..L."""
    weights = torch.arange(1, logits.shape[1] + 1, dtype=logits.dtype)
    return (weights * _exit_losses(logits, labels)).sum() / weights.sum()


def alternating_objective(logits: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
    """BERxiT's alternating fine-tuning (Xin et al., EACL 2021): on even steps the last exit's CE alone, the
    complete model's own objective; on odd steps the mean CE over all exits, 1/L sum_j CE_j. Alternating keeps
    the last layer as accurate as a model fine-tuned alone while the earlier exits still learn."""
    if step % 2 == 0:
        return nn.functional.cross_entropy(logits[:, -1], labels)
    return _exit_losses(logits, labels).mean()


MUTUAL_ENTROPY = 1.0  # lambda: the weight of the entropy term that keeps the learned exit weights from collapsing


def mutual_objective(logits: torch.Tensor, labels: torch.Tensor, weight_logits: torch.Tensor,
                     distill: DistillConfig) -> torch.Tensor:
    """Learned exit weights with mutual distillation, after LeeBERT (Zhu, ACL 2021) and GAML-BERT (Zhu et al.,
    EMNLP 2021):

        sum_j w_j * [(1 - b) * CE_j + b * T^2 * KL(q_-j || p_j)]  +  lambda * (log L - H(w)),   w = softmax(phi)

    p_j is exit j's distribution at temperature T and q_-j the mean of every other exit's, detached: shallow
    exits learn from deep ones and deep ones from shallow ones (two-way). b and T are `distill`'s weight and
    temperature, lambda = MUTUAL_ENTROPY. The weights w are learned with the model by gradient descent on this
    same loss; the entropy term (its gap to the uniform weights' log L, so that the loss is never negative)
    makes their optimum w_j proportional to exp(-loss_j / lambda), so an exit whose loss is lower weighs more,
    without all weight going to one exit. (LeeBERT learns its weights by cross-level
    optimisation on held-out batches instead, which costs a second backward pass per exit.)"""
    t, b = distill.temperature, distill.weight
    log_p = nn.functional.log_softmax(logits / t, dim=-1)                     # [batch, L, C]
    p = log_p.exp().detach()
    L = logits.shape[1]
    others = (p.sum(dim=1, keepdim=True) - p) / max(L - 1, 1)               # [batch, L, C], q_-j
    kl = (others * (others.clamp_min(1e-12).log() - log_p)).sum(-1).mean(0)  # [L], batch mean
    per_exit = (1 - b) * _exit_losses(logits, labels) + b * t * t * kl
    w = torch.softmax(weight_logits.to(per_exit.dtype), dim=0)
    entropy = -(w * w.clamp_min(1e-12).log()).sum()
    return (w * per_exit).sum() + MUTUAL_ENTROPY * (math.log(L) - entropy)


class JointObjective:
    """`fit`'s loss for a jointly trained multi-exit model of `kind` (JOINT_KINDS): PABEE's weighted sum,
    BERxiT's alternation (by the global step, so a resumed run alternates as an uninterrupted one) or the
    learned-weights mutual distillation (with the model's own `exit_weights`)."""

    def __init__(self, kind: str, distill: DistillConfig | None = None):
        if kind not in JOINT_KINDS:
            raise ValueError(f"no joint objective for {kind!r}; expected one of {JOINT_KINDS}")
        self.kind, self.distill = kind, distill or DistillConfig()

    def __call__(self, model: nn.Module, batch: dict, labels: torch.Tensor, idx: np.ndarray,
                 step: int = 0) -> torch.Tensor:
        logits = model(**batch).logits  # [batch, L, C]
        if self.kind == "berxit":
            return alternating_objective(logits, labels, step)
        if self.kind == "mutual":
            return mutual_objective(logits, labels, model.exit_weights, self.distill)
        return pabee_objective(logits, labels)


def pabee_loss(model: nn.Module, batch: dict, labels: torch.Tensor, idx: np.ndarray, step: int = 0) -> torch.Tensor:
    """PABEE's weighted objective on the model's logits at every exit (`pabee_objective`)."""
    return pabee_objective(model(**batch).logits, labels)


def self_distillation_loss(logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                           distill: DistillConfig) -> torch.Tensor:
    """(1 - w) * CE(logits, labels) + w * T^2 * KL(softmax(teacher / T) || softmax(logits / T)), batch mean.

    The off-ramp learns the last layer's softened distribution (FastBERT's self-distillation, Liu et al.,
    ACL 2020, which uses the KL term alone, w = 1) besides the gold label; T^2 keeps the soft term's gradient
    on the scale of the hard one (Hinton et al., 2015)."""
    t = distill.temperature
    soft = nn.functional.kl_div(nn.functional.log_softmax(logits / t, dim=-1),
                                nn.functional.log_softmax(teacher / t, dim=-1), log_target=True,
                                reduction="batchmean")
    return (1 - distill.weight) * nn.functional.cross_entropy(logits, labels) + distill.weight * t * t * soft


def pooled_features(encoder: nn.Module, pooling: str, encoded: Encoded, *, batch_size: int = 64,
                    precision: str = "fp32") -> np.ndarray:
    """Pooled states after every layer of a frozen encoder, [n, L, H], in eval mode (float32 whatever the
    `precision` of the pass)."""
    encoder.eval()
    out = None
    with torch.inference_mode(), autocast(precision):
        for idx in batch_indices(encoded.lengths, batch_size, shuffle=False):
            batch = collate(encoded, idx)
            states = encoder(**batch, output_hidden_states=True).hidden_states[1:]
            pooled = torch.stack([pool(h, batch["attention_mask"], pooling) for h in states], dim=1)
            if out is None:
                out = np.zeros((len(encoded), *pooled.shape[1:]), dtype=np.float32)
            out[idx] = pooled.float().numpy()
    return out


def train_heads(features: np.ndarray, labels: np.ndarray, tune_features: np.ndarray, tune_labels: np.ndarray, *,
                layers: list[int], num_labels: int, metric: str, config: HeadTrainConfig, seed: int,
                init_dense: nn.Linear | None = None, easy: np.ndarray | None = None,
                difficulty: DifficultyConfig | None = None, teacher: np.ndarray | None = None,
                distill: DistillConfig | None = None,
                progress: bool = True) -> tuple[dict[int, ClassifierHead], dict]:
    """Train one head per layer index in `layers` on cached states [n, L, H]; keep each at its best tune epoch.

    With `easy` (difficulty labels of the training examples) and `difficulty`, each head's loss adds the
    difficulty-aware regularizer on its own confidence: CE + lambda * L_DA. With `teacher` (the last layer's
    logits on the training examples, [n, C]) and `distill`, the cross-entropy is replaced by
    `self_distillation_loss`.
    Returns the heads by layer index and a history {layer index: [tune metric per epoch]}.
    """
    if (teacher is None) != (distill is None) or (teacher is not None and len(teacher) != len(labels)):
        raise ValueError("self-distilled heads need both a DistillConfig and the teacher's logits of every "
                         "training example")
    teacher_t = torch.as_tensor(np.asarray(teacher, dtype=np.float32)) if teacher is not None else None
    easy_t = torch.as_tensor(np.asarray(easy, dtype=bool)) if easy is not None else None
    if easy_t is not None and (difficulty is None or len(easy_t) != len(labels)):
        raise ValueError(f"difficulty-aware heads need a DifficultyConfig and one label per training example "
                         f"(got {len(easy_t)} labels for {len(labels)} examples)")
    hidden = features.shape[2]
    x_all, y = torch.tensor(features), torch.tensor(np.asarray(labels, dtype=np.int64))
    tx_all = torch.tensor(tune_features)
    heads, history = {}, {}
    for j in tqdm(layers, desc="train exit heads", disable=not progress, unit="layer"):
        torch.manual_seed(seed * 1000 + j)
        head = ClassifierHead(hidden, num_labels, config.dropout)
        if init_dense is not None:
            head.dense.load_state_dict(init_dense.state_dict())
        optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        rng = np.random.default_rng([seed, j])
        best, best_state, scores = -np.inf, None, []
        for _ in range(config.epochs):
            head.train()
            order = rng.permutation(len(y))
            for start in range(0, len(order), config.batch_size):
                idx = order[start:start + config.batch_size]
                logits = head(x_all[idx, j])
                loss = (nn.functional.cross_entropy(logits, y[idx]) if teacher_t is None
                        else self_distillation_loss(logits, teacher_t[idx], y[idx], distill))
                if easy_t is not None:
                    confidence = torch.softmax(logits, dim=-1).max(dim=-1).values
                    loss = loss + difficulty.weight * difficulty_aware_loss(
                        confidence, easy_t[idx], margin=difficulty.margin,
                        generator=torch.Generator().manual_seed(seed * 1000 + j + start))
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            head.eval()
            with torch.inference_mode():
                score = task_metric(metric, tune_labels, head(tx_all[:, j]).argmax(1).numpy())
            scores.append(score)
            if score > best:
                best, best_state = score, {k: v.clone() for k, v in head.state_dict().items()}
        head.load_state_dict(best_state)
        heads[j], history[j] = head.eval(), scores
    return heads, history


def deebert_from_complete(complete: CompleteModel, heads: dict[int, ClassifierHead], *,
                          kind: str = "deebert") -> MultiExitModel:
    """Assemble DeeBERT (or FastBERT, `kind`): the fine-tuned complete model's encoder, trained off-ramps at
    layers 1..L-1, and the complete model's own head at layer L."""
    spec = MultiExitSpec(kind=kind, backbone=complete.spec.backbone, num_layers=complete.spec.depth,
                         num_labels=complete.spec.num_labels, pooling=complete.spec.pooling,
                         dropout=complete.spec.dropout, attn_implementation=complete.spec.attn_implementation)
    ordered = [heads[j] for j in range(spec.num_layers - 1)] + [complete.head]
    return MultiExitModel(spec, complete.encoder, nn.ModuleList(ordered))


def probe_model(spec: MultiExitSpec, heads: dict[int, ClassifierHead]) -> MultiExitModel:
    """Assemble probes: the pre-trained (not fine-tuned) encoder with a trained head per layer."""
    spec = replace(spec.resolved(), kind="probe")
    encoder = _encoder(spec)
    _drop_pooler(encoder)
    return MultiExitModel(spec, encoder, nn.ModuleList([heads[j] for j in range(spec.num_layers)]))


def backbone_pooler(spec: MultiExitSpec) -> nn.Linear | None:
    """The pre-trained pooler's dense layer of a backbone, if it has one (to initialise probe heads)."""
    encoder = load_encoder(spec.backbone, 1)
    pooler = getattr(encoder, "pooler", None)
    return pooler.dense if pooler is not None and isinstance(getattr(pooler, "dense", None), nn.Linear) else None
