"""The adaptation methods a model artifact may name, by short registered name.

A manifest's `adapter` spec names its method only through this dict (`network_spec` never imports
a path from a file). Registering a method is one line here.
"""

from __future__ import annotations

from one4all.adapters.lora import LoRASpec
from one4all.adapters.method import AdapterMethod
from one4all.adapters.prelora import PreLoRASpec
from one4all.adapters.velora import VeLoRASpec
from one4all.lowrank.gelora import GeLoRASpec
from one4all.lowrank.welore import WeLoreSpec

ADAPTERS: dict[str, type[AdapterMethod]] = {
    "lora": LoRASpec,
    "velora": VeLoRASpec,
    "prelora": PreLoRASpec,
    "gelora": GeLoRASpec,
    "welore": WeLoreSpec,
}
