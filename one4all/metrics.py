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


# Short-term forecasting (M3/M4): scale-free errors of whole series, in the competition's definitions.


def smape(pred: np.ndarray, true: np.ndarray) -> float:
    """Symmetric MAPE in percent (M4): mean of 200 |y - f| / (|y| + |f|); a 0/0 term counts as 0."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    denom = np.abs(true) + np.abs(pred)
    terms = np.divide(200.0 * np.abs(true - pred), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(np.mean(terms))


def mase_scale(insample: np.ndarray, m: int) -> float:
    """MASE denominator: in-sample mean absolute error of the seasonal naive forecast, mean |y_t - y_{t-m}|."""
    x = np.asarray(insample, np.float64)
    if len(x) <= m:
        raise ValueError(f"MASE with period {m} needs more than {m} in-sample points, got {len(x)}")
    return float(np.mean(np.abs(x[m:] - x[:-m])))


def mase(pred: np.ndarray, true: np.ndarray, insample: np.ndarray, m: int) -> float:
    """Mean absolute scaled error of one series' forecast, scaled by its seasonal-naive in-sample error."""
    err = np.abs(np.asarray(pred, np.float64) - np.asarray(true, np.float64))
    return float(np.mean(err) / mase_scale(insample, m))


def owa(smape_value: float, mase_value: float, naive2_smape: float, naive2_mase: float) -> float:
    """Overall weighted average (M4): the mean of sMAPE and MASE, each relative to Naive2's."""
    return 0.5 * (smape_value / naive2_smape + mase_value / naive2_mase)


def smape_loss(pred: torch.Tensor, true: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """sMAPE (percent) as a training loss over the observed (`mask`) target points.

    As in N-BEATS / Time-Series-Library, the denominator is treated as a constant (detached), so
    the gradient is that of a weighted absolute error, and 0/0 terms are 0.
    """
    denom = (pred.detach().abs() + true.abs()).clamp_min(torch.finfo(pred.dtype).tiny)
    terms = 200.0 * (pred - true).abs() / denom
    if mask is None:
        return terms.mean()
    return (terms * mask).sum() / mask.sum().clamp_min(1.0)


class SeriesErrorAccumulator:
    """sMAPE, MASE and OWA over a split of whole series (one sample = one series' horizon).

    Sums point terms of the model's and Naive2's forecasts over exactly the samples seen, so the
    OWA reference covers the same series (no drop_last, any batching, DDP all-reduce). With one
    horizon per series, the mean over points is the competition's mean over series.
    """

    # sMAPE, scaled |error|, Naive2 sMAPE, Naive2 scaled |error|, points
    FIELDS = 5

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(self.FIELDS, dtype=torch.float64)

    @staticmethod
    def _terms(pred: torch.Tensor, true: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        denom = pred.abs() + true.abs()
        s = torch.where(denom > 0, 200.0 * (pred - true).abs() / denom.clamp_min(1e-300), torch.zeros_like(denom))
        return s, (pred - true).abs() / scale[:, None]

    def update(self, pred: torch.Tensor, true: torch.Tensor, scale: torch.Tensor, naive2: torch.Tensor) -> None:
        """Add a batch: `pred`, `true`, `naive2` are `[batch, horizon]`; `scale` is the MASE scale per series."""
        pred, true, naive2, scale = (t.detach().double().cpu() for t in (pred, true, naive2, scale))
        s, a = self._terms(pred, true, scale)
        ns, na = self._terms(naive2, true, scale)
        self.sums += torch.stack([s.sum(), a.sum(), ns.sum(), na.sum(), torch.tensor(float(true.numel()))])

    def _synced(self) -> torch.Tensor:
        sums = self.sums
        if dist.is_available() and dist.is_initialized():
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
            sums = sums.to(device)
            dist.all_reduce(sums)
            sums = sums.cpu()
        return sums

    def compute(self) -> dict[str, float]:
        """smape, mase, owa and the Naive2 references over everything seen."""
        s, a, ns, na, n = self._synced().tolist()
        if n == 0:
            return {"smape": float("nan"), "mase": float("nan"), "owa": float("nan")}
        out = {"smape": s / n, "mase": a / n, "naive2_smape": ns / n, "naive2_mase": na / n, "n_points": n}
        out["owa"] = owa(out["smape"], out["mase"], out["naive2_smape"], out["naive2_mase"])
        return out
