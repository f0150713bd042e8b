"""The one place GPT-2 is loaded: pretrained (hub id, local dir, HF cache) or explicit random init."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import GPT2Config, GPT2Model
from transformers.activations import ACT2FN
from transformers.utils import logging as hf_logging

from one4all.errors import UserError
from one4all.models.fast_gpt2 import streamline
from one4all.schema import check_value

log = logging.getLogger(__name__)

INITS = ("pretrained", "random", "auto")
# The attention kernels we allow (auto: one4all's, see _loaded_attention); others transformers accepts
# (e.g. a hub repo of kernels) would fetch and run code.
ATTENTION = ("auto", "eager", "sdpa")
# The GPT2Config fields a random-init `config` may set (sizes, dropouts, numerics), with their types.
GPT2_SETTINGS: dict[str, Any] = {
    "n_embd": int, "n_head": int, "n_positions": int, "n_layer": int, "n_inner": int | None,
    "activation_function": str, "resid_pdrop": float, "embd_pdrop": float, "attn_pdrop": float,
    "layer_norm_epsilon": float, "initializer_range": float, "scale_attn_weights": bool,
    "scale_attn_by_inverse_layer_idx": bool, "reorder_and_upcast_attn": bool,
}
MAX_LAYERS = 48  # gpt2-xl, the deepest GPT-2


@dataclass
class BackboneSpec:
    """How to obtain the frozen GPT-2.

    init: `pretrained` (fail loudly if the weights are unavailable), `random` (explicit random
    init from `config`, for tests and "is the LLM useful?" ablations) or `auto` (pretrained if
    it loads, else random with a loud warning). `path` is a hub id or a local directory.
    `config` overrides GPT-2 small's architecture for random init (e.g. a tiny model in tests).
    `attn_implementation`: `auto` (one4all's: the authors' eager formulation with cheap dropout masks
    on the CPU, transformers' fused SDPA on CUDA; models.fast_gpt2), or transformers' own `eager` or
    `sdpa` (whose CPU kernel has no dropout and falls back to a slower path in training).
    `fused_gelu` computes GPT-2's tanh GELU with one fused kernel instead of transformers' eight
    elementwise ops (same function, different rounding; see models.fast_gpt2).
    `compile`: `torch.compile` the GPT-2 in place (`nn.Module.compile`: parameter names unchanged), for
    CUDA, where fusing the elementwise work between the matmuls pays; the first steps then pay the
    compilation (tens of seconds).
    """

    init: str = "auto"
    path: str = "gpt2"
    n_layers: int = 6
    seed: int = 0
    dropout: float | None = None
    attn_implementation: str = "auto"
    config: dict | None = None
    fused_gelu: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.n_layers, int) or not 1 <= self.n_layers <= MAX_LAYERS:
            raise UserError(f"model.backbone.n_layers={self.n_layers!r}; use 1..{MAX_LAYERS} GPT-2 blocks "
                            "(gpt2 has 12, gpt2-xl 48)")
        if self.attn_implementation not in ATTENTION:
            raise UserError(f"model.backbone.attn_implementation={self.attn_implementation!r}; use one of "
                            f"{', '.join(ATTENTION)}")
        if self.dropout is not None and not (isinstance(self.dropout, int | float) and 0 <= self.dropout < 1):
            raise UserError(f"model.backbone.dropout={self.dropout!r}; use null or a probability in [0, 1)")
        for key, value in (self.config or {}).items():
            if key not in GPT2_SETTINGS:
                raise UserError(f"model.backbone.config.{key} is not a GPT-2 setting one4all accepts; use "
                                f"{', '.join(GPT2_SETTINGS)}")
            check_value(f"model.backbone.config.{key}", value, GPT2_SETTINGS[key])
            if GPT2_SETTINGS[key] is int and value < 1:
                raise UserError(f"model.backbone.config.{key}={value}; use a positive integer")
            if key.endswith("pdrop") and not 0 <= value < 1:
                raise UserError(f"model.backbone.config.{key}={value}; use a probability in [0, 1)")
        activation = (self.config or {}).get("activation_function", "gelu_new")
        if activation not in ACT2FN:
            raise UserError(f"model.backbone.config.activation_function={activation!r}; use one of transformers' "
                            f"activations, e.g. gelu_new")


@dataclass
class Backbone:
    """A loaded, truncated GPT-2 and what actually happened while loading it."""

    model: GPT2Model
    pretrained: bool
    source: str

    def describe(self) -> dict:
        return {"pretrained": self.pretrained, "source": self.source,
                "n_layers": len(self.model.h), "d_model": self.model.config.n_embd}


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block under a fixed torch seed without disturbing the caller's RNG stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((endpoint, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _loaded_attention(spec: BackboneSpec) -> str:
    """What transformers builds the model with; `auto` is switched to one4all's kernel by `streamline`."""
    return "eager" if spec.attn_implementation == "auto" else spec.attn_implementation


def _from_pretrained(spec: BackboneSpec) -> GPT2Model:
    kwargs = {"attn_implementation": _loaded_attention(spec)}
    # A size check builds the network on the meta device (models.spec), where from_pretrained refuses
    # to run: there the architecture comes from the pretrained config alone.
    load = _from_config if torch.get_default_device().type == "meta" else GPT2Model.from_pretrained
    if Path(spec.path).expanduser().is_dir():
        return load(Path(spec.path).expanduser(), local_files_only=True, **kwargs)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        # The HF cache first: no network round trips when the weights are already here.
        return load(spec.path, local_files_only=True, **kwargs)
    except OSError:
        if not _hub_reachable():
            raise
        return load(spec.path, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)


def _from_config(path: str | Path, attn_implementation: str, **kwargs: Any) -> GPT2Model:
    config = GPT2Config.from_pretrained(path, **kwargs)
    config._attn_implementation = attn_implementation
    return GPT2Model(config)


def _random(spec: BackboneSpec) -> GPT2Model:
    config = GPT2Config(**{"n_layer": spec.n_layers, **(spec.config or {})})
    config._attn_implementation = _loaded_attention(spec)
    with seeded(spec.seed):
        return GPT2Model(config)


def _truncate(model: GPT2Model, spec: BackboneSpec) -> GPT2Model:
    if spec.n_layers > len(model.h):
        raise UserError(f"model.backbone.n_layers={spec.n_layers} but the GPT-2 has {len(model.h)} blocks")
    model.h = model.h[: spec.n_layers]
    model.config.n_layer = spec.n_layers
    # The network feeds inputs_embeds: the 50257-token table is never read. Dropping it saves
    # 38.6M parameters (154 MB) of memory without changing any output.
    model.wte = nn.Embedding(1, model.config.n_embd, _weight=torch.zeros(1, model.config.n_embd))
    if spec.dropout is not None:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = spec.dropout
    return model


def load_backbone(spec: BackboneSpec) -> Backbone:
    """Load GPT-2 as `spec` says, truncate it to `n_layers` blocks and freeze it."""
    if spec.init not in INITS:
        raise UserError(f"model.backbone.init={spec.init!r}; use one of {', '.join(INITS)}")
    if spec.init == "random":
        model, pretrained, source = _random(spec), False, "random"
    else:
        try:
            model, pretrained, source = _from_pretrained(spec), True, spec.path
        except OSError as err:
            if spec.init == "pretrained":
                raise UserError(
                    f"cannot load pretrained GPT-2 from {spec.path!r} (offline and not in the HF cache); "
                    "set model.backbone.path=/dir/with/gpt2 (config.json + weights) "
                    "or model.backbone.init=random"
                ) from err
            log.warning("!!! pretrained GPT-2 %r could not be loaded: using a RANDOMLY INITIALISED backbone. "
                        "Results are not those of a pretrained LLM. Set model.backbone.path to local "
                        "weights, or model.backbone.init=random to silence this.", spec.path)
            model, pretrained, source = _random(spec), False, "random (auto fallback)"
    model = streamline(_truncate(model, spec), fused_gelu=spec.fused_gelu,
                       attn_implementation=spec.attn_implementation)
    model.requires_grad_(False)
    if spec.compile:
        model.compile()
    return Backbone(model=model, pretrained=pretrained, source=source)
