"""Anomaly detection: reconstruction training, per-point scores, a threshold that never sees test.

The threshold is the (100 - anomaly_ratio) percentile of the train and validation scores.
TSLib/GPT4TS take it over train and TEST scores; `paper_compat=true` reproduces that to compare
with published numbers. Reported: raw `test/precision`, `test/recall`, `test/f1` and the
point-adjusted `test/precision_pa`, `test/recall_pa`, `test/f1_pa` (the papers' numbers use point
adjustment), `test/threshold` and `test/flagged_share`; a test series without labels (a user's CSV)
gets the threshold and flagged share only. With `outputs`, every test point's score, the threshold
and the flags go to anomaly_scores.csv / .png in the run directory (anomaly_files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from one4all.anomaly_files import ScoreTable, write_score_files
from one4all.data.windows.anomaly import SPLITS
from one4all.errors import UserError
from one4all.metrics import ErrorAccumulator, PointScores, anomaly_threshold, detection_metrics
from one4all.tasks.base import OptimizerFactory, SchedulerFactory, TaskModule


def reference_scores(scores: dict[str, np.ndarray], paper_compat: bool) -> np.ndarray:
    """The scores the threshold is taken from: train + val (+ test only under paper_compat)."""
    used = ("train", "val", "test") if paper_compat else ("train", "val")
    return np.concatenate([scores[k] for k in used])


def evaluate_scores(scores: dict[str, np.ndarray], labels: np.ndarray | None, anomaly_ratio: float,
                    paper_compat: bool = False) -> dict[str, float]:
    """Threshold from the reference scores, the share of test points above it, and (with labels) raw
    and point-adjusted metrics on test."""
    threshold = anomaly_threshold(reference_scores(scores, paper_compat), anomaly_ratio)
    results = {"threshold": threshold, "flagged_share": float(np.mean(scores["test"] > threshold))}
    return results if labels is None else {**detection_metrics(scores["test"], labels, threshold), **results}


class AnomalyTask(TaskModule):
    """Trains `network` to reconstruct windows `x[b, seq_len, c]`; scores points by per-step MSE.

    `test_labels` (0/1 per test point, or None), `n_points` (points per split), `n_channels` and
    `outputs` (what the per-point files show) come from the protocol; the test loader serves
    scoring windows of all three splits, tagged with split and start.
    """

    def __init__(self, network: nn.Module, optimizer: OptimizerFactory, test_labels: np.ndarray | None,
                 n_points: dict[str, int], n_channels: int, anomaly_ratio: float = 1.0, paper_compat: bool = False,
                 scheduler: SchedulerFactory | None = None, scheduler_interval: str = "epoch",
                 outputs: ScoreTable | None = None) -> None:
        super().__init__(network, optimizer, scheduler, scheduler_interval)
        if not 0.0 < anomaly_ratio < 100.0:
            raise UserError(f"task.anomaly_ratio={anomaly_ratio} must be a percentage in (0, 100), e.g. 1")
        self.test_labels = None if test_labels is None else np.asarray(test_labels, dtype=np.int8)
        self.outputs = outputs
        self.anomaly_ratio, self.paper_compat = anomaly_ratio, paper_compat
        self.scores = PointScores(n_points)
        self.val_errors = ErrorAccumulator(n_channels)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = F.mse_loss(self.network_output(batch).float(), batch["x"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["x"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        x = batch["x"]
        self.val_errors.update(self.network_output(batch).float(), x, torch.arange(x.shape[-1]))

    def on_validation_epoch_start(self) -> None:
        self.val_errors.reset()

    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", self.val_errors.compute()["mse"], prog_bar=True)
        self.val_errors.reset()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        step_scores = ((self.network_output(batch).float() - batch["x"]) ** 2).mean(dim=-1)
        for k, split in enumerate(SPLITS):
            chosen = batch["split"] == k
            if chosen.any():
                self.scores.update(split, batch["start"][chosen], step_scores[chosen])

    def on_test_epoch_start(self) -> None:
        self.scores.reset()

    def on_test_epoch_end(self) -> None:
        scores = self.scores.compute()
        results = evaluate_scores(scores, self.test_labels, self.anomaly_ratio, self.paper_compat)
        results["score_mean"] = float(scores["test"].mean())
        for key, value in results.items():
            self.log(f"test/{key}", value)
        if self.outputs is not None and self.trainer.is_global_zero:
            write_score_files(Path(self.trainer.default_root_dir), self.outputs, scores["test"], results["threshold"])
