"""The plug-in interface of a low-rank adaptation method.

A method decides what trains in a network and how. The network drives it:

1. `prepare(network)`: before anything is injected; may change the frozen network (WeLore swaps
   projections for factor pairs). Returns a report for metrics.json.
2. `needs_train_data()`: while true, the method's shape depends on the training split, and the
   training loop calls `calibrate(network, train)` (GeLoRA estimates ranks) before `apply`.
3. `apply(network)`: freeze the network and make the method's parameters trainable (inject LoRA,
   unfreeze parts).
4. During training a method may change further (PreLoRA switches parts to LoRA); `replay()`
   returns the settings a reload needs to rebuild the final network, and `stored_frozen(network)`
   the frozen parameters that were learned (a fresh network cannot regenerate them, so artifacts
   and checkpoints store them).

Adding a method is one module (a subclass, usually of `adapters.lora.LoRASpec`) plus one config
file in `configs/adapter/` whose `_target_` names it.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset


class AdaptableNetwork(Protocol):
    """What a method may ask of the network it adapts (One-for-All implements it).

    Parts are named by role (`wpe`, `head`, `patch_embedding`, `layernorms`, the block projections
    `c_attn`, `attn_proj`, `mlp_fc`, `mlp_proj`), so a method means the same on every backbone.
    """

    def lora_parts(self) -> dict[str, list[str]]:
        """Part name -> names of the modules LoRA may wrap."""

    def trainable_parts(self) -> dict[str, list[str]]:
        """Part name -> regexes over parameter names, for parts trained in full."""

    def block_states(self, x: torch.Tensor, mask: torch.Tensor | None = None, marks: torch.Tensor | None = None
                     ) -> list[torch.Tensor]:
        """Hidden states entering the first backbone block and leaving each block."""


class AdapterMethod:
    """Base of every adaptation method: the lifecycle above, as no-ops where a method has nothing to do."""

    def prepare(self, network: nn.Module) -> dict[str, Any]:
        """Change the frozen network before injection; a report for metrics.json."""
        return {}

    def needs_train_data(self) -> bool:
        """True while the method's shape still depends on training data (then `calibrate` first)."""
        return False

    def calibrate(self, network: nn.Module, train: Dataset) -> dict[str, Any]:
        """Fix data-dependent settings from the train split; a report for metrics.json."""
        return {}

    def apply(self, network: nn.Module) -> None:
        """Freeze `network` and make this method's parameters trainable."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply")

    def replay(self) -> dict[str, Any]:
        """Settings resolved while building or training that a saved model must reuse verbatim."""
        return {}

    def stored_frozen(self, network: nn.Module) -> set[str]:
        """Frozen parameters of `network` that were learned (stored with the trainable ones)."""
        return set()
