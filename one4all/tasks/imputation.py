"""Imputation: loss and metrics on the hidden (masked) entries only, as GPT4TS / TSLib."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from one4all.metrics import ErrorAccumulator
from one4all.tasks.base import OptimizerFactory, SchedulerFactory, SplitMetricsTask


def masked_mse_loss(pred: torch.Tensor, true: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where `mask` is 0 (hidden)."""
    hidden = 1.0 - mask
    return ((pred - true) ** 2 * hidden).sum() / hidden.sum().clamp(min=1.0)


class ImputationTask(SplitMetricsTask):
    """Trains `network(x, mask)` to reconstruct the hidden entries of `y[b, seq_len, c]`.

    `scale` is the train-fitted std per channel, for MAE in original units. Metrics: test/mse and
    test/mae on scaled data over hidden entries (as the papers), test/mae_original.
    """

    def __init__(self, network: nn.Module, optimizer: OptimizerFactory, scale: np.ndarray,
                 scheduler: SchedulerFactory | None = None, scheduler_interval: str = "epoch") -> None:
        super().__init__(network, optimizer, scheduler, scheduler_interval)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.accumulators = {"val": ErrorAccumulator(len(self.scale)), "test": ErrorAccumulator(len(self.scale))}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = masked_mse_loss(self.network_output(batch).float(), batch["y"], batch["mask"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["x"]))
        return loss

    def _evaluate(self, split: str, batch: dict[str, torch.Tensor]) -> None:
        channels = torch.arange(batch["y"].shape[-1])
        self.accumulators[split].update(self.network_output(batch).float(), batch["y"], channels, 1.0 - batch["mask"])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Observed entries kept, hidden ones filled by the network."""
        return batch["x"] + self.network_output(batch).float() * (1.0 - batch["mask"])

    def log_split(self, split: str) -> None:
        result = self.accumulators[split].compute(self.scale)
        self.accumulators[split].reset()
        if split == "val":
            self.log("val/loss", result["mse"], prog_bar=True)
        for key in ("mse", "mae", "mae_original"):
            if key in result:
                self.log(f"{split}/{key}", result[key])
