"""Compose Hydra configs without letting Hydra touch the disk before the run is valid."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from one4all.errors import UserError
from one4all.paths import config_dir
from one4all.schema import CONSTRUCTOR_ERRORS, first_line


def compose_config(overrides: list[str], config_name: str = "train") -> tuple[DictConfig, Path]:
    """The job config (without the `hydra` node) and its run directory (`hydra.run.dir`).

    Uses Hydra's compose API rather than `@hydra.main`, so that no run directory exists until
    the data and model have been built: a run that fails on bad input leaves nothing behind.
    """
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="one4all"):
            cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
            run_dir = Path(str(cfg.hydra.run.dir)).expanduser().resolve()
            # Pin the resolved directory: Lightning's DDP launcher re-runs this command for the other
            # ranks with hydra.run.dir taken from here, and `${now:...}` would differ by then.
            cfg.hydra.run.dir = str(run_dir)
            HydraConfig.instance().set_config(cfg)
    except (HydraException, OmegaConfBaseException, ValueError) as err:  # ValueError: e.g. `group=null`
        detail = " ".join(str(err).split()) or type(err).__name__
        raise UserError(f"bad configuration or override: {detail}") from err
    if _started_by_launcher() and not any(o.lstrip("+").startswith("hydra.run.dir=") for o in overrides):
        # Every process composes its own config: a `${now:...}` directory would differ between them.
        raise UserError("this is one process of a multi-process launch (torchrun, srun or NODE_RANK): pass "
                        "hydra.run.dir=<a directory on shared storage> so that every process uses the same one")
    if "adapter" not in cfg.get("model", {}) and any(_is_adapter_override(o) for o in overrides):
        # Baselines train all their parameters: an adapter would be silently ignored.
        raise UserError(f"model {cfg.model.get('_target_', '?').rsplit('.', 1)[-1]} trains all its parameters and "
                        "takes no adapter; drop the adapter override (adapters apply to the GPT-2 models)")
    if "_target_" not in (cfg.get("model", {}).get("backbone") or {}) and any(
            o.lstrip("+~").split("=", 1)[0] == "ablation" for o in overrides):
        # The ablation group writes model.backbone.*: on a baseline that would be a confusing unknown key.
        raise UserError(f"ablation=... changes the frozen backbone of model=one4all; model "
                        f"{cfg.model.get('_target_', '?').rsplit('.', 1)[-1]} has none, drop the ablation override")
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, run_dir


def _is_adapter_override(override: str) -> bool:
    key = override.lstrip("+~").split("=", 1)[0]
    return key == "adapter" or key.startswith(("adapter.", "adapter@"))


def _started_by_launcher() -> bool:
    """True when other processes compose the same run: torchrun sets WORLD_SIZE, srun SLURM_STEP_NUM_TASKS,
    and a multi-node launch without either needs NODE_RANK on every node."""
    return (int(os.environ.get("WORLD_SIZE", "1")) > 1 or int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1
            or "NODE_RANK" in os.environ)


def build_object(node: Any, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate` with dataclass kwargs kept as objects and user errors unwrapped.

    Hydra wraps whatever a constructor raises; a UserError must reach the CLI as itself, and a
    misspelt config key (TypeError: unexpected keyword) is a user error too.
    """
    try:
        return instantiate(node, _convert_="object", **kwargs)
    except MissingMandatoryValue as err:
        raise UserError(f"missing config value {err.full_key}; set it on the command line "
                        f"({err.full_key}=...)") from None
    except InstantiationException as err:
        cause = err.__cause__
        while isinstance(cause, InstantiationException):
            cause = cause.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        # Imported here: composing a config must not pay for importing Lightning.
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        # What a constructor raises on a value it cannot use (Lightning: MisconfigurationException, e.g.
        # an accelerator this machine lacks) is a configuration error; validation.py catches most earlier.
        if isinstance(cause, (*CONSTRUCTOR_ERRORS, MisconfigurationException)):
            target = node.get("_target_", "?") if isinstance(node, dict | DictConfig) else "?"
            raise UserError(f"config for {target}: {first_line(cause)}; fix its setting") from err
        raise


def quote(value: Any) -> str:
    """A Hydra override value that stays the literal string (column '0' must not become the int 0)."""
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", str(value))
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f"'{text}'"
