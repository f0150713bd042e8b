"""Short-term forecasting of whole series (M4, M3, zero-shot M3 -> M4): sMAPE loss; sMAPE, MASE, OWA."""

from __future__ import annotations

import torch
from torch import nn

from one4all.metrics import SeriesErrorAccumulator, smape_loss
from one4all.tasks.base import OptimizerFactory, SchedulerFactory, SplitMetricsTask


class ShortTermTask(SplitMetricsTask):
    """Trains `network` on `x[b, seq_len, 1] -> y[b, horizon, 1]` windows with the sMAPE loss.

    Evaluation batches carry each series' MASE scale and Naive2 forecast. When a batch asks for
    more steps than the network's horizon (a zero-shot target with a longer horizon), the
    forecast is rolled out: each output is appended to the input window and fed back.
    """

    def __init__(self, network: nn.Module, optimizer: OptimizerFactory, scheduler: SchedulerFactory | None = None,
                 scheduler_interval: str = "epoch") -> None:
        super().__init__(network, optimizer, scheduler, scheduler_interval)
        self.accumulators = {"val": SeriesErrorAccumulator(), "test": SeriesErrorAccumulator()}

    def forecast(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """`steps` future values after `x[b, seq_len, 1]`, rolling the network out if needed."""
        window, parts, produced = x, [], 0
        while produced < steps:
            out = self.network(window).float()
            parts.append(out)
            produced += out.shape[1]
            window = torch.cat([window, out.to(window.dtype)], dim=1)[:, -x.shape[1]:]
        return torch.cat(parts, dim=1)[:, :steps]

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = smape_loss(self.network(batch["x"]).float(), batch["y"], batch["y_mask"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["x"]))
        return loss

    def _evaluate(self, split: str, batch: dict[str, torch.Tensor]) -> None:
        pred = self.forecast(batch["x"], batch["y"].shape[1])
        self.accumulators[split].update(pred[..., 0], batch["y"][..., 0], batch["scale"], batch["naive2"][..., 0])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.forecast(batch["x"], batch["y"].shape[1])

    def log_split(self, split: str) -> None:
        result = self.accumulators[split].compute()
        self.accumulators[split].reset()
        if split == "val":
            self.log("val/loss", result["smape"], prog_bar=True)
        for key in ("smape", "mase", "owa", "naive2_smape", "naive2_mase"):
            if key in result:
                self.log(f"{split}/{key}", result[key], prog_bar=split == "val" and key == "owa")
