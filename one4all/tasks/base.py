"""What every task shares: the network, the optimiser, small checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch

from one4all.contract import Network

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class TaskModule(L.LightningModule):
    """Base LightningModule: owns a network, builds the optimiser over trainable parameters only,
    and keeps checkpoints to the trainable state (the frozen GPT-2 is never written)."""

    def __init__(self, network: Network, optimizer: OptimizerFactory,
                 scheduler: SchedulerFactory | None = None, scheduler_interval: str = "epoch") -> None:
        super().__init__()
        self.network = network
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        # Checkpoints hold only trainable tensors; frozen ones come from the network's construction.
        self.strict_loading = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def network_output(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The network on a batch; batches of masked inputs (IOSpec.masked) pass the mask too, and
        batches with time-feature marks (served when the network reads them) pass `marks=`."""
        inputs = (batch["x"], batch["mask"]) if "mask" in batch else (batch["x"],)
        if "x_mark" in batch:
            return self.network(*inputs, marks=batch["x_mark"])
        return self.network(*inputs)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Trainable parameters, persistent buffers and frozen-but-learned weights, keyed as in `state_dict()`."""
        frozen = {name for name, p in self.named_parameters() if not p.requires_grad}
        frozen -= {f"network.{name}" for name in self.network.stored_frozen()}
        return {k: v for k, v in self.state_dict().items() if k not in frozen}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = self.trainable_state_dict()


class SplitMetricsTask(TaskModule):
    """A task whose val/test metrics stream through one accumulator per split.

    Subclasses fill `accumulators` ({"val": ..., "test": ...}, each with `reset()`) and implement
    `log_split`, which computes, resets and logs one split; the epoch hooks are shared.
    """

    accumulators: dict[str, Any]

    def log_split(self, split: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement log_split")

    def on_validation_epoch_start(self) -> None:
        self.accumulators["val"].reset()

    def on_validation_epoch_end(self) -> None:
        self.log_split("val")

    def on_test_epoch_start(self) -> None:
        self.accumulators["test"].reset()

    def on_test_epoch_end(self) -> None:
        self.log_split("test")
