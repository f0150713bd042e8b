"""Classification data: UEA `.ts` TRAIN/TEST files -> padded, masked, train-normalised samples.

Protocol (hygiene first, TSLib/GPT4TS behind `paper_compat`):
- validation is a stratified, seeded share of TRAIN; the papers validate (and select the
  checkpoint) on TEST, which `paper_compat=true` reproduces;
- per-dimension standardisation fitted on the training samples' observed values only;
- series are padded with zeros (after normalisation: the training mean) to `seq_len` = the longest
  TRAIN series, and a mask marks observed entries; a longer TEST series keeps its first `seq_len`
  steps (counted in metrics.json). `paper_compat` pads to the longest series of TRAIN and TEST.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from one4all.contract import IOSpec
from one4all.data.sources.uea import UeaData
from one4all.data.splits import StandardScaler
from one4all.data.windows.base import WindowDataset, refuse_marks
from one4all.errors import UserError


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, val) indices: `round(fraction * n_c)` samples of every class c go to val (at least
    one for classes with two or more samples), chosen by a seeded permutation."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(fraction * len(members)))
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val.extend(members[:n_val].tolist())
    val_idx = np.sort(np.array(val, dtype=np.int64))
    return np.setdiff1d(np.arange(len(labels)), val_idx), val_idx


def pad(series: list[np.ndarray], seq_len: int, scaler: StandardScaler) -> tuple[np.ndarray, np.ndarray]:
    """Normalise, then zero-pad / truncate to `seq_len`: (x[n, L, C], mask[n, L, C] = observed)."""
    n, dims = len(series), series[0].shape[1]
    x = np.zeros((n, seq_len, dims), dtype=np.float32)
    mask = np.zeros((n, seq_len, dims), dtype=np.float32)
    for i, s in enumerate(series):
        s = s[:seq_len]
        observed = np.isfinite(s)
        x[i, : len(s)] = np.where(observed, scaler.transform(np.nan_to_num(s)), 0.0)
        mask[i, : len(s)] = observed
    return x, mask


class PaddedSamples(WindowDataset):
    """Padded samples of one split: `x[L, C]`, `mask[L, C]`, class index `y`."""

    paper_drop_last = False  # the papers score every test sample here (TSLib: drop_last=False)

    def __init__(self, x: np.ndarray, mask: np.ndarray, y: np.ndarray) -> None:
        self.x, self.mask, self.y = torch.from_numpy(x), torch.from_numpy(mask), torch.from_numpy(y).long()

    def __len__(self) -> int:
        return len(self.y)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {"x": self.x[idx], "mask": self.mask[idx], "y": self.y[idx]}


@dataclass
class ClassificationData:
    """Loaded problem: normalised, padded splits and what produced them."""

    name: str
    splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    class_names: list[str]
    scaler: StandardScaler
    seq_len: int
    meta: dict[str, Any]


@dataclass
class ClassificationProtocol:
    """Classification of whole series (task.protocol); see the module docstring."""

    val_fraction: float = 0.2
    split_seed: int = 0
    paper_compat: bool = False

    def load(self, data: UeaData) -> ClassificationData:
        train, test = data.load()
        classes = train.class_names
        y_train = np.array([classes.index(label) for label in train.labels])
        y_test = np.array([classes.index(label) for label in test.labels])
        if self.paper_compat:
            fit_idx, val_idx = np.arange(len(y_train)), None
        elif not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"task.protocol.val_fraction={self.val_fraction} must be in (0, 1)")
        else:
            fit_idx, val_idx = stratified_split(y_train, self.val_fraction, self.split_seed)
        fit_series = [train.series[i] for i in fit_idx]
        rows = np.concatenate(fit_series)
        std = np.nanstd(rows, axis=0)
        scaler = StandardScaler(mean=np.nanmean(rows, axis=0), std=np.where(std > 0, std, 1.0))
        seq_len = int(max(train.lengths.max(), test.lengths.max() if self.paper_compat else 0))
        splits = {"train": (*pad(fit_series, seq_len, scaler), y_train[fit_idx]),
                  "test": (*pad(test.series, seq_len, scaler), y_test)}
        splits["val"] = splits["test"] if val_idx is None else (
            *pad([train.series[i] for i in val_idx], seq_len, scaler), y_train[val_idx])
        meta = {"validation": "TEST (paper_compat)" if val_idx is None else f"{self.val_fraction:.0%} of TRAIN, "
                f"stratified, seed {self.split_seed}", "n_test_truncated": int((test.lengths > seq_len).sum()),
                "train_file": str(data.train_path), "test_file": str(data.test_path)}
        return ClassificationData(data.name, splits, classes, scaler, seq_len, meta)

    def io_spec(self, data: ClassificationData) -> IOSpec:
        n_dims = data.splits["train"][0].shape[2]
        return IOSpec(seq_len=data.seq_len, n_channels=n_dims, kind="classify",
                      n_classes=len(data.class_names), masked=True)

    def datasets(self, data: ClassificationData, channel_independent: bool, train_fraction: float = 1.0,
                 time_features: str = "none") -> dict[str, PaddedSamples]:
        """Samples hold every dimension, whatever `channel_independent` says: a class belongs to
        the whole multivariate series. `train_fraction` keeps a seeded share of training samples."""
        refuse_marks(time_features, "classification data")
        out = {split: PaddedSamples(*arrays) for split, arrays in data.splits.items()}
        if train_fraction < 1.0:
            x, mask, y = data.splits["train"]
            order = np.random.default_rng(self.split_seed).permutation(len(y))
            keep = np.sort(order[: max(1, int(len(y) * train_fraction))])
            out["train"] = PaddedSamples(x[keep], mask[keep], y[keep])
        return out

    def task_inputs(self, data: ClassificationData) -> dict[str, Any]:
        return {}

    def describe(self, data: ClassificationData) -> dict[str, Any]:
        """The `data` block of metrics.json."""
        return {"name": data.name, "n_dims": data.splits["train"][0].shape[2], "n_classes": len(data.class_names),
                "seq_len": data.seq_len, **data.meta}

    def artifact_meta(self, data: ClassificationData) -> dict[str, Any]:
        """What inference needs: class names, padded length and the fitted normaliser."""
        return {"class_names": data.class_names, "seq_len": data.seq_len, "scaler": data.scaler.to_dict()}
