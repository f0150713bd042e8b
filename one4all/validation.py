"""One validation layer for a composed `one4all train` config: types and ranges, before anything is built.

`train.run` calls `check_config` first, so a wrong value is one line naming the key, the value and
what is allowed (exit 2), and no run directory is created. In order:

1. every interpolation resolves (a missing environment variable is named, not a traceback);
2. the settings users type most (`RULES`: task.seq_len, data.batch_size, trainer.max_steps, ...)
   have the type and range the run needs;
3. every `_target_` node holds only parameters of its target, each an instance of its annotation
   (schema.py; `null` is left to the constructor, which fills or refuses it);
4. optimizers and learning-rate schedulers accept their settings (built once on a stand-in tensor);
5. the model can be saved: its classes are registered for artifacts (models.spec).

Range checks that belong to one class live in its constructor (e.g. `LMSpec`, models.backbones), so
that a model manifest gets them too; this module holds the rules for settings Lightning, torch and the
data loader would only reject deep inside a run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from hydra.errors import HydraException
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from one4all.errors import UserError
from one4all.models.spec import to_spec
from one4all.schema import (
    CONSTRUCTOR_ERRORS,
    check_keys,
    check_value,
    describe,
    first_line,
    shown,
    signature,
)

# Hydra's own keys in a `_target_` node; every other key is a parameter of the target.
HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_convert_", "_recursive_")
# Keys the training loop passes itself (it resolves `auto` precision): not checked against the target.
SUPPLIED = {"trainer": ("precision",)}
PRECISIONS = ("auto", "64-true", "64", 64, "32-true", "32", 32, "16-mixed", "16", 16, "bf16-mixed", "bf16",
              "16-true", "bf16-true", "transformer-engine", "transformer-engine-float16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
_SIMPLE_INTERPOLATION = re.compile(r"^\$\{([\w.]+)\}$")


@dataclass(frozen=True)
class Rule:
    """A setting's type and range: `key` (dotted; skipped when absent) must be an instance of `hint`
    and pass `valid`; `allowed` says what passes, for the error line."""

    key: str
    hint: Any
    valid: Callable[[Any], bool]
    allowed: str


def _anything(value: Any) -> bool:
    return True


def _devices(value: Any) -> bool:
    if isinstance(value, str):  # Lightning's spellings: "auto", "-1", a count "2", indices "0,1"
        text = value.strip()
        return text in ("auto", "-1") or (bool(re.fullmatch(r"\d+(,\d+)*,?", text)) and text != "0")
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, int) and v >= 0 for v in value)
    return value == -1 or value >= 1


def _accelerator(value: str) -> bool:
    return value in ACCELERATORS and (value not in ("gpu", "cuda") or torch.cuda.is_available())


RULES: tuple[Rule, ...] = (
    Rule("seed", int, lambda v: 0 <= v < 2**32, "an integer in 0..4294967295"),
    Rule("paper_compat", bool, _anything, "true or false"),
    Rule("ckpt_path", str | None, _anything, "null, last, auto or the path of a .ckpt file"),
    Rule("task.seq_len", int, lambda v: v >= 1, "a positive number of time steps"),
    Rule("task.horizon", int, lambda v: v >= 1, "a positive number of time steps"),
    Rule("task.mask_ratio", float, lambda v: 0 < v < 1, "a fraction in (0, 1)"),
    Rule("task.anomaly_ratio", float, lambda v: 0 < v < 100, "a percentage in (0, 100)"),
    Rule("data.batch_size", int, lambda v: v >= 1, "a positive integer"),
    Rule("data.eval_batch_size", int | None, lambda v: v is None or v >= 1, "null or a positive integer"),
    Rule("data.num_workers", int, lambda v: v >= 0, "0 (load in the main process) or a positive integer"),
    Rule("data.train_fraction", float, lambda v: 0 < v <= 1, "a fraction in (0, 1]"),
    Rule("data.max_missing_gap", int, lambda v: v >= 0, "0 or a positive integer"),
    Rule("trainer.max_steps", int, lambda v: v >= -1, "-1 (no limit) or a number of steps >= 0"),
    Rule("trainer.max_epochs", int | None, lambda v: v is None or v >= -1, "null, -1 (no limit) or an integer >= 0"),
    Rule("trainer.devices", int | str | list[int], _devices,
         "auto, -1 (all), a positive count, or a non-empty list of device indices"),
    Rule("trainer.num_nodes", int, lambda v: v >= 1, "a positive integer"),
    Rule("trainer.precision", Literal[PRECISIONS], _anything,
         "one of " + ", ".join(dict.fromkeys(map(str, PRECISIONS)))),
    Rule("trainer.accelerator", str, _accelerator,
         f"one of {', '.join(ACCELERATORS)}" + ("" if torch.cuda.is_available() else
                                                 " (this machine has no CUDA GPU: not gpu or cuda)")),
    Rule("trainer.val_check_interval", int | float | None,
         lambda v: v is None or (v >= 1 if isinstance(v, int) else 0 < v <= 1),
         "a fraction of an epoch in (0, 1] or a positive number of steps"),
    Rule("trainer.limit_val_batches", int | float, lambda v: v >= 0 if isinstance(v, int) else 0 <= v <= 1,
         "a fraction in [0, 1] or a number of batches >= 0"),
    Rule("trainer.check_val_every_n_epoch", int | None, lambda v: v is None or v >= 1, "null or a positive integer"),
    Rule("trainer.log_every_n_steps", int, lambda v: v >= 1, "a positive integer"),
    Rule("trainer.accumulate_grad_batches", int, lambda v: v >= 1, "a positive integer"),
    Rule("trainer.gradient_clip_val", float | None, lambda v: v is None or v >= 0, "null or a number >= 0"),
    Rule("callbacks.early_stopping.patience", int, lambda v: v >= 0, "a number of validation checks >= 0"),
    Rule("callbacks.early_stopping.min_delta", float, _anything, "a number"),
)


def check_config(cfg: DictConfig) -> None:
    """Raise a one-line UserError for the first setting of `cfg` that cannot run; see the module doc."""
    plain = _resolved(cfg)
    raw = OmegaConf.to_container(cfg, resolve=False)
    for rule in RULES:
        found, value = _lookup(plain, rule.key)
        if found and not (_allows(rule.hint, value) and rule.valid(value)):
            raise UserError(f"{rule.key}={shown(value)} is invalid: expected {rule.allowed}")
    for path, node, raw_node in _target_nodes(plain, raw):
        _check_node(path, node, raw_node)
    if isinstance(plain.get("model"), dict):
        to_spec(plain["model"])


def _allows(hint: Any, value: Any) -> bool:
    try:
        check_value("", value, hint)
    except UserError:
        return False
    return True


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError as err:
        key = err.full_key or "a value"
        raise UserError(f"cannot resolve {key}: {first_line(err)}; set what it refers to or give the value "
                        "directly") from None
    except OmegaConfBaseException as err:
        raise UserError(f"bad configuration: {first_line(err)}") from None


def _lookup(plain: dict[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = plain
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _target_nodes(node: Any, raw: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(dotted path, resolved node, unresolved node) of every mapping with a `_target_`, outermost first."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield path, node, raw
        for key, value in node.items():
            inner_raw = raw.get(key) if isinstance(raw, dict) else None
            yield from _target_nodes(value, inner_raw, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            inner_raw = raw[i] if isinstance(raw, list) and i < len(raw) else None
            yield from _target_nodes(value, inner_raw, f"{path}[{i}]")


def _check_node(path: str, node: dict[str, Any], raw: Any) -> None:
    target_name = str(node["_target_"])
    try:
        target = get_method(target_name)
    except (HydraException, ImportError, AttributeError, ValueError) as err:
        raise UserError(f"{path}._target_={target_name!r} cannot be imported ({first_line(err)}); fix the name "
                        "or install its package") from None
    sig = signature(target)
    settings = {k: v for k, v in node.items() if k not in HYDRA_KEYS}
    check_keys(f"{path}.", settings, sig)
    supplied = SUPPLIED.get(path, ())
    for key, value in settings.items():
        if value is None or key in supplied or key not in sig.params:
            continue
        if isinstance(value, dict) and "_target_" in value:
            continue  # a nested node: checked as its own node
        raw_value = raw.get(key) if isinstance(raw, dict) else None
        match = _SIMPLE_INTERPOLATION.match(raw_value) if isinstance(raw_value, str) else None
        label = match.group(1) if match else f"{path}.{key}"
        check_value(label, value, sig.params[key].hint, f"{target_name} takes {describe(sig.params[key].hint)}")
    if node.get("_partial_"):
        _dry_run(path, target, node)


def _dry_run(path: str, target: Any, node: dict[str, Any]) -> None:
    """Build an optimizer (or scheduler) factory once on a stand-in tensor: torch checks its settings
    only when the run first calls it, after the run directory exists."""
    is_class = isinstance(target, type)
    if not is_class or not issubclass(target, torch.optim.Optimizer | torch.optim.lr_scheduler.LRScheduler):
        return
    stand_in = [torch.nn.Parameter(torch.zeros(1))]
    try:
        factory = instantiate(node)
        if issubclass(target, torch.optim.Optimizer):
            factory(stand_in)
        else:
            factory(torch.optim.SGD(stand_in, lr=1.0))
    except CONSTRUCTOR_ERRORS as err:
        raise UserError(f"{path} ({target.__name__}) refuses its settings: {first_line(err)}") from None
