"""The backbone interface: the frozen model between One-for-All's token embedding and its head.

A spec (`LMSpec` subclass, Hydra group `model/backbone`) says where the weights come from and how
many blocks to keep; `load()` gives a `Backbone`: the frozen module, its `Family` (how the network
drives it) and what actually happened (pretrained or random, from which source).

Adapter presets name parts by role; each family maps a role to its own modules (`Family.roles`,
`{i}` standing for every block):

| role | what | GPT-2 | BERT (`encoder.layer.{i}.`) | stand-ins |
|---|---|---|---|---|
| `wpe` | positions added to the tokens | `wpe` | `embeddings.position_embeddings` | `wpe` |
| `layernorms` | LayerNorms | `h.{i}.ln_1/ln_2`, `ln_f` | `embeddings.LayerNorm`, `*.LayerNorm` | `layer.{i}.norm` |
| `c_attn` | attention input | `h.{i}.attn.c_attn` (Q K V) | `attention.self.query/key/value` | `layer.{i}.query/...` |
| `attn_proj` | attention output projection | `h.{i}.attn.c_proj` | `attention.output.dense` | `layer.{i}.out` |
| `mlp_fc` | MLP up-projection | `h.{i}.mlp.c_fc` | `intermediate.dense` | - |
| `mlp_proj` | MLP down-projection | `h.{i}.mlp.c_proj` | `output.dense` | - |

`replace` swaps the language model for a random stand-in of the same width (models.backbones.stand_ins):
`identity` (no LM: token embeddings + positions go to the head) or `attention` (one attention layer).
`models.backbones.load_backbone` builds either.

Adding a family: one module with a `Family` and an `LMSpec` subclass, one file in configs/model/backbone/.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.utils import logging as hf_logging

from one4all.errors import UserError
from one4all.schema import check_value

log = logging.getLogger(__name__)

INITS = ("pretrained", "random", "auto")
# transformers' attention kernels we allow; others (e.g. a hub repo of kernels) would fetch and run code.
ATTENTION = ("auto", "eager", "sdpa")
MAX_LAYERS = 48  # gpt2-xl, the deepest model of the families here
ROLES = ("wpe", "layernorms", "c_attn", "attn_proj", "mlp_fc", "mlp_proj")
# LayerNorms train in full or not at all: LoRA wraps linear maps and embeddings.
LORA_ROLES = tuple(role for role in ROLES if role != "layernorms")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block under a fixed torch seed without disturbing the caller's RNG stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars (one4all reports what it loaded itself)."""
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face hub answers (and HF_HUB_OFFLINE is not set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((endpoint, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


class Family(ABC):
    """How the network drives one kind of backbone module (stateless; one instance per kind).

    `prefix` is the network's attribute for the module, hence the prefix of its parameter names
    (`gpt2.h.0...`: artifacts and checkpoints group the backbone by it); `title` names it in
    messages. `roles` maps each role of
    the table above to module-name templates relative to the module.
    """

    prefix: ClassVar[str]
    title: ClassVar[str]
    roles: ClassVar[dict[str, tuple[str, ...]]]

    @abstractmethod
    def blocks(self, model: nn.Module) -> nn.ModuleList:
        """The model's stack of blocks."""

    @abstractmethod
    def entry(self, model: nn.Module) -> nn.Module:
        """The module whose output enters the first block (token embeddings + positions)."""

    @abstractmethod
    def width(self, model: nn.Module) -> int:
        """Hidden size: the width of the tokens the network feeds and receives."""

    @abstractmethod
    def n_positions(self, model: nn.Module) -> int:
        """Longest token sequence the position table covers."""

    def hidden(self, model: nn.Module, embeds: torch.Tensor) -> torch.Tensor:
        """Last hidden states `[n, tokens, width]` for token embeddings `embeds[n, tokens, width]`."""
        return model(inputs_embeds=embeds).last_hidden_state

    def state_modules(self, model: nn.Module) -> list[nn.Module]:
        """Modules whose outputs are the block states: the first block's input, then each block's output."""
        return [self.entry(model), *self.blocks(model)]

    def modules(self, model: nn.Module, role: str) -> list[str]:
        """Names (relative to `model`) of the modules that play `role`, block by block."""
        names: list[str] = []
        for template in self.roles.get(role, ()):
            if "{i}" in template:
                names += [template.format(i=i) for i in range(len(self.blocks(model)))]
            else:
                names.append(template)
        return names

    def patterns(self, role: str) -> list[str]:
        """Regexes over parameter names (relative to the model) of the modules that play `role`."""
        return [re.escape(template).replace(re.escape("{i}"), r"\d+") + r"\.(weight|bias)"
                for template in self.roles.get(role, ())]


@dataclass
class Backbone:
    """A loaded, truncated, frozen backbone and what actually happened while loading it."""

    model: nn.Module
    family: Family
    pretrained: bool
    source: str
    package: str | None = None
    replaced_by: str | None = None

    def describe(self) -> dict[str, Any]:
        """The `backbone` block of metrics.json."""
        return {"family": self.family.prefix, "pretrained": self.pretrained, "source": self.source,
                **({"package": self.package} if self.package else {}),
                **({"replaced_by": self.replaced_by} if self.replaced_by else {}),
                "n_layers": len(self.family.blocks(self.model)), "d_model": self.family.width(self.model)}


@dataclass(frozen=True)
class Dims:
    """A family config's sizes, for stand-ins of the same width (models.backbones.stand_ins)."""

    width: int
    heads: int
    positions: int
    init_std: float
    eps: float
    dropout: float
    attn_dropout: float


@dataclass
class LMSpec(ABC):
    """Where a frozen language model comes from and how much of it to keep (base of the family specs).

    init: `pretrained` (fail loudly if the weights are unavailable), `random` (explicit random
    init from `config`, for tests and "is the LM useful?" ablations) or `auto` (pretrained if it
    loads, else random with a loud warning). `path`: a hub id or a local directory. `n_layers`:
    blocks kept. `seed`: random init only. `dropout`: null keeps the model's own. `config`:
    overrides of the family's config class for random init (its default is the family's base size).
    `replace`: null keeps the LM; `identity` or `attention` builds a random stand-in instead.
    `attn_implementation`: transformers' `eager` or `sdpa`, or `auto` (the family's choice: one4all's
    kernel for GPT-2, models.fast_gpt2; transformers' `eager` for the others). `compile`:
    `torch.compile` the model in place (`nn.Module.compile`: parameter names unchanged), for CUDA,
    where fusing the elementwise work between the matmuls pays; the first steps pay the compilation.
    """

    init: str = "auto"
    path: str = ""
    n_layers: int = 6
    seed: int = 0
    dropout: float | None = None
    attn_implementation: str = "auto"
    config: dict | None = None
    replace: str | None = None
    compile: bool = False

    # What each family fills in. `settings`: the config fields a random-init `config` may set (sizes,
    # dropouts, numerics) with their types: a closed list, since a saved model's manifest carries
    # `config` and keys such as `auto_map` would make transformers import code.
    family: ClassVar[Family]
    model_class: ClassVar[type[PreTrainedModel]]
    config_class: ClassVar[type[PretrainedConfig]]
    settings: ClassVar[dict[str, Any]]
    activation_key: ClassVar[str]

    def __post_init__(self) -> None:
        title = self.family.title
        if not isinstance(self.n_layers, int) or not 1 <= self.n_layers <= MAX_LAYERS:
            raise UserError(f"model.backbone.n_layers={self.n_layers!r}; use 1..{MAX_LAYERS} {title} blocks")
        if self.attn_implementation not in ATTENTION:
            raise UserError(f"model.backbone.attn_implementation={self.attn_implementation!r}; use one of "
                            f"{', '.join(ATTENTION)}")
        if self.dropout is not None and not (isinstance(self.dropout, int | float) and 0 <= self.dropout < 1):
            raise UserError(f"model.backbone.dropout={self.dropout!r}; use null or a probability in [0, 1)")
        for key, value in (self.config or {}).items():
            if key not in self.settings:
                raise UserError(f"model.backbone.config.{key} is not a {title} setting one4all accepts; use "
                                f"{', '.join(self.settings)}")
            check_value(f"model.backbone.config.{key}", value, self.settings[key])
            if self.settings[key] is int and value < 1:
                raise UserError(f"model.backbone.config.{key}={value}; use a positive integer")
            if ("pdrop" in key or "dropout" in key) and not 0 <= value < 1:
                raise UserError(f"model.backbone.config.{key}={value}; use a probability in [0, 1)")
        activation = (self.config or {}).get(self.activation_key)
        if activation is not None and activation not in ACT2FN:
            raise UserError(f"model.backbone.config.{self.activation_key}={activation!r}; use one of transformers' "
                            "activations, e.g. gelu_new")

    def check_init(self) -> None:
        """Refuse an unknown `init`."""
        if self.init not in INITS:
            raise UserError(f"model.backbone.init={self.init!r}; use one of {', '.join(INITS)}")

    def load_lm(self) -> Backbone:
        """The language model as this spec says, truncated to `n_layers` blocks and frozen (`replace`
        is not looked at: models.backbones.load_backbone builds the stand-ins)."""
        self.check_init()
        package = None
        if self.init == "random":
            model, pretrained, source = self.random_model(), False, "random"
        else:
            try:
                model, source, package = self.pretrained_model()
                pretrained = True
            except OSError as err:
                if self.init == "pretrained":
                    raise UserError(self.missing_weights(err)) from err
                log.warning("!!! pretrained %s %r could not be loaded: using a RANDOMLY INITIALISED backbone. "
                            "Results are not those of a pretrained LM. %s", self.family.title, self.where(),
                            self.fallback_hint())
                model, pretrained, source = self.random_model(), False, "random (auto fallback)"
        model = self.finish(self.truncate(model))
        model.requires_grad_(False)
        # from_pretrained returns a model in eval mode, a constructed one is in train mode; the network's
        # own train()/eval() decides from here, so pretrained and random backbones apply dropout alike.
        model.train()
        if self.compile:
            model.compile()
        return Backbone(model=model, family=self.family, pretrained=pretrained, source=source, package=package)

    def where(self) -> str:
        """Where the pretrained weights are looked for, for messages."""
        return self.path

    def missing_weights(self, err: OSError) -> str:
        """The one-line error when `init=pretrained` finds no weights."""
        return (f"cannot load pretrained {self.family.title} from {self.path!r} (offline and not in the HF cache); "
                f"set model.backbone.path=/dir/with/{self.family.prefix} (config.json + weights) "
                "or model.backbone.init=random")

    def fallback_hint(self) -> str:
        """What `init=auto` suggests when it falls back to a random model."""
        return "Set model.backbone.path to local weights, or model.backbone.init=random to silence this."

    def pretrained_model(self) -> tuple[PreTrainedModel, str, str | None]:
        """(model, source, weights package) from `path`: a local directory, the HF cache, or the hub when
        it is reachable. Raises OSError when the weights are nowhere."""
        path = Path(self.path).expanduser()
        if path.is_dir():
            return self.from_local(path), self.path, None
        with quiet_transformers():
            try:
                # The HF cache first: no network round trips when the weights are already here.
                return self.from_local(self.path), self.path, None
            except OSError:
                if not hub_reachable():
                    raise
                return self.checked(self.model_class.from_pretrained(self.path, output_loading_info=True,
                                                                     **self.load_kwargs())), self.path, None

    def from_local(self, location: str | Path) -> PreTrainedModel:
        """transformers' `from_pretrained` without network access, checked for missing weights.

        On the meta device (a saved model's size check, models.spec), where `from_pretrained` refuses to
        run, the architecture comes from the pretrained config alone."""
        if torch.get_default_device().type == "meta":
            with quiet_transformers():
                config = self.config_class.from_pretrained(location, local_files_only=True)
            config._attn_implementation = self.loaded_attention()
            return self.model_class(config, **self.init_kwargs())
        with quiet_transformers():
            loaded = self.model_class.from_pretrained(location, local_files_only=True, output_loading_info=True,
                                                      **self.load_kwargs())
        return self.checked(loaded)

    def checked(self, loaded: tuple[PreTrainedModel, dict]) -> PreTrainedModel:
        """The model of a `from_pretrained(..., output_loading_info=True)`, refused when weights were missing
        (a checkpoint of another architecture would otherwise leave them silently random)."""
        model, info = loaded
        if info["missing_keys"] or info["mismatched_keys"]:
            missing = sorted(info["missing_keys"]) or sorted(str(k) for k in info["mismatched_keys"])
            raise UserError(f"the weights at {self.where()!r} do not fit {self.family.title} ({len(missing)} tensors "
                            f"missing or mis-shaped, e.g. {missing[0]}); point model.backbone.path at a "
                            f"{self.family.title} checkpoint or pick its family with model/backbone=...")
        return model

    def init_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the family's model constructor besides the config."""
        return {}

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the family's `from_pretrained`."""
        return {"attn_implementation": self.loaded_attention(), **self.init_kwargs()}

    def loaded_attention(self) -> str:
        """The attention kernel transformers builds the model with (`auto` -> `eager`; a family's
        `finish` may then switch it, as GPT-2's does to one4all's kernel)."""
        return "eager" if self.attn_implementation == "auto" else self.attn_implementation

    def random_config(self) -> PretrainedConfig:
        """The family config for random init: `config` over the family's defaults, `n_layers` blocks."""
        overrides = dict(self.config or {})  # keys checked against `settings` in __post_init__
        return self.config_class(**{self.layers_key(): self.n_layers, **overrides})

    def random_model(self) -> PreTrainedModel:
        """A randomly initialised model of `random_config()`, seeded by `seed`."""
        config = self.random_config()
        config._attn_implementation = self.loaded_attention()
        with seeded(self.seed):
            return self.model_class(config, **self.init_kwargs())

    def truncate(self, model: PreTrainedModel) -> PreTrainedModel:
        """Keep the first `n_layers` blocks, drop the token table (never read: the network feeds
        `inputs_embeds`) and apply the `dropout` override."""
        blocks = self.family.blocks(model)
        if self.n_layers > len(blocks):
            raise UserError(f"model.backbone.n_layers={self.n_layers} but the {self.family.title} has "
                            f"{len(blocks)} blocks")
        self.keep_blocks(model, self.n_layers)
        setattr(model.config, self.layers_key(), self.n_layers)
        self.drop_token_table(model)
        if self.dropout is not None:
            for module in model.modules():
                if isinstance(module, nn.Dropout):
                    module.p = self.dropout
        return model

    def finish(self, model: PreTrainedModel) -> PreTrainedModel:
        """Family-specific last touches (GPT-2: the streamlined forward)."""
        return model

    @abstractmethod
    def layers_key(self) -> str:
        """The config key holding the number of blocks."""

    @abstractmethod
    def keep_blocks(self, model: PreTrainedModel, n_layers: int) -> None:
        """Cut the block stack to its first `n_layers` blocks."""

    @abstractmethod
    def drop_token_table(self, model: PreTrainedModel) -> None:
        """Replace the token table by one zero row (GPT-2 small's is 38.6M parameters)."""

    @abstractmethod
    def dims(self, config: PretrainedConfig) -> Dims:
        """The sizes of `config`, for a stand-in of the same width."""


def zero_table(width: int) -> nn.Embedding:
    """A one-row all-zero embedding that stands in for an unused token table."""
    return nn.Embedding(1, width, _weight=torch.zeros(1, width))
