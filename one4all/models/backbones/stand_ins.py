"""Random stand-ins for the language model: the "does the LM help?" ablations (Tan et al., NeurIPS 2024).

Built at the width of the LM they replace, so the token embedding, head, adapters and data stay
the same; like the LM they are frozen, and the adapter preset decides what trains (the `reference`
preset: LoRA on the position table and the head).

- `identity` (`ablation=no_lm`): the token embeddings plus a learned position table (the `wpe` role,
  so presets keep their meaning) go straight to the head.
- `attention` (`ablation=lm_to_attention`): the same, then one multi-head self-attention layer,
  post-LayerNorm with a residual: `norm(x + dropout(out(attention(query x, key x, value x))))`.

The third ablation, one random transformer block (`ablation=lm_to_transformer`), is the LM's own
family with random init and one block (configs/ablation/lm_to_transformer.yaml).
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from one4all.errors import UserError
from one4all.models.backbones.base import Backbone, Dims, Family, seeded

STAND_INS = {"identity": 0, "attention": 1}  # stand-in -> attention layers


class AttentionLayer(nn.Module):
    """One bidirectional multi-head self-attention layer with a residual and a LayerNorm after it.

    Written out rather than `nn.MultiheadAttention`, whose Q, K and V share one fused parameter
    (`in_proj_weight`): here they are three linear modules that LoRA can wrap as the `c_attn` role.
    """

    def __init__(self, dims: Dims) -> None:
        super().__init__()
        if dims.width % dims.heads:
            raise UserError(f"width {dims.width} is not a multiple of {dims.heads} attention heads; "
                            "fix model.backbone.config")
        self.heads, self.attn_dropout = dims.heads, dims.attn_dropout
        self.query, self.key, self.value, self.out = (nn.Linear(dims.width, dims.width) for _ in range(4))
        self.dropout = nn.Dropout(dims.dropout)
        self.norm = nn.LayerNorm(dims.width, eps=dims.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x[n, tokens, width]` -> same shape."""
        n, tokens, width = x.shape

        def heads(projected: torch.Tensor) -> torch.Tensor:
            return projected.view(n, tokens, self.heads, width // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(heads(self.query(x)), heads(self.key(x)), heads(self.value(x)),
                                                  dropout_p=self.attn_dropout if self.training else 0.0)
        return self.norm(x + self.dropout(self.out(attended.transpose(1, 2).reshape(n, tokens, width))))


class StandIn(nn.Module):
    """Token embeddings + a position table, then `n_attention` attention layers (0: no LM at all)."""

    def __init__(self, dims: Dims, n_attention: int) -> None:
        super().__init__()
        self.width = dims.width
        self.wpe = nn.Embedding(dims.positions, dims.width)
        self.drop = nn.Dropout(dims.dropout)
        self.layer = nn.ModuleList(AttentionLayer(dims) for _ in range(n_attention))
        # The LMs' own initialisation (GPT-2, BERT): N(0, initializer_range) weights, zero biases.
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=dims.init_std)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        """`inputs_embeds[n, tokens, width]` -> hidden states of the same shape."""
        positions = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device)
        hidden = self.drop(inputs_embeds + self.wpe(positions))
        for layer in self.layer:
            hidden = layer(hidden)
        return hidden


class StandInFamily(Family):
    """The stand-ins' modules by role (no MLP: `mlp_fc`/`mlp_proj` are empty)."""

    prefix = "stand_in"
    title = "stand-in"
    roles: ClassVar[dict[str, tuple[str, ...]]] = {
        "wpe": ("wpe",),
        "layernorms": ("layer.{i}.norm",),
        "c_attn": ("layer.{i}.query", "layer.{i}.key", "layer.{i}.value"),
        "attn_proj": ("layer.{i}.out",),
    }

    def blocks(self, model: nn.Module) -> nn.ModuleList:
        return model.layer

    def entry(self, model: nn.Module) -> nn.Module:
        return model.drop

    def width(self, model: nn.Module) -> int:
        return model.width

    def n_positions(self, model: nn.Module) -> int:
        return model.wpe.num_embeddings

    def hidden(self, model: nn.Module, embeds: torch.Tensor) -> torch.Tensor:
        return model(inputs_embeds=embeds)


def build_stand_in(kind: str, dims: Dims, seed: int, replaces: str, dropout: float | None = None) -> Backbone:
    """A frozen random stand-in `kind` of `STAND_INS` at the sizes `dims` of the LM `replaces`."""
    if kind not in STAND_INS:
        raise UserError(f"model.backbone.replace={kind!r}; use one of {', '.join(STAND_INS)} or null (the LM)")
    if dropout is not None:
        dims = replace(dims, dropout=dropout, attn_dropout=dropout)
    with seeded(seed):
        model = StandIn(dims, STAND_INS[kind])
    model.requires_grad_(False)
    return Backbone(model=model, family=StandInFamily(), pretrained=False, source=f"random stand-in for {replaces}",
                    replaced_by=kind)
