"""Anomaly detection: readers, windows, point adjustment, and a threshold that never reads test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from one4all.data.datamodule import TimeSeriesDataModule
from one4all.data.formats.anomaly import read_npy_triplet, read_psm, read_smd, read_swat, read_telemanom
from one4all.data.sources.anomaly import TelemanomData
from one4all.data.windows.anomaly import AnomalyProtocol, Windows, window_starts
from one4all.errors import UserError
from one4all.metrics import PointScores, anomaly_threshold, detection_metrics, point_adjust, precision_recall_f1
from one4all.tasks.anomaly import evaluate_scores


def test_smap_p1_and_msl_c1_labels_are_end_inclusive(data_root):
    p1 = read_telemanom(data_root / "SMAP_MSL", "P-1")
    assert p1.train.shape == (2872, 25) and p1.test.shape == (8505, 25)
    # [[2149, 2349], [4536, 4844], [3539, 3779]], both ends included
    assert p1.labels.sum() == 201 + 309 + 241
    assert p1.labels[2148] == 0 and p1.labels[2149] == 1 and p1.labels[2349] == 1 and p1.labels[2350] == 0
    c1 = read_telemanom(data_root / "SMAP_MSL", "C-1")
    assert c1.train.shape == (2158, 55) and c1.test.shape == (2264, 55)
    assert c1.labels.sum() == 201 + 111 and c1.name == "MSL C-1"


def test_duplicated_channel_takes_the_union_and_bad_ranges_fail(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    np.save(tmp_path / "train" / "P-2.npy", np.zeros((5, 2)))
    np.save(tmp_path / "test" / "P-2.npy", np.zeros((10, 2)))
    header = "chan_id,spacecraft,anomaly_sequences,class,num_values\n"
    (tmp_path / "labels.csv").write_text(header + 'P-2,SMAP,"[[2, 4]]",[point],10\nP-2,SMAP,"[[3, 6]]",[point],10\n')
    assert read_telemanom(tmp_path, "P-2", "labels.csv").labels.tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    (tmp_path / "labels.csv").write_text(header + 'P-2,SMAP,"[[8, 10]]",[point],10\n')
    with pytest.raises(UserError, match="outside"):
        read_telemanom(tmp_path, "P-2", "labels.csv")
    with pytest.raises(UserError, match="not in"):
        read_telemanom(tmp_path, "X-9", "labels.csv")


def test_object_npy_files_are_refused(tmp_path):
    np.save(tmp_path / "A_train.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="object arrays"):
        read_npy_triplet(tmp_path, "A")


def test_tslib_npy_triplet(tmp_path):
    np.save(tmp_path / "SMD_train.npy", np.arange(12.0).reshape(6, 2))
    np.save(tmp_path / "SMD_test.npy", np.arange(8.0).reshape(4, 2))
    np.save(tmp_path / "SMD_test_label.npy", np.array([0, 1, 1, 0]))
    series = read_npy_triplet(tmp_path, "SMD")
    assert series.train.shape == (6, 2) and series.labels.tolist() == [0, 1, 1, 0]


def test_smd_omnianomaly_layout(tmp_path):
    for sub, text in (("train", "1,2,3\n4,5,6\n"), ("test", "1,2,3\n7,8,9\n0,0,0\n"), ("test_label", "0\n1\n0\n")):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "machine-1-1.txt").write_text(text)
    series = read_smd(tmp_path, "machine-1-1")
    assert series.train.tolist() == [[1, 2, 3], [4, 5, 6]] and series.labels.tolist() == [0, 1, 0]
    with pytest.raises(UserError, match="not found"):
        read_smd(tmp_path, "machine-9-9")


def test_psm_layout_drops_timestamps_and_fills_gaps(tmp_path):
    (tmp_path / "train.csv").write_text("timestamp_(min),feature_0,feature_1\n0,1.0,2.0\n1,,4.0\n2,3.0,6.0\n")
    (tmp_path / "test.csv").write_text("timestamp_(min),feature_0,feature_1\n3,1.0,1.0\n4,2.0,2.0\n")
    (tmp_path / "test_label.csv").write_text("timestamp_(min),label\n3,0\n4,1\n")
    series = read_psm(tmp_path)
    assert series.columns == ["feature_0", "feature_1"]
    assert series.train[:, 0].tolist() == [1.0, 2.0, 3.0]  # the gap is interpolated
    assert series.labels.tolist() == [0, 1]


def test_swat_layout_reads_text_labels(tmp_path):
    head = " Timestamp,FIT101,LIT101,Normal/Attack\n"
    (tmp_path / "normal.csv").write_text(head + " 22/12/2015 4:00:00 PM,1.0,2.0,Normal\n"
                                         " 22/12/2015 4:00:01 PM,1.5,2.5,Normal\n")
    (tmp_path / "attack.csv").write_text(head + " 28/12/2015 10:00:00 AM,1.0,2.0,Normal\n"
                                         " 28/12/2015 10:00:01 AM,9.0,2.0,Attack\n"
                                         " 28/12/2015 10:00:02 AM,9.0,2.0,A ttack\n")
    series = read_swat(tmp_path, "normal.csv", "attack.csv")
    assert series.columns == ["FIT101", "LIT101"] and series.labels.tolist() == [0, 1, 1]
    with pytest.raises(UserError, match="label column"):
        read_swat(tmp_path, "normal.csv", "attack.csv", label_col="label")


def test_window_starts_cover_the_tail():
    assert window_starts(250, 100, 100).tolist() == [0, 100, 150]
    assert window_starts(200, 100, 100).tolist() == [0, 100]
    assert window_starts(103, 100, 1).tolist() == [0, 1, 2, 3]
    with pytest.raises(UserError):
        window_starts(99, 100, 100)


def test_point_scores_average_overlapping_windows():
    scores = PointScores({"test": 5})
    scores.update("test", torch.tensor([0, 2]), torch.tensor([[1.0, 2.0, 3.0], [5.0, 6.0, 7.0]]))
    assert scores.compute()["test"].tolist() == [1.0, 2.0, 4.0, 6.0, 7.0]
    scores.reset()
    scores.update("test", torch.tensor([0]), torch.ones(1, 3))
    with pytest.raises(RuntimeError, match="never scored"):
        scores.compute()


def test_point_adjustment_and_scores_by_hand():
    labels = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0])
    pred = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    # the first segment has a hit -> all three points count; the second has none; the FP at 5 stays
    assert point_adjust(pred, labels).astype(int).tolist() == [0, 1, 1, 1, 0, 1, 0, 0, 0, 0]
    assert precision_recall_f1(pred, labels) == pytest.approx((1 / 2, 1 / 5, 2 * 0.5 * 0.2 / 0.7))
    out = detection_metrics(pred.astype(float), labels, threshold=0.5)
    assert (out["precision_pa"], out["recall_pa"]) == pytest.approx((3 / 4, 3 / 5))
    assert out["f1_pa"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert precision_recall_f1(np.zeros(3), np.array([0, 1, 0])) == (0.0, 0.0, 0.0)


def test_threshold_is_the_percentile_of_reference_scores():
    assert anomaly_threshold(np.arange(101.0), 1.0) == pytest.approx(99.0)
    assert anomaly_threshold(np.arange(11.0), 5.0) == pytest.approx(9.5)  # linear interpolation


def test_threshold_never_reads_test_scores():
    rng = np.random.default_rng(0)
    scores = {"train": rng.random(400), "val": rng.random(100), "test": rng.random(300)}
    labels = (np.arange(300) % 50 < 5).astype(np.int8)
    honest = evaluate_scores(scores, labels, anomaly_ratio=1.0)
    poisoned = {**scores, "test": np.full(300, 1e9)}
    assert evaluate_scores(poisoned, labels, anomaly_ratio=1.0)["threshold"] == honest["threshold"]
    assert honest["threshold"] == anomaly_threshold(np.concatenate([scores["train"], scores["val"]]), 1.0)
    # paper_compat (TSLib) takes train + val + test: the poisoned test moves its threshold
    assert evaluate_scores(poisoned, labels, 1.0, paper_compat=True)["threshold"] != honest["threshold"]


def test_protocol_scaler_and_windows_use_train_rows_only(data_root):
    protocol = AnomalyProtocol(seq_len=100, val_fraction=0.2)
    data = protocol.load(TelemanomData("P-1", root=str(data_root)))
    raw = data.series.train
    assert np.allclose(data.scaler.mean, raw[:2297].mean(axis=0))  # int(2872 * 0.8) fitting rows
    assert {k: len(v) for k, v in data.scaled.items()} == {"train": 2297, "val": 575, "test": 8505}
    sets = protocol.datasets(data, channel_independent=False)
    assert (len(sets["train"]), len(sets["val"])) == (2297 - 99, 575 - 99)
    # scoring: 23 + 6 + 86 disjoint windows (each split's tail gets one window flush with its end)
    assert len(sets["test"]) == 23 + 6 + 86
    last = sets["test"].__getitems__([len(sets["test"]) - 1])
    assert last["split"].item() == 2 and last["start"].item() == 8505 - 100
    assert torch.equal(last["x"][0], torch.from_numpy(data.scaled["test"][-100:]))


def test_windows_tag_split_and_start():
    ds = Windows({"a": np.zeros((5, 1)), "b": np.ones((4, 1))}, seq_len=3, stride=3)
    batch = ds.__getitems__(list(range(len(ds))))
    assert batch["split"].tolist() == [0, 0, 1, 1] and batch["start"].tolist() == [0, 2, 0, 1]
    assert batch["x"][2].sum() == 3


def test_paper_compat_never_drops_scoring_windows():
    sets = {"train": Windows({"train": np.zeros((300, 2))}, 100, 1),
            "val": Windows({"val": np.zeros((100, 2))}, 100, 1),
            "test": Windows({"a": np.zeros((1000, 2)), "b": np.zeros((250, 2))}, 100, 100)}
    module = TimeSeriesDataModule(sets, batch_size=4, paper_compat=True)
    assert sum(len(b["x"]) for b in module.test_dataloader()) == len(sets["test"]) == 13
    assert module.sizes()["n_test_samples"] == 13
