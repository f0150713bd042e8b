"""Comparison outputs: comparison.csv (one row per model), comparison.md, and an accuracy-vs-cost chart."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from one4all.atomic import atomic_write_text

COLUMNS = ("model", "status", "test_mse", "test_mae", "trainable_params", "total_params", "artifact_bytes",
           "peak_rss_mb", "train_samples_per_s", "inference_samples_per_s", "wall_time_s", "global_step", "epochs",
           "precision", "notes", "run_dir")

# Markdown table: (column, header, format) for the columns a reader compares.
_MD = (("model", "model", "{}"), ("status", "status", "{}"), ("test_mse", "test MSE", "{:.4f}"),
       ("test_mae", "test MAE", "{:.4f}"), ("trainable_params", "trainable params", "{:,}"),
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


def markdown(rows: list[dict[str, Any]], command: str = "") -> str:
    """The comparison as a Markdown table, with the command that produced it and each row's notes."""
    lines = ["# Comparison", ""]
    if command:
        lines += [f"`{command}`", ""]
    lines += ["| " + " | ".join(h for _, h, _ in _MD) + " |", "|" + "|".join("---" for _ in _MD) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(k), f) for k, _, f in _MD) + " |" for r in rows]
    notes = [f"- {r['model']}: {r['notes']}" for r in rows if r.get("notes")]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def write_tables(rows: list[dict[str, Any]], run_dir: Path, command: str = "") -> None:
    """comparison.csv and comparison.md in `run_dir` (rewritten whole, so readers never see half)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS} for r in rows)
    atomic_write_text(run_dir / "comparison.csv", buffer.getvalue())
    atomic_write_text(run_dir / "comparison.md", markdown(rows, command))


def write_chart(rows: list[dict[str, Any]], path: Path) -> Path:
    """Test MSE against trainable parameters and against wall time, one labelled point per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, key, label in ((axes[0], "trainable_params", "trainable parameters"),
                           (axes[1], "wall_time_s", "wall time per model (s)")):
        points = [(r["model"], _number(r.get(key)), _number(r.get("test_mse"))) for r in rows]
        points = [(name, x, y) for name, x, y in points if x and y is not None]
        for name, x, y in points:
            ax.scatter(x, y)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=9)
        if not points:
            ax.text(0.5, 0.5, "no successful runs", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.set_xscale("log")
        ax.set_xlabel(label + " (log scale)")
        ax.set_ylabel("test MSE (lower is better)")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Accuracy against cost")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
