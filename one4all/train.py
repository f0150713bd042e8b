"""Compose a run from its config: data, network, task, trainer; fit; test; write the run directory."""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from one4all import notices
from one4all.artifact import save_artifact
from one4all.atomic import atomic_write_text, probe_writable
from one4all.checkpointing import AtomicCheckpointIO, resolve_ckpt_path
from one4all.config import build_object
from one4all.contract import VAL_LOSS, IOSpec, Network, RunHooks
from one4all.data.datamodule import TimeSeriesDataModule
from one4all.efficiency import (
    ThroughputMonitor,
    count_parameters,
    directory_bytes,
    peak_rss_mb,
    resolve_precision,
)
from one4all.errors import UserError, write_error
from one4all.schema import first_line
from one4all.validation import check_config

log = logging.getLogger(__name__)


def network_config(cfg: DictConfig, network: Network) -> dict[str, Any]:
    """The model config as it must be replayed to rebuild this exact network."""
    config = OmegaConf.to_container(cfg.model, resolve=True)
    for key, updates in network.replay_config().items():
        if isinstance(config.get(key), dict):
            config[key].update(updates)
    return config


@dataclass
class Run:
    """The objects of one run, built (and validated) before anything touches the disk."""

    data: Any
    protocol: Any
    loaded: Any
    io: IOSpec
    network: Network
    datamodule: TimeSeriesDataModule
    task: L.LightningModule


def build(cfg: DictConfig, data_inputs: dict[str, Any] | None = None) -> Run:
    """Everything that can fail on bad input: data, network, datasets, task module.

    `data_inputs` are constructor arguments of the data spec that a config cannot hold (the
    DataFrame of the Python API).
    """
    data = build_object(cfg.data, **(data_inputs or {}))
    protocol = build_object(cfg.task.protocol)
    loaded = protocol.load(data)
    io = protocol.io_spec(loaded)
    network = build_object(cfg.model, io=io)
    datasets = protocol.datasets(loaded, network.channel_independent, data.train_fraction, network.time_features)
    network.calibrate(datasets["train"])
    datamodule = TimeSeriesDataModule(datasets, data.batch_size, data.eval_batch_size, data.num_workers,
                                      paper_compat=cfg.paper_compat, seed=cfg.seed)
    task = build_object(cfg.task.module, network=network, **protocol.task_inputs(loaded))
    return Run(data, protocol, loaded, io, network, datamodule, task)


def make_callbacks(cfg: DictConfig, run_dir: Path) -> list[L.Callback]:
    """The `callbacks` group, in order; a null `dirpath` is the run's checkpoints folder and a null
    `monitor` the task's validation loss (`contract.VAL_LOSS`)."""
    defaults = {"dirpath": str(run_dir / "checkpoints"), "monitor": VAL_LOSS}
    callbacks = []
    for node in (cfg.get("callbacks") or {}).values():
        if node is None:  # `callbacks.<name>=null` removes a default callback
            continue
        filled = {key: value for key, value in defaults.items() if key in node and node[key] is None}
        callbacks.append(build_object(node, **filled))
    return callbacks


def make_logger(cfg: DictConfig, run_dir: Path) -> Logger:
    """The `logger` group; a null `save_dir` (or MLflow `tracking_uri`) keeps the logs in the run directory."""
    node = cfg.logger
    filled = {}
    if node.get("save_dir", "") is None:
        filled["save_dir"] = str(run_dir)
    if node.get("tracking_uri", "") is None:
        filled["tracking_uri"] = (run_dir / "mlruns").as_uri()
    try:
        return build_object(node, **filled)
    except (ImportError, ModuleNotFoundError) as err:
        raise UserError(f"logger {node._target_.rsplit('.', 1)[-1]} needs a package that is not installed "
                        f"({err}); install the extra, e.g. pip install \"one4all[tensorboard]\" or "
                        "\"one4all[mlflow]\", or use logger=csv") from None


def make_trainer(cfg: DictConfig, run_dir: Path, monitor: ThroughputMonitor, precision: str) -> L.Trainer:
    """The Lightning trainer of a run: callbacks and logger from their config groups, under `run_dir`."""
    callbacks = [*make_callbacks(cfg, run_dir), monitor]
    # Val/test metrics are already all-reduced by ErrorAccumulator; Lightning cannot know that.
    warnings.filterwarnings("ignore", message=r".*self\.log\('(val|test)/.*sync_dist=True", category=UserWarning)
    # The data module splits data across ranks itself (disjoint training order that can resume
    # mid-epoch, unpadded evaluation shards), so Lightning must not inject DistributedSampler.
    return build_object(cfg.trainer, callbacks=callbacks, precision=precision, default_root_dir=str(run_dir),
                        logger=make_logger(cfg, run_dir), use_distributed_sampler=False,
                        plugins=[AtomicCheckpointIO()])


def check_resumable(cfg: DictConfig, run_dir: Path) -> None:
    """A resumed run must train the same thing: data, task, model and seed as in its config.yaml.

    Where the data lives (`data.root`) and how it is loaded (`data.num_workers`) may change.
    """
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        return
    try:
        # Compared as written (never resolved): the file is data, whoever wrote it.
        saved = OmegaConf.to_container(OmegaConf.load(saved_path), resolve=False)
    except (OmegaConfBaseException, yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{saved_path} is not a readable config ({first_line(err)}); resume a run directory "
                        "written by `one4all train`") from None
    if not isinstance(saved, dict):
        raise UserError(f"{saved_path} is not a one4all run config; resume a run directory written by "
                        "`one4all train`")
    current = OmegaConf.to_container(cfg, resolve=True)
    for config in (saved, current):
        for key in ("root", "num_workers"):
            config.get("data", {}).pop(key, None)
    for key in ("data", "task", "model", "seed"):
        if saved.get(key) != current.get(key):
            raise UserError(f"resuming {run_dir} with a different `{key}` than its config.yaml; resume with the "
                            "same overrides (only trainer.*, data.root, data.num_workers and ckpt_path may change)")


