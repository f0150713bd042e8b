"""The networks a model artifact may name, by short registered name, and the specs nested in them.

A manifest names classes only through these dicts: `network_spec` rebuilds a network from a
registered name and typed settings, never from an import path found in a file. Registering a
network is one line in `NETWORKS` (a `contract.Network` whose constructor takes `io` first); a
backbone spec is one line in `BACKBONES`; adaptation methods are in `one4all.adapters.registry`.
`NESTED` says which constructor parameters hold a nested spec: those annotated with its base class.
"""

from __future__ import annotations

from one4all.adapters.method import AdapterMethod
from one4all.adapters.registry import ADAPTERS
from one4all.contract import Network
from one4all.models.backbones.base import LMSpec
from one4all.models.backbones.bert import BertSpec
from one4all.models.backbones.gpt2 import GPT2Spec
from one4all.models.baselines.dlinear import DLinear
from one4all.models.baselines.patchtst import PatchTST
from one4all.models.baselines.timesnet import TimesNet
from one4all.models.one4all import One4All

NETWORKS: dict[str, type[Network]] = {
    "one4all": One4All,
    "dlinear": DLinear,
    "patchtst": PatchTST,
    "timesnet": TimesNet,
}

BACKBONES: dict[str, type[LMSpec]] = {
    "gpt2": GPT2Spec,
    "bert": BertSpec,
}

NESTED: dict[type, dict[str, type]] = {
    LMSpec: BACKBONES,
    AdapterMethod: ADAPTERS,
}
