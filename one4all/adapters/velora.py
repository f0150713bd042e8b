"""LARS-style activation memory for LoRA inside GPT-2 blocks: VeLoRA, as peft implements it.

A LoRA down-projection A keeps its input x [.., C] for backward (to form grad A = g^T x). VeLoRA
(METHODS.md §4.4, peft's `VeloraConfig`) keeps instead, per token, G coefficients z = s . v: the
token is cut into G sub-tokens s of C/G features and each is projected onto one unit vector v (the
normalised mean sub-token of the first training batch, then frozen: `init_type=batch_average_once`).
Backward uses x_hat = z (x) v for x.

- The forward output A x is exact, and so is grad x = g A: every gradient upstream of A, and B's
  gradient, are unchanged. Only grad A = scale * g^T x_hat is approximate (exact when every
  sub-token is a multiple of v, e.g. sub-tokens of one feature). tests/test_velora.py checks these
  against the formula.
- Saved per token: G numbers instead of C (24x less for C=768, G=32; 96x for the MLP's 3072).

peft keeps "v is set" in a plain dict that a state dict does not carry; after loading a checkpoint
or artifact we mark every stored non-zero v as set, so a resumed run keeps its v (bit-identical
resume) instead of re-estimating it from the first resumed batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from peft.tuners.lora import LoraLayer
from peft.tuners.lora.config import VeloraConfig
from torch import nn

from one4all.adapters.lora import LoRASpec, inject_lora
from one4all.errors import UserError

ADAPTER = "default"


@dataclass
class VeLoRASpec(LoRASpec):
    """LoRA whose down-projections on `velora_parts` (null = every LoRA target) save compressed inputs.

    `velora_groups` sub-tokens per token; `velora_scale` scales the approximate gradient of A.
    Only linear layers (GPT-2's block projections, a linear head) support it, not `wpe`.
    """

    velora_groups: int = 32
    velora_parts: list[str] | None = None
    velora_scale: float = 1.0

    def inject(self, network: nn.Module, targets: dict[str, list[str]]) -> None:
        compressed = list(targets) if self.velora_parts is None else list(self.velora_parts)
        if not set(compressed) <= set(targets):
            raise UserError(f"adapter.velora_parts={compressed} must be LoRA targets ({list(targets)}); add them to "
                            "adapter.lora_targets")
        if self.velora_groups < 1 or self.velora_scale <= 0:
            raise UserError(f"adapter.velora_groups={self.velora_groups} and adapter.velora_scale={self.velora_scale} "
                            "must be positive")
        plain = [name for part, names in targets.items() if part not in compressed for name in names]
        if plain:
            inject_lora(network, self.lora_config(plain))
        modules = [name for part in compressed for name in targets[part]]
        config = self.lora_config(modules)
        config.velora_config = VeloraConfig(num_groups=self.velora_groups, scale=self.velora_scale,
                                            init_type="batch_average_once")
        try:
            inject_lora(network, config)
        except ValueError as err:  # peft: "Invalid or unsupported variant combination" on an embedding
            raise UserError(f"VeLoRA compresses linear layers only ({err}); list block projections in "
                            "adapter.velora_parts") from err
        for name in modules:
            layer = network.get_submodule(name)
            if isinstance(layer, LoraLayer):
                layer.register_load_state_dict_post_hook(_mark_loaded_projection)


def _mark_loaded_projection(module: nn.Module, incompatible_keys) -> None:
    """A v loaded from a state dict counts as set (peft's flag lives outside the state dict)."""
    if ADAPTER in module.lora_velora_embed:
        module.lora_velora_initialized[ADAPTER] = bool(module.lora_velora_embed[ADAPTER].any())
