"""The `one4all` command: a thin dispatcher to train / forecast / compare."""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Callable

from one4all.errors import UserError

USAGE = """one4all <command> [args]

commands:
  train [overrides]     train and test one experiment (Hydra overrides, e.g. experiment=long_term/etth1_96)
  --cfg                 (after train) print the composed config and exit
  compare [overrides]   train several models under one budget; table + chart of accuracy and cost
  --dry-run             (after compare) print each model's train command and exit

Examples:
  one4all train
  one4all train experiment=long_term/etth1_96 data.root=../shared/data model.backbone.init=random
  one4all compare experiment=compare/etth1_96 data.root=../shared/data model.backbone.init=random
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
    from one4all.train import run

    metrics = run(cfg, run_dir)
    keys = [k for k in metrics if k.startswith("test/")]
    summary = ", ".join(f"{k}={metrics[k]:.4f}" for k in keys)
    print(f"run directory: {run_dir}\n{summary}")
    return 0


def cmd_compare(argv: list[str]) -> int:
    """`one4all compare [overrides...]`: exit 0 if every model ran, 1 if any failed (its row says why)."""
    from one4all.compare import plan_entries, run_comparison, split_overrides
    from one4all.compare.report import markdown
    from one4all.compare.runner import train_command
    from one4all.config import compose_config

    dry_run = "--dry-run" in argv
    args = [a for a in argv if a != "--dry-run"]
    own, shared = split_overrides(args)
    cfg, run_dir = compose_config(own, config_name="compare")
    entries = plan_entries(cfg.compare, shared)
    if dry_run:
        for entry in entries:
            print(f"{entry.name}: one4all {shlex.join(train_command(entry, run_dir)[3:])}")
            for note in entry.notes:
                print(f"  note: {note}")
        return 0
    rows = run_comparison(entries, run_dir, cfg.compare.timeout_s, command=" ".join(["one4all compare", *args]))
    print(markdown(rows), end="")
    print(f"comparison: {run_dir / 'comparison.csv'}")
    failed = [r["model"] for r in rows if r["status"] != "ok"]
    if failed:
        print(f"{len(failed)} of {len(rows)} models did not finish: {', '.join(failed)} (see their rows)",
              file=sys.stderr)
    return 1 if failed else 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {"train": cmd_train, "compare": cmd_compare}


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
