"""The One-for-All network: instance norm -> patches -> frozen GPT-2 -> flatten head.

Exactly the authors' forecasting model (DESIGN.md §3); what trains is decided by the adapter
preset. Parts that are neither GPT-2 nor trained (in the `reference` preset: the patch embedding
and the head's base weight) are initialised from `init_seed`, so a saved artifact can regenerate
them instead of storing them.
"""

from __future__ import annotations

import torch
from torch import nn

from one4all.adapters import AdapterSpec, apply_adapter
from one4all.errors import UserError
from one4all.models.backbone import BackboneSpec, load_backbone, seeded
from one4all.models.contract import IOSpec
from one4all.models.encoder import InstanceNorm, Patcher

# GPT-2 block projections that LoRA can target, by part name.
_PROJECTIONS = {"c_attn": "attn.c_attn", "attn_proj": "attn.c_proj", "mlp_fc": "mlp.c_fc",
                "mlp_proj": "mlp.c_proj"}


class One4All(nn.Module):
    """GPT4TS / One-for-All forecaster over channel-independent patch tokens."""

    # Each channel is its own univariate sample: the data side serves [batch, length, 1] windows.
    channel_independent = True

    def __init__(
        self,
        io: IOSpec,
        backbone: BackboneSpec,
        adapter: AdapterSpec | None = None,
        patch_len: int = 16,
        stride: int = 8,
        init_seed: int = 0,
        channel_chunk: int | None = None,
    ) -> None:
        super().__init__()
        if io.kind != "forecast":
            raise UserError(f"the One-for-All forecaster produces forecasts, not {io.kind!r} outputs")
        if channel_chunk is not None and channel_chunk <= 0:
            raise UserError(f"model.channel_chunk={channel_chunk}; use a positive number of series or null")
        self.io = io
        self.channel_chunk = channel_chunk
        self.norm = InstanceNorm()
        self.patcher = Patcher(patch_len, stride)
        self.n_patches = self.patcher.n_patches(io.seq_len)
        loaded = load_backbone(backbone)
        self.gpt2 = loaded.model
        self.backbone_info = loaded.describe()
        d_model = self.gpt2.config.n_embd
        if self.n_patches > self.gpt2.config.n_positions:
            raise UserError(f"{self.n_patches} patches exceed GPT-2's {self.gpt2.config.n_positions} positions; "
                            "shorten task.seq_len or raise model.stride")
        with seeded(init_seed):
            self.in_layer = nn.Linear(patch_len, d_model)
        with seeded(init_seed + 1):
            self.out_layer = nn.Linear(d_model * self.n_patches, io.horizon)
        apply_adapter(self, adapter or AdapterSpec(), self.lora_parts(), self.trainable_parts())

    def lora_parts(self) -> dict[str, list[str]]:
        """Part name -> module names that LoRA may wrap."""
        blocks = range(len(self.gpt2.h))
        parts = {"wpe": ["gpt2.wpe"], "head": ["out_layer"], "patch_embedding": ["in_layer"]}
        for part, suffix in _PROJECTIONS.items():
            parts[part] = [f"gpt2.h.{i}.{suffix}" for i in blocks]
        return parts

    def trainable_parts(self) -> dict[str, list[str]]:
        """Part name -> regexes over parameter names, for parts trained in full."""
        parts = {
            "wpe": [r"gpt2\.wpe\.weight"],
            "head": [r"out_layer\.(weight|bias)"],
            "patch_embedding": [r"in_layer\.(weight|bias)"],
            "layernorms": [r"gpt2\.(h\.\d+\.ln_\d|ln_f)\.(weight|bias)"],
        }
        for part, suffix in _PROJECTIONS.items():
            parts[part] = [rf"gpt2\.h\.\d+\.{suffix.replace('.', '[.]')}\.(weight|bias)"]
        return parts

    def forecast_series(self, series: torch.Tensor) -> torch.Tensor:
        """Normalised univariate series `[n, seq_len]` -> `[n, horizon]`."""
        tokens = self.in_layer(self.patcher(series))
        hidden = self.gpt2(inputs_embeds=tokens).last_hidden_state
        return self.out_layer(hidden.reshape(len(series), -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x[batch, seq_len, channels]` -> forecast `[batch, horizon, channels]`.

        Every channel is an independent series. Without gradients (inference), at most
        `channel_chunk` series go through GPT-2 at once, so a joint window of many channels
        (Traffic: 862) needs bounded activation memory; with gradients chunking would not help
        (backward keeps every chunk's activations), so training batches pass whole.
        """
        batch, length, channels = x.shape
        z, mean, std = self.norm.normalise(x)
        series = z.permute(0, 2, 1).reshape(batch * channels, length)
        chunk = self.channel_chunk
        if chunk is not None and len(series) > chunk and not torch.is_grad_enabled():
            out = torch.cat([self.forecast_series(part) for part in series.split(chunk)])
        else:
            out = self.forecast_series(series)
        out = out.reshape(batch, channels, -1).permute(0, 2, 1)
        return self.norm.denormalise(out, mean, std)
