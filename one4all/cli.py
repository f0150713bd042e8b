"""The `one4all` command: a thin dispatcher to train / forecast / compare."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from one4all.errors import UserError

USAGE = """one4all <command> [args]

commands:
  train [overrides]     train and test one experiment (Hydra overrides, e.g. experiment=long_term/etth1_96)
  --cfg                 (after train) print the composed config and exit

Examples:
  one4all train
  one4all train experiment=long_term/etth1_96 data.root=../shared/data model.backbone.init=random
"""


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_train(argv: list[str]) -> int:
    """`one4all train [overrides...]`."""
    from omegaconf import OmegaConf

    from one4all.config import compose_config

    show = "--cfg" in argv
    cfg, run_dir = compose_config([a for a in argv if a != "--cfg"])
    if show:
        print(OmegaConf.to_yaml(cfg))
        return 0
    from lightning.pytorch.utilities import rank_zero_only

    from one4all.train import run

    metrics = run(cfg, run_dir)
    keys = [k for k in metrics if k.startswith("test/")]
    summary = ", ".join(f"{k}={metrics[k]:.4f}" for k in keys)
    if rank_zero_only.rank == 0:  # under DDP every process gets here; one report is enough
        print(f"run directory: {run_dir}\n{summary}")
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {"train": cmd_train}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; use one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    _setup_logging()
    try:
        return COMMANDS[command](rest)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
