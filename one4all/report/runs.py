"""Read finished runs below a folder: each `metrics.json` with the `config.yaml` beside it.

Both files are data written by `one4all train`; they are parsed as plain JSON/YAML and only the
fields a report needs are taken, each checked for its type. A run whose files are missing or do not
have that shape is skipped with a warning naming the file, never trusted.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from one4all.errors import UserError

log = logging.getLogger(__name__)

# Model classes and adapter presets as the papers name them.
_MODELS = {"DLinear": "DLinear", "PatchTST": "PatchTST", "TimesNet": "TimesNet"}
_PRESETS = {"reference": "One-for-All", "gpt4ts": "GPT4TS"}
_PAPER_RANK = 16


@dataclass(frozen=True)
class Run:
    """What a report needs from one run directory."""

    path: Path
    task: str
    dataset: str
    model: str
    seq_len: int
    horizon: int | None
    seed: int | None
    train_fraction: float
    metrics: dict[str, float] = field(default_factory=dict)  # test/* numbers
    trainable_params: int | None = None
    artifact_bytes: int | None = None
    # The task's own scalar settings (imputation's mask_ratio, ...): runs that differ only by seed share it.
    variant: str = ""

    @property
    def setting(self) -> str:
        """long_term, or few_shot_<percent> when the run trained on a fraction of its windows."""
        if self.train_fraction >= 1.0:
            return "long_term"
        return f"few_shot_{round(self.train_fraction * 100)}"


class _Shape(ValueError):
    """A field missing or of the wrong type."""


def _get(tree: Any, path: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    node = tree
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            if default is not ...:
                return default
            raise _Shape(f"no {path}")
        node = node[key]
    if node is None and default is not ...:
        return default
    if isinstance(node, bool) or not isinstance(node, kind):
        wanted = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _Shape(f"{path} is {type(node).__name__}, not {wanted}")
    return node


def model_label(config: dict[str, Any]) -> str:
    """One-for-All / GPT4TS / DLinear / ...; other adapters and ranks are spelled out."""
    target = _get(config, "model._target_", str)
    name = target.rsplit(".", 1)[-1]
    if name in _MODELS:
        return _MODELS[name]
    preset = _get(config, "model.adapter.preset", str, default=None) or _get(config, "adapter.preset", str, "?")
    label = _PRESETS.get(preset, f"{name} ({preset})")
    rank = _get(config, "model.adapter.rank", int, default=None)
    if preset != "gpt4ts" and rank is not None and rank != _PAPER_RANK:
        label += f" r={rank}"
    return label


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _variant(task: Any) -> str:
    """`mask_ratio=0.25`: the task's scalar settings besides its name, input length and horizon."""
    if not isinstance(task, dict):
        return ""
    skip = {"name", "seq_len", "horizon"}
    return ", ".join(f"{k}={v}" for k, v in sorted(task.items())
                     if k not in skip and isinstance(v, str | int | float | bool))


def read_run(metrics_file: Path) -> Run:
    """A run from its metrics.json and config.yaml; ValueError (with the reason) if they do not fit."""
    config_file = metrics_file.with_name("config.yaml")
    if not config_file.is_file():
        raise _Shape("no config.yaml beside it")
    try:
        metrics = json.loads(metrics_file.read_text())
        config = yaml.safe_load(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as err:
        raise _Shape(f"unreadable ({type(err).__name__})") from err
    if not isinstance(metrics, dict) or not isinstance(config, dict):
        raise _Shape("not a mapping")
    tests = {k: v for k, v in ((k, _number(v)) for k, v in metrics.items() if k.startswith("test/")) if v is not None}
    efficiency = metrics.get("efficiency") if isinstance(metrics.get("efficiency"), dict) else {}
    params, size = efficiency.get("trainable_params"), efficiency.get("artifact_bytes")
    return Run(
        path=metrics_file.parent,
        task=_get(config, "task.name", str),
        dataset=_get(config, "data.name", str, default=None) or _get(metrics, "data.name", str, "?"),
        model=model_label(config),
        seq_len=_get(config, "task.seq_len", int),
        horizon=_get(config, "task.horizon", int, default=None),
        seed=_get(config, "seed", int, default=None),
        train_fraction=float(_get(config, "data.train_fraction", (int, float), default=1.0)),
        metrics=tests,
        trainable_params=params if isinstance(params, int) and not isinstance(params, bool) else None,
        artifact_bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
        variant=_variant(config.get("task")),
    )


def find_runs(folder: str | Path) -> list[Run]:
    """Every finished run below `folder` (a sweep, a comparison, or one run directory)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; give the sweep directory of `one4all train -m` (or any folder "
                        "holding run directories)")
    runs = []
    for metrics_file in sorted(root.rglob("metrics.json")):
        try:
            runs.append(read_run(metrics_file))
        except _Shape as err:
            log.warning("skipping %s: %s", metrics_file, err)
    if not runs:
        raise UserError(f"no finished runs below {root} (no metrics.json with its config.yaml); run "
                        "`one4all train -m ...` first, or check the folder")
    return runs
