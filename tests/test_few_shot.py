"""Few-shot: the first p% of training windows; val, test and the scaler exactly as in full training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from one4all.cli import main
from one4all.config import compose_config
from one4all.data.sources.table import CsvData
from one4all.data.windows.forecast import ForecastProtocol


@pytest.fixture(scope="module")
def etth1(data_root):
    windowing = ForecastProtocol(336, 96)
    return windowing, windowing.load(CsvData("ETTh1/ETTh1.csv", root=str(data_root)))


@pytest.mark.parametrize("fraction,windows", [(0.10, 820), (0.05, 410)])
def test_first_fraction_of_training_windows(etth1, fraction, windows):
    windowing, data = etth1
    full = windowing.datasets(data, True)
    few = windowing.datasets(data, True, fraction)
    # 8640 - 336 - 96 + 1 = 8209 windows per channel; int(8209 * p) of them, x 7 channels
    assert len(full["train"]) == 8209 * 7 == 57463
    assert len(few["train"]) == windows * 7
    assert abs(len(few["train"]) - fraction * len(full["train"])) <= 7  # within one window per channel
    # channel-major: few sample (c, s) is the full run's sample (c, s), for the first `windows` starts
    a = few["train"].__getitems__([windows * 3 + 5, windows * 7 - 1])
    b = full["train"].__getitems__([8209 * 3 + 5, 8209 * 6 + windows - 1])
    for key in ("x", "y", "channel"):
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    for split in ("val", "test"):
        assert len(few[split]) == len(full[split])
        np.testing.assert_array_equal(few[split].values.numpy(), full[split].values.numpy())


def test_scaler_is_fitted_on_the_full_training_split(etth1, data_root):
    _, data = etth1
    raw = CsvData("ETTh1/ETTh1.csv", root=str(data_root)).read().values[:8640].astype(np.float64)
    np.testing.assert_allclose(data.scaler.mean, raw.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(data.scaler.std, raw.std(axis=0), rtol=1e-6)


def test_few_shot_experiments_compose():
    for name, fraction in (("etth1_96_p05", 0.05), ("etth1_96_p10", 0.10)):
        cfg, _ = compose_config([f"experiment=few_shot/{name}"])
        assert cfg.data.train_fraction == fraction and cfg.task.module.optimizer.lr == 1e-3
        assert (cfg.task.seq_len, cfg.task.horizon, cfg.data.name, cfg.data.batch_size) == (336, 96, "ETTh1", 256)


def test_few_shot_run_records_its_sample_count(tmp_path, tiny_overrides):
    run_dir = tmp_path / "p10"
    code = main(["train", "experiment=few_shot/etth1_96_p10", *tiny_overrides, "trainer.max_steps=1",
                 "data.eval_batch_size=4096", "+trainer.limit_test_batches=1", f"hydra.run.dir={run_dir}"])
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["data"]["n_train_samples"] == 5740 and metrics["data"]["train_fraction"] == 0.1
    assert metrics["data"]["n_val_samples"] == (2880 + 336 - 336 - 96 + 1) * 7
    assert np.isfinite(metrics["test/mse"])
