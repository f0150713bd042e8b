"""End to end: every task experiment accepts model=dlinear|patchtst|timesnet, with each model's recipe."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from one4all.artifact import load_artifact
from one4all.cli import main
from one4all.config import compose_config
from tests.conftest import TINY_OVERRIDES

SHORT = ["trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=1"]


def run(tmp_path, data_root, experiment: str, model: str, *extra: str) -> dict:
    run_dir = tmp_path / f"{experiment.replace('/', '_')}_{model}"
    args = ["train", f"experiment={experiment}", f"model={model}", *TINY_OVERRIDES, *SHORT, f"data.root={data_root}",
            f"hydra.run.dir={run_dir}", *extra]
    assert main(args) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["_dir"] = run_dir
    return metrics


@pytest.mark.parametrize("model", ["timesnet", "patchtst"])
def test_classification_with_a_baseline(tmp_path, data_root, model):
    m = run(tmp_path, data_root, "classification/japanese_vowels", model)
    assert 0 <= m["test/accuracy"] <= 1 and math.isfinite(m["test/loss"])
    assert m["data"]["n_test_samples"] == 370
    # debug=tiny widths: TimesNet flattens 26 steps x 8 features, PatchTST 12 channels x 3 patches x 16
    head = {"timesnet": 26 * 8, "patchtst": 12 * 3 * 16}[model]
    assert m["efficiency"]["trainable_params"] > 9 * (head + 1)
    network, manifest = load_artifact(m["_dir"] / "model")
    assert manifest["io"]["kind"] == "classify" and manifest["io"]["n_classes"] == 9
    assert sum(p.numel() for p in network.parameters()) == m["efficiency"]["trainable_params"]


def test_classification_recipe_follows_tslib():
    cfg, _ = compose_config(["experiment=classification/japanese_vowels", "model=timesnet"])
    assert (cfg.model.top_k, cfg.data.batch_size, cfg.trainer.max_epochs) == (3, 16, 60)
    assert cfg.trainer.gradient_clip_val == 4.0
    assert cfg.task.module.optimizer.lr == 1e-3 and cfg.callbacks.early_stopping.patience == 10
    one4all, _ = compose_config(["experiment=classification/japanese_vowels"])
    assert (one4all.model.patch_len, one4all.model.stride, one4all.task.module.optimizer.lr) == (4, 1, 5e-4)
    # the recipe is keyed by task, data and model: the quickstart-free spelling gets it too
    plain, _ = compose_config(["~experiment", "task=classification", "data=japanese_vowels", "model=dlinear"])
    assert plain.trainer.max_epochs == 100 and plain.data.batch_size == 16


@pytest.mark.parametrize("model", ["dlinear", "timesnet"])
def test_imputation_with_a_baseline(tmp_path, data_root, model):
    m = run(tmp_path, data_root, "imputation/etth1_mask25", model, "data.eval_batch_size=1000")
    for key in ("test/mse", "test/mae", "test/mae_original"):
        assert math.isfinite(m[key]), key
    assert m["data"]["n_test_samples"] == 2881 and m["data"]["mask_ratio"] == 0.25
    if model == "dlinear":  # two 96 -> 96 maps
        assert m["efficiency"]["trainable_params"] == 2 * (96 * 96 + 96)
    saved = OmegaConf.load(m["_dir"] / "config.yaml")
    assert saved.task.module.scheduler._target_ == "one4all.schedules.hold_then_decay"  # TSLib's type1


@pytest.mark.parametrize("model", ["patchtst", "dlinear"])
def test_anomaly_with_a_baseline(tmp_path, data_root, model):
    m = run(tmp_path, data_root, "anomaly/smap_p1", model)
    for key in ("f1", "f1_pa", "precision", "recall", "threshold", "flagged_share"):
        assert math.isfinite(m[f"test/{key}"]), key
    assert 0 <= m["test/f1"] <= m["test/f1_pa"] <= 1
    scores = pd.read_csv(m["_dir"] / "anomaly_scores.csv")
    assert len(scores) == 8505 and scores["label"].sum() == 201 + 309 + 241
    assert scores["anomaly"].mean() == pytest.approx(m["test/flagged_share"])
    assert np.allclose(scores["threshold"], m["test/threshold"])


def test_short_term_with_a_baseline(tmp_path, data_root):
    m = run(tmp_path, data_root, "short_term/m4_hourly", "dlinear")
    assert math.isfinite(m["test/smape"]) and math.isfinite(m["test/owa"])
    assert m["efficiency"]["trainable_params"] == 2 * (96 * 48 + 48)
