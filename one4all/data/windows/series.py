"""Windows over collections of univariate series (M3/M4): sampled training windows, one
evaluation window per series, with the references that sMAPE/MASE/OWA need."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from one4all.data.windows.base import WindowDataset
from one4all.errors import UserError
from one4all.metrics import mase_scale
from one4all.naive2 import is_seasonal, naive2


def left_pad(window: np.ndarray, length: int, zeros: bool) -> np.ndarray:
    """Pad a history shorter than `length` at the front.

    By default with its first value: zeros would be a fake level shift that the network's
    instance norm then treats as signal. `zeros=True` is Time-Series-Library's padding.
    """
    if len(window) >= length:
        return window[len(window) - length:]
    fill = 0.0 if zeros else window[0]
    return np.concatenate([np.full(length - len(window), fill), window])


@dataclass
class EvalSet:
    """One evaluation sample per series: the last `seq_len` history points in, `horizon` values out,
    plus each series' MASE scale and Naive2 forecast (computed from the same history)."""

    x: np.ndarray  # [series, seq_len]
    y: np.ndarray  # [series, horizon]
    scale: np.ndarray  # [series]
    naive2: np.ndarray  # [series, horizon]
    n_seasonal: int  # series that pass the seasonality test (Naive2 deseasonalises them)

    @classmethod
    def build(cls, histories: list[np.ndarray], targets: list[np.ndarray], seq_len: int, m: int,
              zero_pad: bool = False) -> EvalSet:
        """References from each history: MASE scale with period m, Naive2 over the target horizon."""
        short = [i for i, h in enumerate(histories) if len(h) <= m]
        if short:
            raise UserError(f"{len(short)} series have at most {m} history points, too few for MASE with "
                            f"period {m}; drop them or disable the validation carve-out (paper_compat)")
        horizon = len(targets[0])
        scale = np.array([mase_scale(h, m) for h in histories])
        if np.any(scale == 0):
            raise UserError(f"{int(np.sum(scale == 0))} series are constant over their history (MASE scale 0); "
                            "remove them from the data")
        return cls(x=np.stack([left_pad(h, seq_len, zero_pad) for h in histories]),
                   y=np.stack(targets), scale=scale,
                   naive2=np.stack([naive2(h, m, horizon) for h in histories]),
                   n_seasonal=sum(is_seasonal(h, m) for h in histories))


class TensorSamples(WindowDataset):
    """Samples stored as aligned tensors (`self.tensors`, first axis = sample), served in whole batches."""

    tensors: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.tensors["x"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[index] for k, v in self.tensors.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {k: v[idx] for k, v in self.tensors.items()}


class SeriesEvalWindows(TensorSamples):
    """Serves an EvalSet as `[batch, seq_len, 1]` inputs with their targets and references."""

    # Time-Series-Library scores all M4 series at once: paper_compat must not drop a last batch here.
    paper_drop_last = False

    def __init__(self, data: EvalSet) -> None:
        self.tensors = {
            "x": torch.as_tensor(data.x, dtype=torch.float32).unsqueeze(-1),
            "y": torch.as_tensor(data.y, dtype=torch.float32).unsqueeze(-1),
            "scale": torch.as_tensor(data.scale, dtype=torch.float64),
            "naive2": torch.as_tensor(data.naive2, dtype=torch.float64).unsqueeze(-1),
        }


def draw_cut_points(lengths: list[int], horizon: int, sampling_history: float, draws: int,
                    seed: int) -> np.ndarray:
    """`[draws, series]` cut points, drawn once from a generator seeded with `seed`.

    Time-Series-Library draws one cut point per series per epoch, uniformly from the last
    `int(sampling_history * horizon)` positions (never before position 1). Drawing all of them
    up front keeps a run independent of loader order and worker count.
    """
    limit = int(sampling_history * horizon)
    n = np.asarray(lengths)
    low = np.maximum(1, n - limit)
    return np.random.default_rng(seed).integers(low, n, size=(draws, len(n)))


class SampledWindows(TensorSamples):
    """Training windows at given cut points: `seq_len` points before the cut in (front-padded when the
    series is shorter), the next `horizon` points out; targets past the series end are masked."""

    def __init__(self, series: list[np.ndarray], cuts: np.ndarray, seq_len: int, horizon: int,
                 zero_pad: bool = False, max_windows: int | None = None) -> None:
        draws, n_series = cuts.shape
        order = [(d, i) for d in range(draws) for i in range(n_series)]  # draw-major: a prefix covers all series
        if max_windows is not None:
            order = order[:max(1, max_windows)]
        x = np.empty((len(order), seq_len))
        y = np.zeros((len(order), horizon))
        mask = np.zeros((len(order), horizon))
        for row, (d, i) in enumerate(order):
            s, c = series[i], int(cuts[d, i])
            x[row] = left_pad(s[max(0, c - seq_len):c], seq_len, zero_pad)
            target = s[c:c + horizon]
            y[row, :len(target)] = target
            mask[row, :len(target)] = 1.0
        self.tensors = {k: torch.as_tensor(v, dtype=torch.float32).unsqueeze(-1)
                        for k, v in (("x", x), ("y", y), ("y_mask", mask))}
