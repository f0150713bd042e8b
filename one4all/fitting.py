"""Fit modes of a forecasting run, and its interval calibration, around the one training loop.

- One fit (`refit=false`): `train.run` on the data spec's split. For a user's data (`data=csv`,
  `data=frame`, `data=long`) that split is `holdout`: only the last `val_size` steps are held out
  (early stopping, calibration), plus `test_size` steps if a test is wanted.
- Refit (`refit=true`): the same run in `<run dir>/selection` picks the training length (the step
  of the best validation loss); then a fresh model trains that many steps on every row
  (`data.split=all`, no validation) into the run directory itself. Its intervals keep the
  selection model's calibration: after the refit no row is held out.

metrics.json states which rows trained: `data.n_train_rows` (and `data.rows` or
`data.trained_on`), and for a refit a `fit` block with the selection run's numbers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict

from one4all.conformal import Calibration, validation_scores
from one4all.data.windows.forecast import ForecastProtocol
from one4all.efficiency import resolve_precision
from one4all.errors import UserError
from one4all.train import AfterTraining, Run, run

log = logging.getLogger(__name__)


def is_forecasting(cfg: DictConfig) -> bool:
    """Whether the run forecasts windows of a table or of long-format series (not M4, zero-shot, ...)."""
    try:
        protocol = get_class(str(cfg.task.protocol._target_))
    except (ImportError, ValueError, AttributeError):
        return False  # train.build reports a bad protocol with its own message
    return issubclass(protocol, ForecastProtocol)


def calibration_hook(max_windows: int, precision: str) -> AfterTraining:
    """After training: the selected model's errors on the validation windows -> interval calibration."""

    def calibrate(built: Run) -> tuple[dict[str, Any], dict[str, Any]]:
        val = built.datamodule.datasets.get("val")
        if val is None or len(val) == 0:
            return {}, {}
        task = built.task.eval()  # dropout off, as at inference
        device = next(task.parameters()).device

        def predict(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return task.predict_batch({k: v.to(device) for k, v in batch.items()}).cpu()

        calibration = Calibration.from_scores(validation_scores(predict, val, max_windows, precision, device))
        return {"intervals": calibration.to_dict()}, {"intervals": calibration.summary()}

    return calibrate


def selected_steps(selection_dir: Path, metrics: dict[str, Any]) -> int:
    """Optimizer steps of the selected checkpoint of a finished run (best validation loss, else the last)."""
    best = selection_dir / "checkpoints" / "best.ckpt"
    if metrics["run"]["selected_checkpoint"] == "best" and best.is_file():
        return max(1, int(torch.load(best, map_location="cpu", weights_only=True)["global_step"]))
    return max(1, int(metrics["run"]["global_step"]))


def refit_config(cfg: DictConfig, steps: int) -> DictConfig:
    """The selection run's config, trained `steps` steps on every row without validation."""
    refit = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(refit):
        refit.refit = False  # this stage is one plain fit; metrics.json's `fit` block says it is a refit
        refit.data.split = "all"
        refit.data.test_size = 0
        refit.trainer.max_steps = steps
        refit.trainer.max_epochs = -1
        refit.trainer.limit_val_batches = 0
        refit.trainer.num_sanity_val_steps = 0
        if refit.get("callbacks") is not None:
            refit.callbacks.early_stopping = None  # nothing to stop on: no validation
    return refit


def fit(cfg: DictConfig, run_dir: Path, data_inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train per the config's fit mode; forecasting runs also calibrate their prediction intervals."""
    forecasting = is_forecasting(cfg)
    max_windows = int(cfg.get("conformal", {}).get("max_windows", 0))
    hook = calibration_hook(max_windows, resolve_precision(cfg.trainer.precision)) if (
        forecasting and max_windows > 0) else None
    if not cfg.get("refit", False):
        return run(cfg, run_dir, data_inputs, after_training=hook)
    if not forecasting:
        raise UserError("refit=true retrains forecasting runs only (task=long_term with data=csv, frame or long); "
                        "drop refit=true")
    if cfg.data.get("split") == "all":
        raise UserError("refit=true selects the training length on a validation split, but data.split=all holds "
                        "none out; use data.split=holdout")
    if cfg.get("ckpt_path"):
        raise UserError("refit=true cannot resume from ckpt_path; start the refit again without ckpt_path")
    selection_dir = run_dir / "selection"
    kept: dict[str, tuple[dict, dict]] = {}

    def select(built: Run) -> tuple[dict[str, Any], dict[str, Any]]:
        kept["calibration"] = hook(built) if hook is not None else ({}, {})
        return kept["calibration"]

    selection = run(cfg, selection_dir, data_inputs, after_training=select)
    steps = selected_steps(selection_dir, selection)
    log.info("refit: training again on every row for %d steps (the selection run's best step)", steps)
    summary = {"refit": True, "selected_steps": steps, "selection_run": "selection",
               "selection": {"n_train_rows": selection["data"]["n_train_rows"],
                             **{k: v for k, v in selection.items() if k.startswith(("val/", "test/"))}}}

    def refitted(built: Run) -> tuple[dict[str, Any], dict[str, Any]]:
        artifact, metrics = kept["calibration"]
        return artifact, {**metrics, "fit": summary}

    return run(refit_config(cfg, steps), run_dir, data_inputs, after_training=refitted)
