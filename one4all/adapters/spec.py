"""Adapter specification and its application to a network with peft."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from one4all.adapters.presets import PRESETS
from one4all.adapters.switch import switch_to_lora
from one4all.adapters.velora import compress_lora_inputs
from one4all.errors import UserError

SCALINGS = ("rslora", "lora")


@dataclass
class AdapterSpec:
    """How a network is adapted.

    preset: a name from `adapters.presets.PRESETS`; `lora_targets` / `train_full` override its
    lists. rank/alpha/scaling/init/dropout are peft's LoRA settings: `scaling=rslora` uses
    alpha/sqrt(rank) (rsLoRA), `lora` alpha/rank. Defaults are the One-for-All code's
    (r=16, alpha=16 -> scale 4.0, Gaussian init, dropout 0.01). `switched` (module name -> rank)
    lists modules that trained in full and were then switched to LoRA (PreLoRA,
    `adapters/prelora.py`): set by the switch, so that a saved network is rebuilt in its final form.
    `velora_groups` (null = off) stores, for LoRA on the `velora_parts` (null = every LoRA target),
    rank-1 sub-token projections of the adapter input instead of the input itself, with this many
    sub-tokens per token (VeLoRA, `adapters/velora.py`); `velora_scale` scales the approximate
    gradient of A.
    """

    preset: str = "reference"
    rank: int = 16
    alpha: float = 16.0
    scaling: str = "rslora"
    init: str = "gaussian"
    dropout: float = 0.01
    lora_targets: list[str] | None = None
    train_full: list[str] | None = None
    switched: dict[str, int] | None = None
    velora_groups: int | None = None
    velora_parts: list[str] | None = None
    velora_scale: float = 1.0

    def resolved(self) -> tuple[list[str], list[str]]:
        """(LoRA target parts, fully trainable parts) after applying the preset."""
        if self.preset not in PRESETS:
            raise UserError(f"unknown adapter.preset={self.preset!r}; choose from {', '.join(PRESETS)}")
        preset = PRESETS[self.preset]
        lora = list(preset.lora if self.lora_targets is None else self.lora_targets)
        full = list(preset.full if self.train_full is None else self.train_full)
        return lora, full

    def lora_config(self, modules: list[str]) -> LoraConfig:
        if self.scaling not in SCALINGS:
            raise UserError(f"adapter.scaling={self.scaling!r}; use rslora or lora")
        if self.rank < 1:
            raise UserError(f"adapter.rank={self.rank}; LoRA needs a positive rank")
        init = True if self.init == "kaiming" else self.init
        return LoraConfig(r=self.rank, lora_alpha=self.alpha, use_rslora=self.scaling == "rslora",
                          init_lora_weights=init, lora_dropout=self.dropout, target_modules=modules,
                          bias="none")

    # Hooks for adapters that change the network beyond injecting LoRA (one4all.lowrank). The
    # network calls prepare() before injection, and calibrate() with the train split while
    # needs_train_data(); replay() is merged into the saved model config so a reload rebuilds it.
    def prepare(self, network: nn.Module) -> dict[str, Any]:
        """Change the frozen network before LoRA is injected; a report for metrics.json."""
        return {}

    def needs_train_data(self) -> bool:
        """True while the adapter's shape still depends on training data (then `calibrate` first)."""
        return False

    def calibrate(self, network: nn.Module, train: Any) -> dict[str, Any]:
        """Fix data-dependent settings from the train split `train`; a report for metrics.json."""
        return {}

    def replay(self) -> dict[str, Any]:
        """Settings resolved while building that a saved model must reuse verbatim."""
        return {}


def apply_adapter(network: nn.Module, spec: AdapterSpec, part_modules: dict[str, list[str]],
                  part_params: dict[str, list[str]]) -> None:
    """Freeze `network`, inject LoRA into the target parts, and unfreeze the `full` parts.

    part_modules maps a part name to module names (LoRA targets); part_params maps a part name to
    regexes over parameter names (full training). Both come from the network, which owns its names.
    """
    lora, full = spec.resolved()
    for parts, known, what in ((lora, part_modules, "LoRA target"), (full, part_params, "trainable part")):
        for part in parts:
            if part not in known:
                raise UserError(f"{what} {part!r} does not exist in this network; "
                                f"available: {', '.join(sorted(known))}")
    for part in lora:
        if not part_modules[part]:
            raise UserError(f"LoRA target {part!r} has no weights in this network (e.g. a zero-padding "
                            "embedding); drop it from adapter.lora_targets")
    network.requires_grad_(False)
    if lora:
        modules = [name for part in lora for name in part_modules[part]]
        with warnings.catch_warnings():
            # peft switches fan_in_fan_out per module (True for GPT-2's Conv1D, False for Linear)
            # and warns each time; the result is right (tests/test_lora_targets.py).
            warnings.filterwarnings("ignore", message="fan_in_fan_out is set to")
            inject_adapter_in_model(spec.lora_config(modules), network)
        network.requires_grad_(False)
        for name, param in network.named_parameters():
            if "lora_" in name:
                param.requires_grad_(True)
        if spec.velora_groups is not None:
            compressed = lora if spec.velora_parts is None else list(spec.velora_parts)
            if not set(compressed) <= set(lora):
                raise UserError(f"adapter.velora_parts={compressed} must be LoRA targets ({lora}); add them to "
                                "adapter.lora_targets")
            compress_lora_inputs(network, [name for part in compressed for name in part_modules[part]],
                                 spec.velora_groups, spec.velora_scale)
    patterns = [re.compile(p) for part in full for p in part_params[part]]
    for name, param in network.named_parameters():
        # peft renames a wrapped module's own weights to <module>.base_layer.*
        plain = name.replace(".base_layer.", ".")
        if "lora_" not in name and any(p.fullmatch(plain) for p in patterns):
            param.requires_grad_(True)
    if spec.switched:
        init = True if spec.init == "kaiming" else spec.init
        switch_to_lora(network, dict(spec.switched), spec.alpha, spec.scaling == "rslora", init)
