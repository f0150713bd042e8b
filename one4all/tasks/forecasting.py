"""Long-term (and few-shot) forecasting: MSE loss; MSE/MAE on scaled data, MAE in original units."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from one4all.metrics import ErrorAccumulator
from one4all.tasks.base import OptimizerFactory, SchedulerFactory, SplitMetricsTask


class ForecastingTask(SplitMetricsTask):
    """Trains `network` to map `x[b, seq_len, c]` to `y[b, horizon, k]`.

    `target_channels` index the scored channels among the inputs (all for M, the target for
    S/MS); `scale` is the train-fitted std per input channel, for errors in original units.
    `test_scale` is the test data's own when it is another dataset (zero-shot).
    """

    def __init__(self, network: nn.Module, optimizer: OptimizerFactory, target_channels: list[int],
                 scale: np.ndarray, scheduler: SchedulerFactory | None = None,
                 scheduler_interval: str = "epoch", test_scale: np.ndarray | None = None) -> None:
        super().__init__(network, optimizer, scheduler, scheduler_interval)
        self.target_channels = list(target_channels)
        self.scales = {"val": np.asarray(scale, dtype=np.float64),
                       "test": np.asarray(scale if test_scale is None else test_scale, dtype=np.float64)}
        self.accumulators = {split: ErrorAccumulator(len(s)) for split, s in self.scales.items()}
        self.channel_independent = network.channel_independent

    def predict_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Forecast for the scored channels, in scaled units."""
        pred = self.network_output(batch)
        if not self.channel_independent:
            pred = pred[..., self.target_channels]
        return pred

    def _channels(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "channel" in batch:
            return batch["channel"]
        return torch.as_tensor(self.target_channels)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = F.mse_loss(self.predict_batch(batch).float(), batch["y"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["x"]))
        return loss

    def _evaluate(self, split: str, batch: dict[str, torch.Tensor]) -> None:
        self.accumulators[split].update(self.predict_batch(batch).float(), batch["y"], self._channels(batch))

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.predict_batch(batch).float()

    def log_split(self, split: str) -> None:
        result = self.accumulators[split].compute(self.scales[split])
        self.accumulators[split].reset()
        if split == "val":
            self.log("val/loss", result["mse"], prog_bar=True)
        for key in ("mse", "mae", "mae_original"):
            if key in result:
                self.log(f"{split}/{key}", result[key], prog_bar=split == "val" and key == "mae")
