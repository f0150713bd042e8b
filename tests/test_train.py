"""End to end: `one4all train` composes real configs, trains a few steps and writes the run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from one4all.artifact import load_artifact
from one4all.cli import main
from one4all.config import compose_config
from one4all.data.datamodule import TimeSeriesDataModule
from one4all.data.sources.table import CsvData
from one4all.data.windows.forecast import ForecastProtocol
from one4all.efficiency import ThroughputMonitor
from one4all.metrics import ErrorAccumulator
from one4all.train import make_trainer

SHORT = ["experiment=long_term/etth1_96", "task.seq_len=96", "task.horizon=24", "trainer.max_steps=4",
         "trainer.val_check_interval=2", "trainer.limit_val_batches=2", "data.batch_size=64",
         "data.eval_batch_size=1000"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_root):
    from tests.conftest import TINY_OVERRIDES

    run_dir = tmp_path_factory.mktemp("run") / "etth1"
    code = main(["train", *SHORT, *TINY_OVERRIDES, f"data.root={data_root}", f"hydra.run.dir={run_dir}"])
    assert code == 0
    return run_dir


def test_run_directory_layout(finished_run):
    for rel in ("config.yaml", "metrics.json", "model/model.json", "model/trainable.safetensors",
                "logs/metrics.csv", "checkpoints/last.ckpt"):
        assert (finished_run / rel).is_file(), rel


def test_metrics_json(finished_run):
    metrics = json.loads((finished_run / "metrics.json").read_text())
    for key in ("test/mse", "test/mae", "test/mae_original"):
        assert math.isfinite(metrics[key]), key
    # L=96, H=24: test rows [11424, 14400) -> 2976 - 96 - 24 + 1 = 2857 windows x 7 channels
    assert metrics["data"]["n_test_samples"] == 2857 * 7
    assert metrics["backbone"]["pretrained"] is False
    eff = metrics["efficiency"]
    assert eff["trainable_params"] == 16 * (256 + 32) + 16 * (32 * 12 + 24)
    assert eff["artifact_bytes"] < 200_000 and eff["precision"] == "32-true"
    assert metrics["run"]["global_step"] == 4 and metrics["run"]["selected_checkpoint"] == "best"


def test_artifact_reproduces_the_reported_test_metrics(finished_run, data_root):
    network, manifest = load_artifact(finished_run / "model")
    assert manifest["data"]["columns"] == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    windowing = ForecastProtocol(96, 24)
    test = windowing.datasets(windowing.load(CsvData("ETTh1/ETTh1.csv", root=str(data_root))), True)["test"]
    acc = ErrorAccumulator(7)
    with torch.no_grad():
        for lo in range(0, len(test), 1000):
            batch = test.__getitems__(list(range(lo, min(lo + 1000, len(test)))))
            acc.update(network(batch["x"]), batch["y"], batch["channel"])
    reported = json.loads((finished_run / "metrics.json").read_text())
    assert acc.compute()["mse"] == pytest.approx(reported["test/mse"], rel=1e-6)


def test_offline_pretrained_fails_cleanly_and_writes_nothing(tmp_path, data_root, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_dir = tmp_path / "never"
    code = main(["train", "experiment=long_term/etth1_96", f"data.root={data_root}",
                 "model.backbone.init=pretrained", "model.backbone.path=gpt2-not-cached", f"hydra.run.dir={run_dir}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not run_dir.exists()
    assert err.count("\n") == 0 and "model.backbone.path" in err and "init=random" in err


def test_bad_override_is_one_line_exit_2(capsys):
    assert main(["train", "data=no_such_dataset"]) == 2
    assert "no_such_dataset" in capsys.readouterr().err


def test_eval_loaders_keep_every_sample_unless_paper_compat(data_root):
    windowing = ForecastProtocol(96, 24)
    sets = windowing.datasets(windowing.load(CsvData("ETTh1/ETTh1.csv", root=str(data_root))), True)
    honest = TimeSeriesDataModule(sets, batch_size=256)
    seen = sum(len(b["x"]) for b in honest.test_dataloader())
    assert seen == len(sets["test"]) == 19999 and sum(len(b["x"]) for b in honest.val_dataloader()) == len(sets["val"])
    compat = TimeSeriesDataModule(sets, batch_size=256, paper_compat=True)
    assert sum(len(b["x"]) for b in compat.test_dataloader()) == 19999 - 19999 % 256
    assert compat.sizes()["n_test_samples"] == 19999 - 19999 % 256


def test_early_stopping_and_checkpoints_watch_validation_only(tmp_path):
    cfg, _ = compose_config(["experiment=long_term/etth1_96"])
    trainer = make_trainer(cfg, tmp_path, ThroughputMonitor(), "32-true")
    monitors = [getattr(cb, "monitor", None) for cb in trainer.callbacks]
    watched = [m for m in monitors if m]
    assert watched and all(m.startswith("val/") for m in watched)


def test_training_is_deterministic(tmp_path, data_root):
    from tests.conftest import TINY_OVERRIDES

    results = []
    for name in ("a", "b"):
        args = ["train", *SHORT, *TINY_OVERRIDES, "trainer.max_steps=2", f"data.root={data_root}",
                f"hydra.run.dir={tmp_path / name}"]
        assert main(args) == 0
        results.append(json.loads((tmp_path / name / "metrics.json").read_text())["test/mse"])
    assert results[0] == results[1]
    assert np.isfinite(results[0])
