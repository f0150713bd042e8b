"""All metrics in one place: streaming errors over a split, and pure metric functions."""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist


def mse(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean squared error over all entries."""
    return float(np.mean((np.asarray(pred, np.float64) - np.asarray(true, np.float64)) ** 2))


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute error over all entries."""
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(true, np.float64))))


class ErrorAccumulator:
    """Exact MSE and MAE over a whole split, kept per channel.

    Batches may differ in size (no drop_last), so errors are summed, not averaged per batch.
    Per-channel sums also give MAE in original units: scaled error x the channel's scaler std.
    Under DDP the sums are all-reduced before computing.
    """

    def __init__(self, n_channels: int) -> None:
        self.n_channels = n_channels
        self.reset()

    def reset(self) -> None:
        self.sq = torch.zeros(self.n_channels, dtype=torch.float64)
        self.abs = torch.zeros(self.n_channels, dtype=torch.float64)
        self.count = torch.zeros(self.n_channels, dtype=torch.float64)

    def update(self, pred: torch.Tensor, true: torch.Tensor, channels: torch.Tensor) -> None:
        """Add a batch. `pred`/`true` are `[batch, steps, k]`; `channels` names the channel of
        every sample (`[batch]`, k == 1, channel-independent) or of every last-axis column (`[k]`)."""
        err = (pred.detach().double() - true.detach().double()).cpu()
        channels = channels.detach().cpu().long()
        if channels.numel() == err.shape[0] and err.shape[-1] == 1:
            sq, ab = (err**2).sum(dim=(1, 2)), err.abs().sum(dim=(1, 2))
            n = torch.full_like(sq, float(err.shape[1]))
        else:
            sq, ab = (err**2).sum(dim=(0, 1)), err.abs().sum(dim=(0, 1))
            n = torch.full_like(sq, float(err.shape[0] * err.shape[1]))
        self.sq.index_add_(0, channels, sq)
        self.abs.index_add_(0, channels, ab)
        self.count.index_add_(0, channels, n)

    def _synced(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stacked = torch.stack([self.sq, self.abs, self.count])
        if dist.is_available() and dist.is_initialized():
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
            stacked = stacked.to(device)
            dist.all_reduce(stacked)
            stacked = stacked.cpu()
        return stacked[0], stacked[1], stacked[2]

    def compute(self, scale: np.ndarray | None = None) -> dict[str, float]:
        """mse and mae over everything seen; with `scale` (per-channel std) also mae_original."""
        sq, ab, n = self._synced()
        total = n.sum().item()
        if total == 0:
            return {"mse": float("nan"), "mae": float("nan")}
        out = {"mse": sq.sum().item() / total, "mae": ab.sum().item() / total, "n_points": total}
        if scale is not None:
            out["mae_original"] = float((ab * torch.as_tensor(scale, dtype=torch.float64)).sum().item() / total)
        return out
