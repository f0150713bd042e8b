"""Every experiment file composes and builds; the trainer's parts come from their config groups."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from omegaconf import OmegaConf

from one4all.checkpointing import ResumeCheckpoint
from one4all.cli import main
from one4all.compare import plan_entries
from one4all.config import compose_config
from one4all.contract import VAL_LOSS
from one4all.paths import config_dir
from one4all.train import build, make_callbacks
from one4all.validation import check_config
from tests.conftest import TINY_OVERRIDES

EXPERIMENTS = sorted(str(p.relative_to(config_dir() / "experiment").with_suffix(""))
                     for p in (config_dir() / "experiment").rglob("*.yaml"))


# Settings sized for GPT-2 small that the tiny GPT-2 (width 32) cannot hold: MSL C-1's 55 channels are
# projected instead of zero-padded, and SMAP keeps at most 32 features before its head.
TINY_FITS = {"anomaly/msl_c1": ["model.channel_embedding=linear"], "anomaly/smap_p1": ["model.d_ff=32"],
             "compare/anomaly_smap_p1": ["model.d_ff=32"]}


def _train_configs(experiment: str, data_root: Path) -> list[list[str]]:
    """The `one4all train` overrides an experiment stands for (one per model for a comparison)."""
    shared = [*TINY_OVERRIDES, f"data.root={data_root}", *TINY_FITS.get(experiment, [])]
    if not experiment.startswith("compare/"):
        return [[f"experiment={experiment}", *shared]]
    cfg, _ = compose_config([f"experiment={experiment}"], config_name="compare")
    return [entry.overrides for entry in plan_entries(cfg.compare, shared)]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_builds(experiment, suite_root):
    for overrides in _train_configs(experiment, suite_root):
        cfg, _ = compose_config(overrides)
        check_config(cfg)  # what `one4all train` validates before it builds
        run = build(cfg)
        assert len(run.datamodule.datasets["test"]) > 0
        assert any(p.requires_grad for p in run.network.parameters())


def test_debug_tiny_shrinks_each_model_family():
    gpt2 = compose_config(["debug=tiny"])[0]
    assert gpt2.model.backbone.config.n_embd == 32 and gpt2.trainer.precision == "32-true"
    timesnet = compose_config(["experiment=long_term/etth1_96_timesnet", "debug=tiny"])[0]
    assert (timesnet.model.d_model, timesnet.model.n_layers) == (8, 1)
    assert compose_config(["model=patchtst", "debug=tiny"])[0].model.d_model == 16
    # A command-line override still wins over the debug size.
    assert compose_config(["debug=tiny", "model.backbone.n_layers=1"])[0].model.backbone.n_layers == 1


def test_callbacks_group_fills_run_dir_and_validation_loss(tmp_path):
    cfg, _ = compose_config(["debug=tiny"])
    callbacks = {type(c): c for c in make_callbacks(cfg, tmp_path)}
    assert callbacks[ModelCheckpoint].monitor == VAL_LOSS == callbacks[EarlyStopping].monitor
    assert Path(callbacks[ModelCheckpoint].dirpath) == tmp_path / "checkpoints"
    assert callbacks[ResumeCheckpoint].path == tmp_path / "checkpoints" / "last.ckpt"
    assert callbacks[EarlyStopping].patience == 3
    cfg, _ = compose_config(["debug=tiny", "callbacks.early_stopping=null",
                             "callbacks.last_checkpoint.every_n_train_steps=7"])
    kinds = {type(c): c for c in make_callbacks(cfg, tmp_path)}
    assert EarlyStopping not in kinds and kinds[ResumeCheckpoint].every_n_train_steps == 7


def test_tensorboard_logger_writes_event_files(tmp_path, tiny_overrides):
    run_dir = tmp_path / "tb"
    code = main(["train", "experiment=long_term/etth1_96", "task.seq_len=96", "task.horizon=24",
                 "data.train_fraction=0.01", "trainer.max_steps=2", "trainer.limit_val_batches=1",
                 "+trainer.limit_test_batches=1", "logger=tensorboard", *tiny_overrides, f"hydra.run.dir={run_dir}"])
    assert code == 0
    events = list((run_dir / "logs").glob("events.out.tfevents*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    assert (run_dir / "metrics.json").is_file() and not (run_dir / "logs" / "metrics.csv").exists()


def test_mlflow_logger_composes_into_the_run_directory():
    cfg, _ = compose_config(["logger=mlflow"])
    assert cfg.logger._target_ == "lightning.pytorch.loggers.MLFlowLogger" and cfg.logger.tracking_uri is None


def test_a_baseline_given_an_adapter_is_refused(tmp_path, capsys):
    run_dir = tmp_path / "dl"
    code = main(["train", "experiment=long_term/etth1_96_dlinear", "adapter=gelora", f"hydra.run.dir={run_dir}"])
    assert code == 2 and not run_dir.exists()
    assert "takes no adapter" in capsys.readouterr().err
    # The GPT-2 models take it.
    assert OmegaConf.select(compose_config(["adapter=gelora"])[0], "model.adapter.alpha_ratio") == 32.0