def keep_previous_log(log_dir: Path) -> None:
    """Move `metrics.csv` of the interrupted run aside (`metrics.0.csv`, `metrics.1.csv`, ...).

    Lightning's CSV logger deletes an existing `metrics.csv` when it starts, which would lose the
    history of a resumed run.
    """
    current = log_dir / "metrics.csv"
    if not current.is_file():
        return
    index = 0
    while (log_dir / f"metrics.{index}.csv").exists():
        index += 1
    current.rename(log_dir / f"metrics.{index}.csv")


AfterTraining = Callable[[Run], tuple[dict[str, Any], dict[str, Any]]]


def run(cfg: DictConfig, run_dir: Path, data_inputs: dict[str, Any] | None = None,
        after_training: AfterTraining | None = None) -> dict[str, Any]:
    """Train, test and write `run_dir` (config, metrics.json, model artifact, logs).

    Every DDP process runs this; only global rank 0 writes files (Lightning writes checkpoints
    and logs from rank 0 too), and every rank returns the same metrics. `after_training(built)`
    (rank 0, selected weights loaded) returns entries for the artifact manifest and for
    metrics.json, e.g. the interval calibration of `one4all.fitting`.
    """
    started = time.perf_counter()
    check_config(cfg)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, run_dir)
    probe_writable(run_dir, "the run directory (hydra.run.dir)")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    built = build(cfg, data_inputs)
    if ckpt_path is not None:
        check_resumable(cfg, run_dir)
    precision = resolve_precision(cfg.trainer.precision)
    monitor = ThroughputMonitor()
    trainer = make_trainer(cfg, run_dir, monitor, precision)
    hooks = [callback for callback in trainer.callbacks if isinstance(callback, RunHooks)]
    for callback in hooks:  # a callback that cannot serve this run refuses it before any file exists
        callback.check_run(trainer, built.network)
    notices.release()  # the run is accepted: what building it noticed is worth reading now
    try:
        return _fit_test_save(cfg, run_dir, built, trainer, ckpt_path, hooks, monitor, precision, started,
                              after_training)
    except OSError as err:  # a full or read-only disk while the run writes its files
        raise write_error(err, f"the run's files in {run_dir}", "every file written so far is complete (atomic "
                          f"writes): fix that and resume with ckpt_path=last hydra.run.dir={run_dir}") from err


def _fit_test_save(cfg: DictConfig, run_dir: Path, built: Run, trainer: L.Trainer, ckpt_path: str | None,
                   hooks: list[RunHooks], monitor: ThroughputMonitor, precision: str, started: float,
                   after_training: AfterTraining | None = None) -> dict[str, Any]:
    """Fit, test and write the run directory: `run`'s second half, once everything is built and checked."""
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        if ckpt_path is not None:
            keep_previous_log(run_dir / "logs")
    trainer.fit(built.task, datamodule=built.datamodule, ckpt_path=ckpt_path, weights_only=True)
    best = trainer.checkpoint_callback.best_model_path
    # No validation ran (e.g. max_steps below one validation interval): test the final weights.
    # Without a test split (a user's data held out for early stopping only) the best weights are loaded.
    if "test" in built.datamodule.datasets:
        results = trainer.test(built.task, datamodule=built.datamodule, ckpt_path=best or None,
                               weights_only=True)[0]
    else:
        results = {}
        if best:
            built.task.load_state_dict(torch.load(best, weights_only=True)["state_dict"], strict=False)

    metrics = {k: float(v) for k, v in results.items()}
    if best:
        metrics["val/best_loss"] = float(trainer.checkpoint_callback.best_model_score)
    if not trainer.is_global_zero:
        return metrics
    network = built.network
    artifact_extra, metrics_extra = after_training(built) if after_training is not None else ({}, {})
    # The device type lets inference run where training did (when it is there) under the same precision.
    extra = {"precision": precision, "device": trainer.strategy.root_device.type,
             "data": built.protocol.artifact_meta(built.loaded), **artifact_extra}
    artifact = save_artifact(run_dir / "model", network, network_config(cfg, network), built.io, extra=extra)
    metrics.update({
        "data": {**built.protocol.describe(built.loaded), **built.datamodule.sizes(),
                 "train_fraction": built.data.train_fraction},
        **network.run_report(),
        "efficiency": {**count_parameters(network), "artifact_bytes": directory_bytes(artifact),
                       "peak_rss_mb": round(peak_rss_mb(), 1), **monitor.summary(), "precision": precision,
                       "paper_precision": cfg.paper_precision},
        "run": {"seed": cfg.seed, "wall_time_s": round(time.perf_counter() - started, 1),
                "global_step": trainer.global_step, "epochs": trainer.current_epoch,
                "selected_checkpoint": "best" if best else "last", "world_size": trainer.world_size,
                "resumed_from": ckpt_path, "torch": torch.__version__},
    })
    for callback in hooks:  # callbacks with something to say about the run
        metrics.update(callback.report())
    metrics.update(metrics_extra)
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2, default=str))
    return metrics
