"""Classification: cross-entropy; accuracy over whole splits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from one4all.metrics import AccuracyAccumulator
from one4all.tasks.base import OptimizerFactory, SchedulerFactory, SplitMetricsTask


class ClassificationTask(SplitMetricsTask):
    """Trains `network` to map a padded series `x[b, L, c]` (+ mask) to class logits `[b, K]`.

    Logs val/loss (mean cross-entropy, watched by early stopping and checkpointing), val/accuracy,
    test/accuracy and test/loss.
    """

    def __init__(self, network: nn.Module, optimizer: OptimizerFactory, scheduler: SchedulerFactory | None = None,
                 scheduler_interval: str = "epoch") -> None:
        super().__init__(network, optimizer, scheduler, scheduler_interval)
        self.accumulators = {"val": AccuracyAccumulator(), "test": AccuracyAccumulator()}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = F.cross_entropy(self.network_output(batch).float(), batch["y"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["x"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.accumulators["val"].update(self.network_output(batch), batch["y"])

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.accumulators["test"].update(self.network_output(batch), batch["y"])

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Class probabilities."""
        return self.network_output(batch).float().softmax(dim=-1)

    def log_split(self, split: str) -> None:
        result = self.accumulators[split].compute()
        self.accumulators[split].reset()
        self.log(f"{split}/loss", result["loss"], prog_bar=split == "val")
        self.log(f"{split}/accuracy", result["accuracy"], prog_bar=split == "val")
