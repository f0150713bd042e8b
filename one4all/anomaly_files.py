"""The anomaly task's per-point outputs in the run directory.

`anomaly_scores.csv`: one row per scored point of the test series (for `data=anomaly_csv`: every
row of the user's file) with its timestamp (or row number), the values in the data's units, the
score, the threshold, `anomaly` (1 = score above the threshold) and `label` when labels exist.
`anomaly_scores.png`: the first channels with the flagged points and labelled spans, and the
score against the threshold.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from one4all.atomic import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

SCORES_CSV = "anomaly_scores.csv"
SCORES_PLOT = "anomaly_scores.png"
MAX_PLOTTED_CHANNELS = 3
_OUTPUT_COLUMNS = ("score", "threshold", "anomaly", "label")


@dataclass
class ScoreTable:
    """What the outputs show besides the scores: the test points' index, values and labels."""

    index: pd.Index  # timestamps, or row numbers
    index_name: str
    values: np.ndarray  # float64 [points, channels], the data's units
    columns: list[str]
    labels: np.ndarray | None = None

    def frame(self, scores: np.ndarray, threshold: float) -> pd.DataFrame:
        """One row per point: index, values, score, threshold, anomaly (0/1), label (if known)."""
        # A value column named like an output column keeps its values under a suffixed name.
        names = [f"{c}_value" if c in _OUTPUT_COLUMNS or c == self.index_name else c for c in self.columns]
        frame = pd.DataFrame(self.values, columns=names)
        frame.insert(0, self.index_name, self.index)
        frame["score"] = scores
        frame["threshold"] = threshold
        frame["anomaly"] = (scores > threshold).astype(np.int8)
        if self.labels is not None:
            frame["label"] = self.labels
        return frame


def render_plot(table: ScoreTable, scores: np.ndarray, threshold: float) -> bytes:
    """PNG: one panel per shown channel (flagged points red, labelled spans shaded) and the score panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = table.columns[:MAX_PLOTTED_CHANNELS]
    flagged = scores > threshold
    x = table.index.tz_localize(None) if isinstance(table.index, pd.DatetimeIndex) else np.asarray(table.index)
    fig, axes = plt.subplots(len(shown) + 1, 1, figsize=(11, 2.2 * (len(shown) + 1)), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for ax, (c, name) in zip(axes, enumerate(shown)):
        ax.plot(x, table.values[:, c], lw=0.8, color="tab:blue")
        ax.scatter(x[flagged], table.values[flagged, c], s=8, color="tab:red", zorder=3, label="flagged")
        ax.set_ylabel(name)
    axes[-1].plot(x, scores, lw=0.8, color="black")
    axes[-1].axhline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:.4g}")
    axes[-1].set_ylabel("score")
    axes[-1].legend(loc="upper right", fontsize=8)
    if table.labels is not None:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], table.labels.astype(np.int8), [0]])))
        for start, end in zip(edges[0::2], edges[1::2]):
            for ax in axes:
                ax.axvspan(x[start], x[end - 1], color="tab:orange", alpha=0.25, lw=0)
    hidden = len(table.columns) - len(shown)
    title = f"{int(flagged.sum())} of {len(scores)} points flagged"
    if table.labels is not None:
        title += " (labelled anomalies shaded)"
    axes[0].set_title(title + (f"; first {len(shown)} of {len(table.columns)} channels shown" if hidden else ""))
    axes[-1].set_xlabel(table.index_name)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write_score_files(directory: Path, table: ScoreTable, scores: np.ndarray, threshold: float) -> Path:
    """Write anomaly_scores.csv and anomaly_scores.png into `directory`; returns the CSV's path."""
    path = Path(directory) / SCORES_CSV
    atomic_write_text(path, table.frame(scores, threshold).to_csv(index=False))
    atomic_write_bytes(path.with_name(SCORES_PLOT), render_plot(table, scores, threshold))
    log.info("anomaly scores of %d points (%d above the threshold %.4g): %s", len(scores),
             int((scores > threshold).sum()), threshold, path)
    return path
