"""Run a comparison's entries as jobs of one Hydra launch and collect one row per model.

Each entry is a list of `one4all train` overrides, i.e. one job for Hydra's launchers (basic by
default, `hydra/launcher=joblib` for parallel jobs, `submitit_slurm` on a cluster): `train_job` runs
it in its own process (isolated failures, per-model peak memory, `compare.timeout_s`) inside the
comparison's run directory, `<run_dir>/<entry name>`, its output in `<run_dir>/logs/<entry name>.log`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from one4all.api import quote
from one4all.atomic import atomic_write_text
from one4all.compare.plan import Entry
from one4all.compare.report import write_chart, write_tables
from one4all.sweep.launch import Outcome, launch

log = logging.getLogger(__name__)

EFFICIENCY_KEYS = ("trainable_params", "total_params", "artifact_bytes", "peak_rss_mb", "train_samples_per_s",
                   "inference_samples_per_s", "precision")


def train_command(entry: Entry, run_dir: Path) -> list[str]:
    """`one4all train` arguments that run an entry on its own, as the comparison runs it.

    The output goes to a log file, so the progress bar is off unless the entry turns it on.
    """
    return ["train", "trainer.enable_progress_bar=false", *entry.overrides, f"hydra.run.dir={run_dir / entry.name}"]


def entry_job(entry: Entry, timeout_s: float | None) -> list[str]:
    """The entry as one job of the launch: its overrides, its folder, and the comparison's time limit."""
    return ["trainer.enable_progress_bar=false", *entry.overrides, f"hydra.sweep.subdir={quote(entry.name)}",
            "sweep.isolate=true", f"sweep.timeout_s={'null' if timeout_s is None else timeout_s}"]


def metrics_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """Accuracy and cost columns from a run's metrics.json."""
    efficiency, run = metrics.get("efficiency") or {}, metrics.get("run") or {}
    return {"test_mse": metrics.get("test/mse"), "test_mae": metrics.get("test/mae"),
            **{key: efficiency.get(key) for key in EFFICIENCY_KEYS},
            "global_step": run.get("global_step"), "epochs": run.get("epochs")}


def entry_row(entry: Entry, outcome: Outcome, run_dir: Path) -> dict[str, Any]:
    """A model's row: its metrics when it finished, else its status and the one-line reason."""
    result = outcome.result
    row: dict[str, Any] = {"model": entry.name, "run_dir": entry.name, "notes": "; ".join(entry.notes),
                           "wall_time_s": result.wall_time_s}
    metrics_file = run_dir / entry.name / "metrics.json"
    if result.status == "ok" and metrics_file.is_file():
        return {**row, "status": "ok", **metrics_row(json.loads(metrics_file.read_text()))}
    notes = "; ".join(filter(None, [row["notes"], result.error]))
    return {**row, "status": result.status if result.status != "ok" else "failed", "notes": notes}


def run_comparison(entries: list[Entry], run_dir: Path, timeout_s: float | None = None, command: str = "",
                   launcher: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the entries as one launch (`launcher`: overrides choosing Hydra's launcher); write the tables
    and the chart; return one row per entry, in the entries' order."""
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = {"command": command, "entries": {e.name: {"overrides": e.overrides, "notes": e.notes} for e in entries}}
    atomic_write_text(run_dir / "compare.yaml", OmegaConf.to_yaml(plan))
    jobs = [entry_job(entry, timeout_s) for entry in entries]
    log.info("compare: %d models in %s", len(entries), run_dir)
    outcomes = launch([f"hydra.sweep.dir={quote(run_dir)}", *(launcher or [])], jobs)
    rows = [entry_row(entry, outcome, run_dir) for entry, outcome in zip(entries, outcomes, strict=True)]
    for row in rows:
        log.info("compare %s: %s", row["model"], row["status"])
    write_tables(rows, run_dir, command)
    write_chart(rows, run_dir / "comparison.png")
    return rows
