"""GPT-2 of any size (the default backbone): pretrained (hub id, local dir, HF cache) or random init."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn
from transformers import GPT2Config, GPT2Model

from one4all.models.backbones.base import Dims, Family, LMSpec, zero_table
from one4all.models.fast_gpt2 import streamline


class GPT2Family(Family):
    """GPT-2's modules by role: `wpe`, `h.{i}.attn.c_attn` (Q, K, V in one projection), ..."""

    prefix = "gpt2"
    title = "GPT-2"
    roles: ClassVar[dict[str, tuple[str, ...]]] = {
        "wpe": ("wpe",),
        "layernorms": ("h.{i}.ln_1", "h.{i}.ln_2", "ln_f"),
        "c_attn": ("h.{i}.attn.c_attn",),
        "attn_proj": ("h.{i}.attn.c_proj",),
        "mlp_fc": ("h.{i}.mlp.c_fc",),
        "mlp_proj": ("h.{i}.mlp.c_proj",),
    }

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        return model.h

    def entry(self, model: nn.Module) -> nn.Module:
        # The embedding dropout: its output is inputs_embeds + wpe, what block 1 reads.
        return model.drop

    def width(self, model: nn.Module) -> int:
        return model.config.n_embd

    def n_positions(self, model: nn.Module) -> int:
        return model.config.n_positions


@dataclass
class GPT2Spec(LMSpec):
    """How to obtain the frozen GPT-2 (fields of `LMSpec`).

    `path` is a hub id (`gpt2`, `gpt2-medium`, ...) or a local directory; `config` overrides GPT-2
    small's architecture for random init (e.g. `{n_embd: 1024, n_head: 16}` for medium's shape).
    `attn_implementation`: `auto` (one4all's: the authors' eager formulation with cheap dropout masks
    on the CPU, transformers' fused SDPA on CUDA; models.fast_gpt2), or transformers' own `eager` or
    `sdpa` (whose CPU kernel has no dropout and falls back to a slower path in training).
    `fused_gelu` computes GPT-2's tanh GELU with one fused kernel instead of transformers' eight
    elementwise ops (same function, different rounding; see models.fast_gpt2).
    """

    path: str = "gpt2"
    fused_gelu: bool = True

    family: ClassVar[Family] = GPT2Family()
    model_class: ClassVar[type] = GPT2Model
    config_class: ClassVar[type] = GPT2Config
    settings: ClassVar[dict[str, Any]] = {
        "n_embd": int, "n_head": int, "n_positions": int, "n_layer": int, "n_inner": int | None,
        "activation_function": str, "resid_pdrop": float, "embd_pdrop": float, "attn_pdrop": float,
        "layer_norm_epsilon": float, "initializer_range": float, "scale_attn_weights": bool,
        "scale_attn_by_inverse_layer_idx": bool, "reorder_and_upcast_attn": bool,
    }
    activation_key: ClassVar[str] = "activation_function"

    def layers_key(self) -> str:
        return "n_layer"

    def keep_blocks(self, model: GPT2Model, n_layers: int) -> None:
        model.h = model.h[:n_layers]

    def drop_token_table(self, model: GPT2Model) -> None:
        # 38.6M parameters (154 MB) for GPT-2 small, never read: the network feeds inputs_embeds.
        model.wte = zero_table(model.config.n_embd)

    def finish(self, model: GPT2Model) -> GPT2Model:
        return streamline(model, fused_gelu=self.fused_gelu, attn_implementation=self.attn_implementation)

    def dims(self, config: GPT2Config) -> Dims:
        return Dims(width=config.n_embd, heads=config.n_head, positions=config.n_positions,
                    init_std=config.initializer_range, eps=config.layer_norm_epsilon, dropout=config.embd_pdrop,
                    attn_dropout=config.attn_pdrop)
