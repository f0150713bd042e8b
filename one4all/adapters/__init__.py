"""Adapters: presets and peft LoRA/rsLoRA application."""

from one4all.adapters.presets import PRESETS, Preset
from one4all.adapters.spec import AdapterSpec, apply_adapter

__all__ = ["PRESETS", "AdapterSpec", "Preset", "apply_adapter"]
