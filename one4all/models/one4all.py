"""The One-for-All network: a frozen backbone (GPT-2 by default) between a per-kind input layout and head.

Long-term forecasting is exactly the authors' model (DESIGN.md §3): instance norm -> patches ->
frozen GPT-2 -> flatten head; short-term forecasting is their per-step network
(`forecast_layout=step`, models.layouts.StepForecast). Reconstruction (imputation, anomaly
detection) and classification follow the authors' GPT4TS designs (models.layouts). The backbone is
any family of models.backbones (GPT-2, BERT-family encoders, or a random stand-in for the
ablations), addressed by role only. What trains is decided by the adapter preset, over part names
shared by every kind. Parts that are neither backbone nor trained (in the `reference` preset: the
token embedding and the head's base weight) are initialised from `init_seed`, so a saved artifact
can regenerate them instead of storing them.

When nothing before the head trains (`adapter=linear_probe`, LoRA on the head only), the frozen
front (token embedding + backbone) runs without autograd, and `cache_backbone_features` can memoise
its output across epochs (models.feature_cache).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from one4all.adapters import AdapterMethod, LoRASpec
from one4all.contract import IOSpec, Network
from one4all.errors import UserError
from one4all.models.backbones import load_backbone
from one4all.models.backbones.base import LORA_ROLES, ROLES, LMSpec, seeded
from one4all.models.fast_dropout import use_fast_dropout
from one4all.models.feature_cache import FeatureCache
from one4all.models.layouts import LayoutOptions, PatchForecast, make_layout

_LORA_TYPES = (nn.Linear, nn.Conv1d, nn.Embedding)


class One4All(Network):
    """GPT4TS / One-for-All on a frozen backbone, for forecast, reconstruct and classify outputs.

    `in_layer` (token embedding) and `out_layer` (head projection) are the network's own; the
    layout (`layout`) cuts the input into tokens and shapes the backbone's states into the output.
    The backbone is registered under its family's prefix (`gpt2`, `bert`, `stand_in`): `lm`.
    """

    def __init__(
        self,
        io: IOSpec,
        backbone: LMSpec,
        adapter: AdapterMethod | None = None,
        patch_len: int | None = None,
        stride: int | None = None,
        init_seed: int = 0,
        segment_len: int = 25,
        d_ff: int | None = None,
        embed_dropout: float = 0.1,
        channel_embedding: str = "pad",
        forecast_layout: str = "patch",
        time_features: str = "none",
        unused_reference_params: bool = False,
        channel_chunk: int | None = None,
        cache_backbone_features: bool = False,
        feature_cache_mb: float = 4096,
        fast_dropout: bool = True,
    ) -> None:
        super().__init__()
        if channel_chunk is not None and channel_chunk <= 0:
            raise UserError(f"model.channel_chunk={channel_chunk}; use a positive number of series or null")
        self.io = io
        self.channel_chunk = channel_chunk
        loaded = load_backbone(backbone)
        self.family = loaded.family
        self.backbone_prefix = loaded.family.prefix
        self.add_module(self.backbone_prefix, loaded.model)
        self.backbone_info = loaded.describe()
        d_model = self.family.width(self.lm)
        options = LayoutOptions(patch_len, stride, segment_len, d_ff, embed_dropout, channel_embedding,
                                forecast_layout, time_features, unused_reference_params)
        self.layout = make_layout(io, d_model, options)
        # Each channel is its own univariate sample for the forecaster: the data side then serves
        # [batch, length, 1] windows.
        self.channel_independent = self.layout.channel_independent
        self.time_features = time_features
        self.n_patches = self.layout.n_tokens
        positions = self.family.n_positions(self.lm)
        if self.n_patches > positions:
            raise UserError(f"{self.n_patches} tokens exceed {self.family.title}'s {positions} positions; "
                            "shorten task.seq_len or raise model.stride")
        with seeded(init_seed):
            self.in_layer = self.layout.make_in_layer(d_model)
        with seeded(init_seed + 1):
            self.out_layer = self.layout.make_out_layer(d_model)
        # Kept: the method may change during training (a switch to LoRA) and is replayed on reload.
        self.adapter = adapter or LoRASpec()
        # What the method changed or estimated before training (spectra, ID profiles): for metrics.json.
        self.adapter_report = self.adapter.prepare(self)
        if self.adapter.needs_train_data():
            self.requires_grad_(False)  # nothing trains until `calibrate` has applied the method
        else:
            self.adapter.apply(self)
        # Dropout masks from packed random bits on the CPU (same distribution, ~4x cheaper to draw).
        self.fast_dropout = fast_dropout
        self._use_fast_dropout()
        self.feature_cache = FeatureCache(feature_cache_mb) if cache_backbone_features else None
        if self.feature_cache is not None:
            self._check_cacheable()
            self.train(self.training)

    def calibrate(self, train: Dataset) -> None:
        """Fit a data-dependent adaptation method (ranks from the data) on the train split, then apply it."""
        if self.adapter.needs_train_data():
            self.adapter_report.update(self.adapter.calibrate(self, train))
            self.adapter.apply(self)
            self._use_fast_dropout()
            if self.feature_cache is not None:  # the adapter exists only now: check it before any run files
                self._check_cacheable()

    def _use_fast_dropout(self) -> None:
        if self.fast_dropout:
            use_fast_dropout(self)

    def stored_frozen(self) -> set[str]:
        return self.adapter.stored_frozen(self)

    def replay_config(self) -> dict[str, Any]:
        # What happened, not what was asked: `init=auto` must not switch sources on reload, and
        # settings the method estimated or changed while training are rebuilt verbatim.
        return {"backbone": {"init": "pretrained" if self.backbone_info["pretrained"] else "random"},
                "adapter": self.adapter.replay()}

    def run_report(self) -> dict[str, Any]:
        return {"backbone": self.backbone_info, **({"adapter": self.adapter_report} if self.adapter_report else {})}

    @property
    def lm(self) -> nn.Module:
        """The frozen backbone module (GPT-2, a BERT encoder, or a stand-in)."""
        return self.get_submodule(self.backbone_prefix)

    def authors_validation_mode(self) -> None:
        """GPT4TS / One-for-All's long-term `vali()` puts only `in_layer` and `out_layer` in eval
        mode: GPT-2's dropout stays on while the validation loss that picks checkpoints is computed.
        Their other tasks validate in eval mode."""
        if isinstance(self.layout, PatchForecast):
            self.train()
            self.in_layer.eval()
            self.out_layer.eval()
        else:
            self.eval()

    def lora_parts(self) -> dict[str, list[str]]:
        """Part name -> module names that LoRA may wrap (empty for a part without weights)."""
        embedding = [name for name, module in self.in_layer.named_modules(prefix="in_layer")
                     if isinstance(module, _LORA_TYPES)]
        roles = {role: [f"{self.backbone_prefix}.{name}" for name in self.family.modules(self.lm, role)]
                 for role in LORA_ROLES}
        return {"wpe": roles.pop("wpe"), "head": ["out_layer"], "patch_embedding": embedding, **roles}

    def trainable_parts(self) -> dict[str, list[str]]:
        """Part name -> regexes over parameter names, for parts trained in full."""
        prefix = re.escape(self.backbone_prefix) + r"\."
        roles = {role: [prefix + pattern for pattern in self.family.patterns(role)] for role in ROLES}
        return {
            "wpe": roles.pop("wpe"),
            "head": [r"out_layer\.(weight|bias)", r"layout\.head_norm\.(weight|bias)"],
            "patch_embedding": [r"in_layer\.(\w+\.)?(weight|bias)"],
            **roles,
        }

    def front_trainable(self) -> list[str]:
        """Trainable parameters before the head (token embedding, backbone): gradients must cross the backbone."""
        front = [*self.in_layer.named_parameters(prefix="in_layer"),
                 *self.lm.named_parameters(prefix=self.backbone_prefix)]
        return [name for name, p in front if p.requires_grad]

    def _check_cacheable(self) -> None:
        trained = self.front_trainable()
        if trained:
            raise UserError(f"model.cache_backbone_features=true needs a frozen {self.family.title} and token "
                            f"embedding, but {trained[0]} trains (it sits before the head); use adapter=linear_probe "
                            "or LoRA on the head only (adapter.lora_targets=[head]), or drop the cache")

    def train(self, mode: bool = True) -> One4All:
        """Set train/eval mode; with the feature cache the frozen front stays in eval mode (no dropout)."""
        super().train(mode)
        if self.feature_cache is not None:
            # Cached features must not depend on dropout draws, so the backbone and the token embedding
            # are deterministic in training too: the head then trains on dropout-free features.
            self.in_layer.eval()
            self.lm.eval()
        return self

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, marks: torch.Tensor | None = None
                ) -> torch.Tensor:
        """`x[batch, seq_len, channels]` (with the observation mask when `io.masked`, and the
        time-feature marks `[batch, seq_len, n_marks]` when `time_features` is set) -> the kind's output."""
        tokens, state = self.layout.encode(x, mask, marks)
        return self.layout.decode(self.out_layer, self._backbone(tokens), state)

    def block_states(self, x: torch.Tensor, mask: torch.Tensor | None = None, marks: torch.Tensor | None = None
                     ) -> list[torch.Tensor]:
        """The backbone's hidden states for `x`: the input of block 1, then each block's output
        (GPT-2: before ln_f)."""
        tokens, _ = self.layout.encode(x, mask, marks)
        states: list[torch.Tensor] = []

        def keep(module, args, output) -> None:
            states.append(output[0] if isinstance(output, tuple) else output)

        hooks = [module.register_forward_hook(keep) for module in self.family.state_modules(self.lm)]
        try:
            self.family.hidden(self.lm, self.in_layer(tokens))
        finally:
            for hook in hooks:
                hook.remove()
        return states

    def _backbone(self, tokens: torch.Tensor) -> torch.Tensor:
        """The backbone's last hidden states for `tokens[sequences, ...]`, from the cache when it is on.

        With nothing trainable before the head, no gradient can enter the backbone: it runs under
        no_grad (autograd would record nothing anyway; this also allows chunking in training).
        """
        if self.feature_cache is not None:
            self._check_cacheable()
            return self.feature_cache(tokens, self._front)
        if not tokens.requires_grad and not self.front_trainable():
            with torch.no_grad():
                return self._front(tokens)
        return self._front(tokens)

    def _front(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token embedding + backbone on `tokens[sequences, ...]`.

        Without gradients (inference), at most `channel_chunk` sequences go through the backbone at once,
        so a joint window of many channels (Traffic: 862 series per window) needs bounded
        activation memory. With gradients chunking would not help (backward keeps every chunk's
        activations), so training batches pass whole. Sequences never interact in the backbone, so the
        chunked result equals the whole one.
        """
        chunk = self.channel_chunk
        if chunk is not None and len(tokens) > chunk and not torch.is_grad_enabled():
            return torch.cat([self.family.hidden(self.lm, self.in_layer(part)) for part in tokens.split(chunk)])
        return self.family.hidden(self.lm, self.in_layer(tokens))
