"""Classification protocol: validation carved from TRAIN, train-only normalisation, padding, accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from one4all.data.sources.uea import UeaData
from one4all.data.splits import StandardScaler
from one4all.data.windows.classification import ClassificationProtocol, pad, stratified_split
from one4all.metrics import AccuracyAccumulator, accuracy


@pytest.fixture(scope="module")
def vowels(data_root):
    return UeaData("JapaneseVowels", root=str(data_root))


def test_stratified_split_is_seeded_and_keeps_class_shares():
    labels = np.repeat(np.arange(3), [10, 5, 2])
    fit, val = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[val]).tolist() == [2, 1, 1]  # round(0.2 n), at least one per class
    assert sorted(np.concatenate([fit, val]).tolist()) == list(range(17))
    again, _ = stratified_split(labels, 0.2, seed=0)
    other, _ = stratified_split(labels, 0.2, seed=1)
    assert np.array_equal(fit, again) and not np.array_equal(fit, other)


def test_padding_masks_and_normalises_with_given_scaler():
    scaler = StandardScaler(mean=np.array([1.0, 0.0]), std=np.array([2.0, 1.0]))
    series = [np.array([[3.0, 1.0], [np.nan, 2.0]], dtype=np.float32), np.array([[1.0, 0.0]] * 4, dtype=np.float32)]
    x, mask = pad(series, 3, scaler)
    assert x[0].tolist() == [[1.0, 1.0], [0.0, 2.0], [0.0, 0.0]]
    assert mask[0].tolist() == [[1, 1], [0, 1], [0, 0]]
    assert mask[1].sum() == 6 and x.shape == (2, 3, 2)  # the 4-step series keeps its first 3 steps


def test_japanese_vowels_protocol(vowels):
    protocol = ClassificationProtocol(val_fraction=0.2, split_seed=0)
    data = protocol.load(vowels)
    sizes = {k: len(v[2]) for k, v in data.splits.items()}
    assert sizes == {"train": 216, "val": 54, "test": 370}
    assert np.bincount(data.splits["val"][2]).tolist() == [6] * 9
    assert data.seq_len == 26 and data.meta["n_test_truncated"] == 1
    io = protocol.io_spec(data)
    assert (io.kind, io.seq_len, io.n_channels, io.n_classes, io.masked) == ("classify", 26, 12, 9, True)
    # normalised with the 216 fitting samples only: their observed values have mean 0, std 1
    x, mask, _ = data.splits["train"]
    observed = x[mask.astype(bool)].reshape(-1, 12)
    assert np.allclose(observed.mean(axis=0), 0, atol=1e-5) and np.allclose(observed.std(axis=0), 1, atol=1e-4)
    assert np.all(x[~mask.astype(bool)] == 0)
    batch = protocol.datasets(data, channel_independent=True)["test"].__getitems__([0, 1])
    assert batch["x"].shape == (2, 26, 12) and batch["mask"].shape == (2, 26, 12) and batch["y"].dtype == torch.long


def test_paper_compat_validates_on_test_and_pads_to_all_lengths(vowels):
    data = ClassificationProtocol(paper_compat=True).load(vowels)
    assert len(data.splits["train"][2]) == 270 and data.splits["val"] is data.splits["test"]
    assert data.seq_len == 29 and data.meta["n_test_truncated"] == 0


def test_accuracy_hand_computed():
    acc = AccuracyAccumulator()
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    acc.update(logits[:2], torch.tensor([0, 0]))
    acc.update(logits[2:], torch.tensor([0]))  # uneven batches: summed, then divided
    out = acc.compute()
    assert out["accuracy"] == pytest.approx(2 / 3) and out["n_samples"] == 3
    ce = [np.log1p(np.exp(-2.0)), np.log1p(np.exp(1.0)), np.log1p(np.exp(-3.0))]
    assert out["loss"] == pytest.approx(np.mean(ce))
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 0]) == 0.5
