"""Imputation: masked loss/metrics by hand, reproducible evaluation masks, mask-aware norm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from one4all.data.sources.table import CsvData
from one4all.data.windows.imputation import ImputationProtocol, MaskedWindows
from one4all.errors import UserError
from one4all.metrics import ErrorAccumulator
from one4all.models.encoder import ObservedNorm
from one4all.tasks.imputation import masked_mse_loss


def test_masked_loss_and_metrics_use_hidden_entries_only():
    pred = torch.tensor([[[1.0, 5.0], [2.0, 0.0]]])
    true = torch.zeros(1, 2, 2)
    mask = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])  # channel 0 hidden, channel 1 observed
    assert masked_mse_loss(pred, true, mask).item() == pytest.approx((1 + 4) / 2)
    acc = ErrorAccumulator(2)
    acc.update(pred, true, torch.arange(2), weight=1 - mask)
    out = acc.compute(scale=np.array([10.0, 1.0]))
    assert (out["mse"], out["mae"], out["n_points"]) == pytest.approx((2.5, 1.5, 2))
    assert out["mae_original"] == pytest.approx((10 + 20) / 2)


def test_evaluation_masks_are_fixed_per_window_and_train_masks_are_not():
    values = np.arange(200, dtype=np.float32).reshape(100, 2)
    fixed = MaskedWindows(values, 10, 0.25, seed=(0, 2))
    a = fixed.__getitems__([3, 7])
    b = fixed.__getitems__([7, 40, 3])  # other batch composition, same windows -> same masks
    assert torch.equal(a["mask"][1], b["mask"][0]) and torch.equal(a["mask"][0], b["mask"][2])
    assert torch.equal(a["y"][0], torch.from_numpy(values[3:13]))
    assert torch.equal(a["x"], a["y"] * a["mask"])
    other_split = MaskedWindows(values, 10, 0.25, seed=(0, 1)).__getitems__([3])
    assert not torch.equal(other_split["mask"][0], a["mask"][0])
    fresh = MaskedWindows(values, 10, 0.25, seed=None)
    assert not torch.equal(fresh.__getitems__([3])["mask"], fresh.__getitems__([3])["mask"])
    share = 1 - MaskedWindows(values, 10, 0.25, seed=(1, 2)).__getitems__(list(range(91)))["mask"].mean()
    assert share.item() == pytest.approx(0.25, abs=0.02)


def test_etth1_protocol(data_root):
    protocol = ImputationProtocol(seq_len=96, mask_ratio=0.125)
    data = protocol.load(CsvData("ETTh1/ETTh1.csv", root=str(data_root)))
    sets = protocol.datasets(data, channel_independent=True)
    # ETT borders with L=96: 8640 - 96 + 1 train windows; val/test 2976 rows -> 2881 windows
    assert {k: len(v) for k, v in sets.items()} == {"train": 8545, "val": 2881, "test": 2881}
    io = protocol.io_spec(data)
    assert (io.kind, io.masked, io.seq_len, io.n_channels) == ("reconstruct", True, 96, 7)
    with pytest.raises(UserError, match="mask_ratio"):
        ImputationProtocol(seq_len=96, mask_ratio=1.0)


def test_observed_norm_ignores_hidden_entries():
    x = torch.tensor([[[1.0], [0.0], [3.0], [5.0]]])
    mask = torch.tensor([[[1.0], [0.0], [1.0], [1.0]]])
    z, mean, std = ObservedNorm().normalise(x, mask)
    assert mean.item() == pytest.approx(3.0)  # (1 + 3 + 5) / 3, the hidden 0 is not counted
    assert std.item() == pytest.approx(np.sqrt(8 / 3 + 1e-5))
    assert z[0, 1, 0].item() == 0.0
