"""LoRA and rsLoRA on named parts of the network (One-for-All's adapter), with peft.

A preset (`adapters.presets`) names which parts get LoRA and which train in full;
`lora_targets` / `train_full` override its lists. `scaling=rslora` uses alpha/sqrt(rank)
(rsLoRA), `lora` alpha/rank. Defaults are the One-for-All code's: r=16, alpha=16 (scale 4.0),
Gaussian init, dropout 0.01.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from one4all.adapters.method import AdapterMethod
from one4all.adapters.presets import PRESETS
from one4all.errors import UserError

SCALINGS = ("rslora", "lora")


def peft_init(init: str) -> bool | str:
    """peft's `init_lora_weights` for our spelling (`kaiming` is peft's default, `True`)."""
    return True if init == "kaiming" else init


@dataclass
class LoRASpec(AdapterMethod):
    """LoRA/rsLoRA on the preset's parts; the parent of the other methods' specs."""

    preset: str = "reference"
    rank: int = 16
    alpha: float = 16.0
    scaling: str = "rslora"
    init: str = "gaussian"
    dropout: float = 0.01
    lora_targets: list[str] | None = None
    train_full: list[str] | None = None

    def resolved(self) -> tuple[list[str], list[str]]:
        """(LoRA target parts, fully trainable parts) after applying the preset."""
        if self.preset not in PRESETS:
            raise UserError(f"unknown adapter.preset={self.preset!r}; choose from {', '.join(PRESETS)}")
        preset = PRESETS[self.preset]
        lora = list(preset.lora if self.lora_targets is None else self.lora_targets)
        full = list(preset.full if self.train_full is None else self.train_full)
        return lora, full

    def lora_config(self, modules: list[str]) -> LoraConfig:
        """peft's config for LoRA on `modules` with this spec's rank, scaling, init and dropout."""
        if self.scaling not in SCALINGS:
            raise UserError(f"adapter.scaling={self.scaling!r}; use rslora or lora")
        if self.rank < 1:
            raise UserError(f"adapter.rank={self.rank}; LoRA needs a positive rank")
        return LoraConfig(r=self.rank, lora_alpha=self.alpha, use_rslora=self.scaling == "rslora",
                          init_lora_weights=peft_init(self.init), lora_dropout=self.dropout,
                          target_modules=modules, bias="none")

    def apply(self, network: nn.Module) -> None:
        """Freeze `network`, inject LoRA into the target parts, and unfreeze the `full` parts."""
        lora, full = self.resolved()
        part_modules, part_params = network.lora_parts(), network.trainable_parts()
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
            self.inject(network, {part: part_modules[part] for part in lora})
            network.requires_grad_(False)
            for name, param in network.named_parameters():
                if "lora_" in name:
                    param.requires_grad_(True)
        patterns = [re.compile(p) for part in full for p in part_params[part]]
        for name, param in network.named_parameters():
            # peft renames a wrapped module's own weights to <module>.base_layer.*
            plain = name.replace(".base_layer.", ".")
            if "lora_" not in name and any(p.fullmatch(plain) for p in patterns):
                param.requires_grad_(True)

    def inject(self, network: nn.Module, targets: dict[str, list[str]]) -> None:
        """Wrap the modules of the LoRA target parts (part -> module names) with peft LoRA."""
        inject_lora(network, self.lora_config([name for names in targets.values() for name in names]))


def inject_lora(network: nn.Module, config: LoraConfig) -> None:
    """peft's `inject_adapter_in_model`, quiet about GPT-2's transposed Conv1D weights."""
    with warnings.catch_warnings():
        # peft switches fan_in_fan_out per module (True for GPT-2's Conv1D, False for Linear)
        # and warns each time; the result is right (tests/test_lora_targets.py).
        warnings.filterwarnings("ignore", message="fan_in_fan_out is set to")
        # A method may inject twice (VeLoRA on some parts only): peft warns that a config exists.
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        inject_adapter_in_model(config, network)
