"""Plan a comparison: the exact `one4all train` overrides of every entry, validated before any run."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

from one4all.config import compose_config
from one4all.errors import UserError
from one4all.paths import config_dir

# Roots of the overrides that configure the comparison itself; all others go to every entry.
COMPARE_ROOTS = ("compare", "hydra", "experiment")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ABSENT = object()


@dataclass
class Entry:
    """One model of a comparison: its name, its train overrides, and what was dropped from them."""

    name: str
    overrides: list[str]
    notes: list[str] = field(default_factory=list)


def override_key(override: str) -> str:
    """The config key an override targets: `+a.b=1` -> `a.b`, `~a.b` -> `a.b`, `data=csv` -> `data`."""
    return override.lstrip("+~").split("=", 1)[0].strip()


def split_overrides(argv: Iterable[str]) -> tuple[list[str], list[str]]:
    """(overrides of the comparison itself, overrides passed on to every entry)."""
    own, shared = [], []
    for arg in argv:
        root = override_key(arg).split(".", 1)[0].split("/", 1)[0]  # `hydra/launcher=joblib` is the comparison's
        (own if root in COMPARE_ROOTS else shared).append(arg)
    return own, shared


def merge_overrides(*layers: Iterable[str]) -> list[str]:
    """Concatenate override lists; a later override of a key replaces an earlier one of the same key."""
    merged: dict[str, str] = {}
    for layer in layers:
        for override in layer:
            key = override_key(override)
            merged.pop(key, None)
            merged[key] = override
    return list(merged.values())


def applies_to(cfg: DictConfig, override: str) -> bool:
    """Whether `override` can apply to a composed train config (its key exists, or it adds a key)."""
    key = override_key(override)
    if override.startswith("+") or "@" in key or (config_dir() / key).is_dir():  # a config group choice
        return True
    return OmegaConf.select(cfg, key, default=_ABSENT) is not _ABSENT


def _compose(name: str, overrides: list[str]) -> DictConfig:
    try:
        return compose_config(overrides)[0]
    except UserError as err:
        raise UserError(f"compare entry {name!r}: {err}") from None


def plan_entries(compare: DictConfig, shared: list[str]) -> list[Entry]:
    """Each selected entry's overrides: `compare.common`, then its own, then the shared command-line ones.

    A shared override whose key an entry's config lacks is dropped for that entry, with a note; one
    that fits none of the comparison's entries (selected or not) is a typo and stops the comparison
    before anything runs.
    """
    entries = compare.entries or {}
    if not entries:
        raise UserError("no models to compare; choose a comparison with experiment=compare/<name> "
                        "(configs/experiment/compare/)")
    names = list(compare.models) if compare.models is not None else list(entries)
    unknown = [n for n in names if n not in entries]
    if unknown or not names:
        raise UserError(f"compare.models={names} names no known entry; available: {', '.join(entries)}")
    planned, used = [], set()
    for name in entries:
        if not _NAME.fullmatch(str(name)):
            raise UserError(f"compare entry name {name!r} must be letters, digits, '_', '.' or '-' (it names a folder)")
        own = merge_overrides(compare.common or [], entries[name] or [])
        base = _compose(name, own)
        kept = [o for o in shared if applies_to(base, o)]
        used.update(kept)
        if name in names:
            overrides = merge_overrides(own, kept)
            _compose(name, overrides)
            notes = [f"dropped {o} (no such key for this model)" for o in shared if o not in kept]
            planned.append(Entry(str(name), overrides, notes))
    unused = [o for o in shared if o not in used]
    if unused:
        raise UserError(f"override {unused[0]} fits none of the compared models' configs; check its key")
    return sorted(planned, key=lambda e: names.index(e.name))
