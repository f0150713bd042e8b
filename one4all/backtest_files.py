"""`one4all backtest`: a long-format file -> backtest rows, summaries and JSON, written all-or-nothing.

Bad input fails before the first model is trained (nothing written); the result files are written
together at the end with temp-file + rename.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from one4all.backtest import cross_validate, evaluate_panel
from one4all.forecast_files import commit


def backtest_overrides(argv: list[str]) -> list[str]:
    """The `one4all train` overrides among `one4all backtest`'s (everything but backtest.* and hydra.*)."""
    return [a for a in argv if not a.lstrip("+~").startswith(("backtest.", "hydra.", "backtest="))]


def run_backtest(cfg: DictConfig, run_dir: Path, argv: list[str]) -> dict[str, Any]:
    """Run the backtest `cfg.backtest` of the training overrides in `argv`; write the results into `run_dir`."""
    settings = cfg.backtest
    levels = list(settings.level or [])
    rows, panel = cross_validate(backtest_overrides(argv), {}, settings.n_windows, settings.step_size,
                                 settings.h, bool(settings.refit), levels, run_dir)
    data = cfg.data
    summary = evaluate_panel(rows, panel, levels, settings.season_length, data.id_col, data.time_col,
                             data.target_col)
    report = {"model": summary["model"], "season_length": summary["season_length"],
              "settings": OmegaConf.to_container(settings, resolve=True),
              "cutoffs": [str(c) for c in summary["by_cutoff"]["cutoff"]],
              "overall": summary["overall"],
              "by_cutoff": json.loads(summary["by_cutoff"].to_json(orient="records", date_format="iso"))}
    commit({run_dir / "cross_validation.csv": rows.to_csv(index=False).encode(),
            run_dir / "backtest_by_step.csv": summary["by_step"].to_csv(index=False).encode(),
            run_dir / "backtest_by_cutoff.csv": summary["by_cutoff"].to_csv(index=False).encode(),
            run_dir / "backtest.json": json.dumps(report, indent=2).encode()})
    return report
