"""Adaptation methods (what trains in a network): the plug-in interface, LoRA/rsLoRA and presets.

The other methods live in their own modules: `adapters.velora` (LARS-style activation memory),
`adapters.prelora` (+ `prelora_callback`), `lowrank.gelora`, `lowrank.welore`.
"""

from one4all.adapters.lora import LoRASpec
from one4all.adapters.method import AdapterMethod
from one4all.adapters.presets import PRESETS, Preset

__all__ = ["PRESETS", "AdapterMethod", "LoRASpec", "Preset"]
