"""Run each entry of a comparison as its own `one4all train` process and collect one row per model."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from one4all.atomic import atomic_write_text
from one4all.compare.plan import Entry
from one4all.compare.report import write_chart, write_tables

log = logging.getLogger(__name__)

EFFICIENCY_KEYS = ("trainable_params", "total_params", "artifact_bytes", "peak_rss_mb", "train_samples_per_s",
                   "inference_samples_per_s", "precision")


def train_command(entry: Entry, run_dir: Path) -> list[str]:
    """The `one4all train` command line of an entry; its run directory sits inside the comparison's.

    The output goes to a log file, so the progress bar is off unless the entry turns it on.
    """
    return [sys.executable, "-m", "one4all.cli", "train", "trainer.enable_progress_bar=false", *entry.overrides,
            f"hydra.run.dir={run_dir / entry.name}"]


def last_error(log_file: Path) -> str:
    """The CLI's one-line `error:` message, else the last line of the log (e.g. a traceback's)."""
    lines = [line.strip() for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1][:300]


def metrics_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """Accuracy and cost columns from a run's metrics.json."""
    efficiency, run = metrics.get("efficiency") or {}, metrics.get("run") or {}
    return {"test_mse": metrics.get("test/mse"), "test_mae": metrics.get("test/mae"),
            **{key: efficiency.get(key) for key in EFFICIENCY_KEYS},
            "global_step": run.get("global_step"), "epochs": run.get("epochs")}


def run_entry(entry: Entry, run_dir: Path, timeout_s: float | None) -> dict[str, Any]:
    """Train and test one entry in a subprocess; any failure becomes the row's status, never an exception."""
    log_file = run_dir / "logs" / f"{entry.name}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    row: dict[str, Any] = {"model": entry.name, "run_dir": entry.name, "notes": "; ".join(entry.notes)}
    started = time.perf_counter()
    with log_file.open("w") as out:
        try:
            code = subprocess.run(train_command(entry, run_dir), stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout_s, check=False).returncode
        except subprocess.TimeoutExpired:
            code = None
    row["wall_time_s"] = round(time.perf_counter() - started, 1)
    metrics_file = run_dir / entry.name / "metrics.json"
    if code == 0 and metrics_file.is_file():
        return {**row, "status": "ok", **metrics_row(json.loads(metrics_file.read_text()))}
    reason = f"timeout after {timeout_s}s" if code is None else f"exit {code}: {last_error(log_file)}"
    notes = "; ".join(filter(None, [row["notes"], reason]))
    return {**row, "status": "timeout" if code is None else "failed", "notes": notes}


def run_comparison(entries: list[Entry], run_dir: Path, timeout_s: float | None = None,
                   command: str = "") -> list[dict[str, Any]]:
    """Run the entries one after another; tables are rewritten after each, the chart at the end."""
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = {"command": command, "entries": {e.name: {"overrides": e.overrides, "notes": e.notes} for e in entries}}
    atomic_write_text(run_dir / "compare.yaml", OmegaConf.to_yaml(plan))
    rows: list[dict[str, Any]] = []
    for i, entry in enumerate(entries, 1):
        log.info("compare [%d/%d] %s: %s", i, len(entries), entry.name, " ".join(entry.overrides))
        rows.append(run_entry(entry, run_dir, timeout_s))
        log.info("compare [%d/%d] %s: %s", i, len(entries), entry.name, rows[-1]["status"])
        write_tables(rows, run_dir, command)
    write_chart(rows, run_dir / "comparison.png")
    return rows
