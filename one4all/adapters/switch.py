"""Turn fully trained modules into LoRA wrappers around their (now frozen) trained weights.

PreLoRA (METHODS.md §2.5) trains some modules in full, then wraps them with LoRA and freezes
their base weights. Those base weights were learned, so unlike GPT-2 or a seeded random layer
they cannot be regenerated: the method reports them (`stored_frozen`) and both the artifact and
the checkpoints store them beside the trainable tensors.
"""

from __future__ import annotations

import re

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

from one4all.errors import UserError


def switch_to_lora(network: nn.Module, ranks: dict[str, int], alpha: float, use_rslora: bool,
                   init: bool | str = True) -> list[str]:
    """Wrap the modules named in `ranks` with LoRA of those ranks; freeze their base weights.

    Everything else keeps its `requires_grad`. With peft's init (B = 0) the network's function
    is unchanged by the switch. Returns the names of the newly frozen base parameters.
    """
    if not ranks:
        raise UserError("no modules to switch to LoRA; give PreLoRA at least one part with weights")
    # Exact names: anchored, escaped patterns, so peft's suffix matching cannot hit other modules
    # (METHODS.md §2.7: rank_pattern keys that silently do not apply).
    patterns = {re.escape(name): int(rank) for name, rank in ranks.items()}
    config = LoraConfig(r=max(ranks.values()), lora_alpha=alpha, use_rslora=use_rslora, init_lora_weights=init,
                        lora_dropout=0.0, target_modules=list(ranks), rank_pattern=patterns,
                        alpha_pattern={key: alpha for key in patterns}, bias="none")
    trainable = {name for name, p in network.named_parameters() if p.requires_grad}
    inject_adapter_in_model(config, network)
    # peft leaves only LoRA weights trainable in the whole network; restore everyone else's flag.
    for name, param in network.named_parameters():
        param.requires_grad_(name in trainable)
    frozen = []
    for module_name, rank in ranks.items():
        module = network.get_submodule(module_name)
        got = _lora_rank(module)
        if got != rank:
            raise RuntimeError(f"LoRA on {module_name} got rank {got}, expected {rank}")
        for name, param in module.named_parameters(prefix=module_name):
            is_lora = "lora_" in name
            param.requires_grad_(is_lora)
            if not is_lora:
                param.grad = None  # no optimizer will clear it any more: free it now
                frozen.append(name)
    return frozen


def _lora_rank(module: nn.Module) -> int | None:
    return int(module.r["default"]) if isinstance(module, LoraLayer) and "default" in module.r else None
