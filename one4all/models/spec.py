"""Network specs: the closed, typed form in which a model artifact names its network.

A spec is plain data, `{"type": <registered name>, <setting>: <value>, ...}`; a setting that is
itself a spec (One-for-All's `backbone` and `adapter`) is a nested spec of its kind's registry
(models.registry). `to_spec` turns a model config (Hydra `_target_` nodes: trusted, the user's own)
into a spec when a run saves its model; `build` turns a spec read from a file (untrusted) back into
a network:

- classes are looked up by registered name only, never by an import path; every other key,
  `_target_`, `_partial_` and `_args_` included, is refused as unknown; strings are never resolved
  (a `${...}` interpolation is refused);
- every setting is type-checked against its constructor's annotations (schema.py), then the
  constructor's own range checks run;
- the network is built first on the meta device, which allocates nothing: its weights must fit in
  the memory available, and `verify` (the artifact's check that the tensors to load have exactly
  the stored names and shapes) sees it before anything real is allocated.
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import psutil
import torch

from one4all.contract import IOSpec, Network
from one4all.errors import UserError
from one4all.models.registry import NESTED, NETWORKS
from one4all.schema import check_settings, check_value, construct, shown, signature

TYPE = "type"
# Hydra's keys that only steer instantiation; a trusted config may carry them, a spec never does.
_HYDRA_STEERING = ("_target_", "_convert_", "_recursive_")
_REGISTRIES = ("the registry of its kind (NETWORKS or BACKBONES in one4all/models/registry.py, ADAPTERS in "
               "one4all/adapters/registry.py)")


def nested_registry(hint: Any) -> dict[str, type] | None:
    """The registry of a parameter annotated with a nested spec's base class (or that | None)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    classes = [a for a in (typing.get_args(hint) if union else (hint,)) if a is not type(None)]
    for base, registry in NESTED.items():
        if classes and all(inspect.isclass(c) and issubclass(c, base) for c in classes):
            return registry
    return None


def to_spec(config: Mapping[str, Any], where: str = "model") -> dict[str, Any]:
    """The spec of a model config (or of a spec: checked and copied). Raises UserError for a class
    that is not registered, since its artifact could not be loaded back."""
    return _to_spec(config, NETWORKS, where, supplied=("io",))


def _to_spec(node: Any, registry: dict[str, type], where: str, supplied: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(node, Mapping):
        raise UserError(f"{where} must be a mapping (a config node with _target_), got {shown(node)}")
    if "_target_" in node:
        # Matched by name, not imported: this module never resolves a path, whoever wrote it.
        names = [name for name, cls in registry.items() if node["_target_"] == f"{cls.__module__}.{cls.__qualname__}"]
        if not names:
            raise UserError(f"{where}: {node['_target_']} is not registered, so a saved model could not name it; "
                            f"add it to {_REGISTRIES}")
        name, cls = names[0], registry[names[0]]
    else:
        name, cls = _registered(node, registry, where)
    settings = {k: v for k, v in node.items() if k not in (TYPE, *_HYDRA_STEERING)}
    return {TYPE: name, **_settings(cls, settings, where, supplied, _to_spec)}


def build(spec: Any, io: IOSpec, verify: Callable[[Network], None] | None = None,
          where: str = "network") -> Network:
    """The network of `spec` (untrusted data) for `io`: checked, sized on the meta device, then built."""
    dry = dry_build(spec, io, where)
    weight_bytes = sum(t.numel() * t.element_size() for t in (*dry.parameters(), *dry.buffers()))
    available = psutil.virtual_memory().available
    if weight_bytes > available:
        raise UserError(f"{where} needs {weight_bytes / 1e9:.1f} GB for its weights, more than the "
                        f"{available / 1e9:.1f} GB of memory available")
    if verify is not None:
        verify(dry)
    # Built from the spec again: methods keep state while they are applied to a network.
    return _instantiate(spec, io, where)


def dry_build(spec: Any, io: IOSpec, where: str = "network") -> Network:
    """The network of `spec` on the meta device: every check, shape and size, and no memory for weights."""
    with torch.device("meta"):
        return _instantiate(spec, io, where)


def _instantiate(spec: Any, io: IOSpec, where: str) -> Network:
    cls, kwargs = _decode(spec, NETWORKS, where, supplied=("io",))
    return construct(cls, where, kwargs, io=io)


def _decode(node: Any, registry: dict[str, type], where: str, supplied: tuple[str, ...] = ()
            ) -> tuple[type, dict[str, Any]]:
    name, cls = _registered(node, registry, where)
    settings = {k: v for k, v in node.items() if k != TYPE}

    def nested(value: Any, inner: dict[str, type], key: str, _: tuple[str, ...] = ()) -> Any:
        inner_cls, inner_kwargs = _decode(value, inner, key)
        return construct(inner_cls, key, inner_kwargs)

    return cls, _settings(cls, settings, where, supplied, nested)


def _registered(node: Any, registry: dict[str, type], where: str) -> tuple[str, type]:
    known = ", ".join(registry)
    if not isinstance(node, Mapping):
        raise UserError(f"{where} must be a mapping with a {TYPE!r} key (one of {known}), got {shown(node)}")
    name = node.get(TYPE)
    if not isinstance(name, str) or name not in registry:
        keys = ", ".join(map(str, node)) or "none"
        raise UserError(f"{where}.{TYPE}={shown(name)} is not a registered name (one of {known}; keys given: {keys})")
    return name, registry[name]


def _settings(cls: type, settings: dict[str, Any], where: str, supplied: tuple[str, ...],
              nested: Callable[[Any, dict[str, type], str], Any]) -> dict[str, Any]:
    """Checked settings of `cls`: nested specs through `nested`, plain values type-checked and copied."""
    sig = signature(cls)
    if sig.open:  # a registered class must declare every setting: a spec holds nothing unchecked
        raise UserError(f"{where}: {sig.owner} takes **kwargs, so its settings cannot be checked; it cannot be "
                        "registered for artifacts as it is")
    check_settings(where, settings, sig, supplied)
    out = {}
    for key, value in settings.items():
        hint = sig.params[key].hint
        inner = nested_registry(hint)
        if inner is not None and value is not None:
            out[key] = nested(value, inner, f"{where}.{key}")
            continue
        _refuse_interpolations(f"{where}.{key}", value)
        check_value(f"{where}.{key}", value, hint, sig.owner)
        out[key] = copy.deepcopy(value)
    return out


def _refuse_interpolations(key: str, value: Any) -> None:
    """A spec is never resolved: a `${...}` in it can only come from an edit, and is refused."""
    if isinstance(value, str) and "${" in value:
        raise UserError(f"{key}={shown(value)} holds an interpolation; a model spec is plain data and is never "
                        "resolved")
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        _refuse_interpolations(f"{key}.{k}", v)
