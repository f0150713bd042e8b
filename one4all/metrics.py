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


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a CPU tensor over DDP ranks (a no-op without DDP)."""
    if dist.is_available() and dist.is_initialized():
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        reduced = tensor.to(device)
        dist.all_reduce(reduced)
        return reduced.cpu()
    return tensor


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

    def update(self, pred: torch.Tensor, true: torch.Tensor, channels: torch.Tensor,
               weight: torch.Tensor | None = None) -> None:
        """Add a batch. `pred`/`true` are `[batch, steps, k]`; `channels` names the channel of
        every sample (`[batch]`, k == 1, channel-independent) or of every last-axis column (`[k]`).
        `weight` (same shape, 0/1) restricts the errors to some entries, e.g. imputed ones."""
        err = (pred.detach().double() - true.detach().double()).cpu()
        w = torch.ones_like(err) if weight is None else weight.detach().double().cpu()
        channels = channels.detach().cpu().long()
        dims = (1, 2) if channels.numel() == err.shape[0] and err.shape[-1] == 1 else (0, 1)
        sq, ab, n = (err**2 * w).sum(dim=dims), (err.abs() * w).sum(dim=dims), w.sum(dim=dims)
        self.sq.index_add_(0, channels, sq)
        self.abs.index_add_(0, channels, ab)
        self.count.index_add_(0, channels, n)

    def _synced(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stacked = all_reduce_sum(torch.stack([self.sq, self.abs, self.count]))
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


class PointScores:
    """Anomaly scores per time step of several series (splits), from overlapping or disjoint windows.

    A point's score is the mean of the scores it received from the windows covering it. Sums and
    counts are dense per point, so DDP's duplicated padding samples change nothing after the
    all-reduce.
    """

    def __init__(self, n_points: dict[str, int]) -> None:
        self.n_points = dict(n_points)
        self.reset()

    def reset(self) -> None:
        self.sums = {k: torch.zeros(n, dtype=torch.float64) for k, n in self.n_points.items()}
        self.counts = {k: torch.zeros(n, dtype=torch.float64) for k, n in self.n_points.items()}

    def update(self, split: str, starts: torch.Tensor, scores: torch.Tensor) -> None:
        """Add windows of `split`: window i starts at `starts[i]` and scores its steps `scores[i, :]`."""
        scores = scores.detach().double().cpu()
        positions = (starts.detach().cpu().long()[:, None] + torch.arange(scores.shape[1])).reshape(-1)
        self.sums[split].index_add_(0, positions, scores.reshape(-1))
        self.counts[split].index_add_(0, positions, torch.ones_like(scores).reshape(-1))

    def compute(self) -> dict[str, np.ndarray]:
        """Mean score per point of every split; every point must have been scored."""
        out = {}
        for split in self.n_points:
            sums, counts = all_reduce_sum(torch.stack([self.sums[split], self.counts[split]]))
            if (counts == 0).any():
                raise RuntimeError(f"{int((counts == 0).sum())} points of {split} were never scored")
            out[split] = (sums / counts).numpy()
        return out


def anomaly_threshold(reference_scores: np.ndarray, anomaly_ratio: float) -> float:
    """The score above which a point is anomalous: the (100 - anomaly_ratio) percentile of
    `reference_scores` (linear interpolation, as numpy and TSLib)."""
    if not 0.0 < anomaly_ratio < 100.0:
        raise ValueError(f"anomaly_ratio={anomaly_ratio} must be a percentage in (0, 100)")
    return float(np.percentile(np.asarray(reference_scores, dtype=np.float64), 100.0 - anomaly_ratio))


def point_adjust(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Point adjustment (Xu et al. 2018, used by the papers): if any point of a labelled anomaly
    segment is detected, the whole segment counts as detected. Predictions outside segments stay."""
    pred, labels = np.asarray(pred).astype(bool).copy(), np.asarray(labels).astype(bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], labels.astype(np.int8), [0]])))
    for start, end in zip(edges[0::2], edges[1::2]):
        if pred[start:end].any():
            pred[start:end] = True
    return pred


def precision_recall_f1(pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Binary precision, recall and F1 of the positive (anomalous) class; 0 where undefined."""
    pred, labels = np.asarray(pred).astype(bool), np.asarray(labels).astype(bool)
    tp = float(np.sum(pred & labels))
    precision = tp / pred.sum() if pred.any() else 0.0
    recall = tp / labels.sum() if labels.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def detection_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Raw and point-adjusted (`_pa`) precision/recall/F1 of `scores > threshold`."""
    pred = np.asarray(scores) > threshold
    raw = precision_recall_f1(pred, labels)
    adjusted = precision_recall_f1(point_adjust(pred, labels), labels)
    names = ("precision", "recall", "f1")
    return {**dict(zip(names, raw)), **{f"{k}_pa": v for k, v in zip(names, adjusted)}}


class AccuracyAccumulator:
    """Exact accuracy and mean cross-entropy over a split (summed, then divided; DDP-synced)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.totals = torch.zeros(3, dtype=torch.float64)  # correct, loss sum, count

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        logits, labels = logits.detach().float().cpu(), labels.detach().cpu()
        loss = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
        correct = (logits.argmax(dim=-1) == labels).sum()
        self.totals += torch.tensor([float(correct), float(loss), float(len(labels))], dtype=torch.float64)

    def compute(self) -> dict[str, float]:
        correct, loss, n = all_reduce_sum(self.totals.clone()).tolist()
        if n == 0:
            return {"accuracy": float("nan"), "loss": float("nan")}
        return {"accuracy": correct / n, "loss": loss / n, "n_samples": n}


def accuracy(pred_labels: np.ndarray, labels: np.ndarray) -> float:
    """Share of exact matches."""
    return float(np.mean(np.asarray(pred_labels) == np.asarray(labels)))


# Short-term forecasting (M3/M4): scale-free errors of whole series, in the competition's definitions.


def smape_terms(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """sMAPE's point terms in percent (M4): 200 |y - f| / (|y| + |f|); a 0/0 term counts as 0."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    denom = np.abs(true) + np.abs(pred)
    return np.divide(200.0 * np.abs(true - pred), denom, out=np.zeros_like(denom), where=denom > 0)


def smape(pred: np.ndarray, true: np.ndarray) -> float:
    """Symmetric MAPE in percent (M4): the mean of `smape_terms`."""
    return float(np.mean(smape_terms(pred, true)))


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

    def compute(self) -> dict[str, float]:
        """smape, mase, owa and the Naive2 references over everything seen."""
        s, a, ns, na, n = all_reduce_sum(self.sums.clone()).tolist()
        if n == 0:
            return {"smape": float("nan"), "mase": float("nan"), "owa": float("nan")}
        out = {"smape": s / n, "mase": a / n, "naive2_smape": ns / n, "naive2_mase": na / n, "n_points": n}
        out["owa"] = owa(out["smape"], out["mase"], out["naive2_smape"], out["naive2_mase"])
        return out
