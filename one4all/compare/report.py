"""Comparison outputs: comparison.csv (one row per model), comparison.md, and an accuracy-vs-cost chart.

Each task has its own accuracy columns (forecasting and imputation MSE/MAE, classification accuracy,
anomaly F1, short-term sMAPE/OWA): they are read from each finished entry's metrics.json, and the
Markdown table and chart show the ones the compared runs have.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from one4all.atomic import atomic_write_text

# Accuracy columns: column -> metrics.json key, and whether higher is better.
TASK_METRICS = {"test_mse": ("test/mse", False), "test_mae": ("test/mae", False),
                "test_accuracy": ("test/accuracy", True), "test_f1": ("test/f1", True),
                "test_f1_pa": ("test/f1_pa", True), "test_smape": ("test/smape", False),
                "test_owa": ("test/owa", False)}

COLUMNS = ("model", "status", *TASK_METRICS, "trainable_params", "total_params", "artifact_bytes",
           "peak_rss_mb", "train_samples_per_s", "inference_samples_per_s", "wall_time_s", "global_step", "epochs",
           "precision", "notes", "run_dir")

_METRIC_MD = {"test_mse": "test MSE", "test_mae": "test MAE", "test_accuracy": "test accuracy",
              "test_f1": "test F1", "test_f1_pa": "test F1 (PA)", "test_smape": "test sMAPE", "test_owa": "test OWA"}
# Markdown table: (column, header, format) for the columns a reader compares; accuracy columns go after
# `status`, those of the task at hand only.
_MD = (("model", "model", "{}"), ("status", "status", "{}"), ("trainable_params", "trainable params", "{:,}"),
       ("artifact_bytes", "artifact", "bytes"), ("peak_rss_mb", "peak RSS (MB)", "{:,.0f}"),
       ("train_samples_per_s", "train samples/s", "{:,.1f}"),
       ("inference_samples_per_s", "inference samples/s", "{:,.1f}"), ("wall_time_s", "wall time (s)", "{:,.1f}"),
       ("global_step", "steps", "{}"))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def human_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as file managers show them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _cell(value: Any, fmt: str) -> str:
    if value is None or value == "":
        return "–"
    if fmt == "bytes":
        return human_bytes(float(value))
    return fmt.format(value)


def with_task_metrics(rows: list[dict[str, Any]], run_dir: Path) -> list[dict[str, Any]]:
    """Rows with every accuracy column of TASK_METRICS filled from their entry's metrics.json
    (`run_dir / row["run_dir"]`); rows without one are returned as they are."""
    out = []
    for row in rows:
        metrics_file = Path(run_dir) / str(row.get("run_dir", "")) / "metrics.json"
        if row.get("status") != "ok" or not metrics_file.is_file():
            out.append(row)
            continue
        metrics = json.loads(metrics_file.read_text())
        out.append({**{c: metrics.get(key) for c, (key, _) in TASK_METRICS.items()}, **row})
    return out


def shown_metrics(rows: list[dict[str, Any]]) -> list[str]:
    """The accuracy columns that at least one row has (all of MSE and MAE when no row has any)."""
    shown = [c for c in TASK_METRICS if any(_number(r.get(c)) is not None for r in rows)]
    return shown or ["test_mse", "test_mae"]


def markdown(rows: list[dict[str, Any]], command: str = "") -> str:
    """The comparison as a Markdown table, with the command that produced it and each row's notes."""
    lines = ["# Comparison", ""]
    if command:
        lines += [f"`{command}`", ""]
    columns = [*_MD[:2], *((c, _METRIC_MD[c], "{:.4f}") for c in shown_metrics(rows)), *_MD[2:]]
    lines += ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(k), f) for k, _, f in columns) + " |" for r in rows]
    notes = [f"- {r['model']}: {r['notes']}" for r in rows if r.get("notes")]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def write_tables(rows: list[dict[str, Any]], run_dir: Path, command: str = "") -> None:
    """comparison.csv and comparison.md in `run_dir` (rewritten whole, so readers never see half)."""
    rows = with_task_metrics(rows, run_dir)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS} for r in rows)
    atomic_write_text(run_dir / "comparison.csv", buffer.getvalue())
    atomic_write_text(run_dir / "comparison.md", markdown(rows, command))


def write_chart(rows: list[dict[str, Any]], path: Path) -> Path:
    """The task's first accuracy column (test MSE when forecasting) against trainable parameters and
    against wall time, one labelled point per model. The chart sits in the comparison's run directory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = with_task_metrics(rows, path.parent)
    metric = shown_metrics(rows)[0]
    direction = "higher" if TASK_METRICS[metric][1] else "lower"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, key, label in ((axes[0], "trainable_params", "trainable parameters"),
                           (axes[1], "wall_time_s", "wall time per model (s)")):
        points = [(r["model"], _number(r.get(key)), _number(r.get(metric))) for r in rows]
        points = [(name, x, y) for name, x, y in points if x and y is not None]
        for name, x, y in points:
            ax.scatter(x, y)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=9)
        if not points:
            ax.text(0.5, 0.5, "no successful runs", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.set_xscale("log")
        ax.set_xlabel(label + " (log scale)")
        ax.set_ylabel(f"{_METRIC_MD[metric]} ({direction} is better)")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Accuracy against cost")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
