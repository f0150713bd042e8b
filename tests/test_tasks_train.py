"""End to end: the imputation, anomaly and classification experiments train, test and write runs."""

from __future__ import annotations

import json
import math

import pytest

from one4all.artifact import load_artifact
from one4all.cli import main
from tests.conftest import TINY_OVERRIDES

SHORT = ["trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=2"]


def run(tmp_path, data_root, experiment: str, *extra: str) -> dict:
    run_dir = tmp_path / experiment.replace("/", "_")
    args = ["train", f"experiment={experiment}", *TINY_OVERRIDES, *SHORT, f"data.root={data_root}",
            f"hydra.run.dir={run_dir}", *extra]
    assert main(args) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["_dir"] = run_dir
    return metrics


def test_imputation_run(tmp_path, data_root):
    m = run(tmp_path, data_root, "imputation/etth1_mask25", "data.eval_batch_size=1000")
    for key in ("test/mse", "test/mae", "test/mae_original"):
        assert math.isfinite(m[key]), key
    assert m["data"]["n_test_samples"] == 2881 and m["data"]["mask_ratio"] == 0.25
    assert m["backbone"]["n_layers"] == 2  # the tiny override wins over the experiment's 3
    network, manifest = load_artifact(m["_dir"] / "model")
    assert manifest["io"]["masked"] is True and manifest["io"]["kind"] == "reconstruct"


@pytest.mark.parametrize(("experiment", "n_points", "embedding"), [
    ("anomaly/smap_p1", {"train": 2297, "val": 575, "test": 8505}, "pad"),
    # 55 channels do not fit the tiny GPT-2's width 32 by zero-padding
    ("anomaly/msl_c1", {"train": 1726, "val": 432, "test": 2264}, "linear"),
])
def test_anomaly_runs(tmp_path, data_root, experiment, n_points, embedding):
    m = run(tmp_path, data_root, experiment, "model.d_ff=8", f"model.channel_embedding={embedding}")
    for key in ("f1", "f1_pa", "precision", "recall", "precision_pa", "recall_pa", "threshold"):
        assert math.isfinite(m[f"test/{key}"]), key
    assert 0 <= m["test/f1"] <= m["test/f1_pa"] <= 1  # adjustment only adds true positives
    assert m["data"]["n_points"] == n_points


def test_classification_run(tmp_path, data_root):
    m = run(tmp_path, data_root, "classification/japanese_vowels")
    assert 0 <= m["test/accuracy"] <= 1 and math.isfinite(m["test/loss"])
    assert (m["data"]["n_train_samples"], m["data"]["n_val_samples"], m["data"]["n_test_samples"]) == (216, 54, 370)
    # r (256 + 32) wpe + r (32 N + 9) head at r=16, N = 26 - 4 + 2 = 24 (tiny GPT-2: d=32, 256 positions)
    assert m["efficiency"]["trainable_params"] == 16 * (256 + 32) + 16 * (32 * 24 + 9)
    manifest = json.loads((m["_dir"] / "model" / "model.json").read_text())
    assert manifest["data"]["class_names"] == [str(c) for c in range(1, 10)]


def test_patch_settings_for_reconstruction_are_checked(tmp_path, data_root, capsys):
    args = ["train", "experiment=anomaly/smap_p1", *TINY_OVERRIDES, "model.patch_len=16", f"data.root={data_root}",
            f"hydra.run.dir={tmp_path / 'never'}"]
    assert main(args) == 2 and not (tmp_path / "never").exists()
    assert "model.patch_len=1" in capsys.readouterr().err


def test_anomaly_paper_compat_takes_the_threshold_over_test_too(tmp_path, data_root):
    honest = run(tmp_path / "honest", data_root, "anomaly/smap_p1", "model.d_ff=8", "trainer.max_steps=1")
    compat = run(tmp_path / "compat", data_root, "anomaly/smap_p1", "model.d_ff=8", "trainer.max_steps=1",
                 "paper_compat=true")
    assert compat["data"]["n_test_samples"] == honest["data"]["n_test_samples"] == 23 + 6 + 86
    assert compat["test/score_mean"] == pytest.approx(honest["test/score_mean"])  # same network, same scores
    assert compat["test/threshold"] != honest["test/threshold"]


def test_null_group_override_is_a_one_line_error(capsys):
    assert main(["train", "experiment=null"]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line, no traceback
