"""Multirun on Hydra's own machinery: a sweeper expands the overrides into jobs, a launcher runs them.

`one4all train -m data=etth1,ettm1 task.horizon=96,192 seed=1,2` composes the `train` config in
multirun mode, checks every job's config before anything touches the disk (a typo stops the sweep,
not its fifth job), then hands the jobs to the configured sweeper and launcher (`hydra/launcher=basic`
by default; `joblib` and `submitit_slurm` with the optional extras), which call `train_job` once per
job. `one4all compare` hands its own list of jobs to the same launchers.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import initialize_config_dir
from hydra._internal.callbacks import Callbacks
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from one4all.atomic import atomic_write_text
from one4all.errors import UserError
from one4all.paths import config_dir
from one4all.sweep.job import JobResult, train_job

log = logging.getLogger(__name__)

_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


@dataclass
class Outcome:
    """One finished job: its number, the overrides that made it, and its result."""

    job: int
    overrides: list[str]
    result: JobResult


@contextmanager
def _hydra() -> Iterator[Hydra]:
    """Hydra initialised on the project's configs (as `compose_config` does), for this block."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="one4all"):
        hydra = GlobalHydra.instance().hydra
        assert hydra is not None
        yield hydra


@contextmanager
def _caller_logging() -> Iterator[None]:
    """Give the root logger its handlers and level back after a sweep: Hydra's launchers configure logging
    per job (hydra/job_logging), which would leave handlers on a stream the caller may have swapped since."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _master_config(hydra: Hydra, overrides: list[str]) -> DictConfig:
    """The `train` config in multirun mode: hydra.sweep.*, hydra.launcher, and the task overrides."""
    try:
        return hydra.compose_config("train", list(overrides), run_mode=RunMode.MULTIRUN, from_shell=True)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise UserError(f"bad configuration or override: {_one_line(err)}") from err


def _check_jobs(hydra: Hydra, master: DictConfig, jobs: Sequence[Sequence[str]]) -> None:
    """Compose every job's config as its launcher will; the first that fails stops everything."""
    for index, job in enumerate(jobs):
        try:
            hydra.config_loader.load_sweep_config(master, list(job))
        except (HydraException, OmegaConfBaseException, ValueError) as err:
            raise UserError(f"job {index} ({' '.join(job)}): bad configuration or override: {_one_line(err)}") from err


def expand(hydra: Hydra, master: DictConfig) -> list[list[str]] | None:
    """The jobs of a sweep as override lists, as the basic sweeper forms them (`a=1,2 b=x,y` -> 4 jobs);
    None for another sweeper (e.g. an optimiser that picks its jobs as it goes)."""
    if master.hydra.sweeper.get("_target_") != _BASIC_SWEEPER:
        return None
    params = master.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(master.hydra.overrides.task)
    try:
        parsed = OverridesParser.create(config_loader=hydra.config_loader).parse_overrides(arguments)
        return [list(job) for job in BasicSweeper.split_arguments(parsed, None)[0]]
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise UserError(f"bad sweep override: {_one_line(err)}") from err


def _outcomes(returns: Any) -> list[Outcome]:
    """Flatten what a sweeper or launcher returned (batches of JobReturn) into outcomes, in job order."""
    found: list[JobReturn] = []

    def collect(item: Any) -> None:
        if isinstance(item, JobReturn):
            found.append(item)
        elif isinstance(item, list | tuple):
            for sub in item:
                collect(sub)

    collect(returns)
    outcomes = []
    for ret in found:
        hydra_cfg = ret.hydra_cfg.hydra if ret.hydra_cfg is not None else None
        run_dir = str(hydra_cfg.runtime.output_dir) if hydra_cfg is not None else ""
        if ret.status == JobStatus.COMPLETED and isinstance(ret.return_value, JobResult):
            result = ret.return_value
        else:  # the task function itself failed (it catches everything, so a launcher-level problem)
            try:
                detail = repr(ret.return_value)
            except Exception as err:  # JobReturn re-raises a failed job's exception
                detail = _one_line(err)
            result = JobResult("failed", run_dir, detail[:300])
        number = hydra_cfg.job.get("num") if hydra_cfg is not None else None
        job = int(number) if number is not None else len(outcomes)
        outcomes.append(Outcome(job, list(ret.overrides or []), result))
    return sorted(outcomes, key=lambda o: o.job)


def sweep(overrides: list[str], dry_run: bool = False) -> tuple[Path, list[Outcome], list[list[str]] | None]:
    """Run `one4all train -m OVERRIDES`: (sweep directory, one outcome per job, the planned jobs).

    With `dry_run`, nothing runs and the outcomes are empty.
    """
    with _hydra() as hydra:
        master = _master_config(hydra, overrides)
        sweep_dir = Path(str(master.hydra.sweep.dir)).expanduser().resolve()
        jobs = expand(hydra, master)
        if jobs is not None:
            _check_jobs(hydra, master, jobs)
        if dry_run:
            return sweep_dir, [], jobs
        # What Hydra's own `multirun` does, with the config checked above (one `${now:...}` for all).
        callbacks = Callbacks(master)
        callbacks.on_multirun_start(config=master, config_name="train")
        sweeper = Plugins.instance().instantiate_sweeper(
            config=master, hydra_context=HydraContext(config_loader=hydra.config_loader, callbacks=callbacks),
            task_function=train_job)
        with _caller_logging():
            returns = sweeper.sweep(arguments=list(master.hydra.overrides.task))
        callbacks.on_multirun_end(config=master, config_name="train")
    return sweep_dir, _outcomes(returns), jobs


def launch(master_overrides: list[str], jobs: list[list[str]]) -> list[Outcome]:
    """Run a given list of jobs (each a list of `train` overrides) on the configured launcher.

    `master_overrides` set the launcher and the sweep directory (`hydra.sweep.dir=...`,
    `hydra/launcher=joblib`, ...); each job's directory is `hydra.sweep.subdir`, settable per job.
    """
    with _hydra() as hydra:
        master = _master_config(hydra, master_overrides)
        _check_jobs(hydra, master, jobs)
        callbacks = Callbacks(master)
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=HydraContext(config_loader=hydra.config_loader, callbacks=callbacks),
            task_function=train_job, config=master)
        with _caller_logging():
            returns = launcher.launch(jobs, initial_job_idx=0)
    return _outcomes(returns)


JOB_COLUMNS = ("job", "status", "test_mse", "test_mae", "run_dir", "overrides", "error", "log_file")


def job_rows(outcomes: list[Outcome], sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job for jobs.csv: run directories relative to the sweep directory."""
    rows = []
    for o in outcomes:
        run_dir, log_file = Path(o.result.run_dir), Path(o.result.log_file)
        shown = run_dir.relative_to(sweep_dir) if run_dir.is_relative_to(sweep_dir) else run_dir
        log_shown = log_file.relative_to(sweep_dir) if log_file.is_relative_to(sweep_dir) else log_file
        rows.append({"job": o.job, "status": o.result.status, "test_mse": o.result.metrics.get("test/mse"),
                     "test_mae": o.result.metrics.get("test/mae"),
                     "run_dir": str(shown) if o.result.status == "ok" and o.result.run_dir else "",
                     "overrides": " ".join(o.overrides), "error": o.result.error,
                     "log_file": str(log_shown) if o.result.log_file else ""})
    return rows


def write_jobs(outcomes: list[Outcome], sweep_dir: Path) -> Path:
    """jobs.csv in the sweep directory: what each job was, how it ended, where its run is."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=JOB_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in job_rows(outcomes, sweep_dir))
    path = sweep_dir / "jobs.csv"
    atomic_write_text(path, buffer.getvalue())
    return path


def jobs_markdown(outcomes: list[Outcome], sweep_dir: Path) -> str:
    """The jobs as a Markdown table: status, test MSE/MAE, the overrides that differ between jobs, the
    reason of a failure (the overrides every job shares are listed once, below)."""
    shared = set.intersection(*(set(o.overrides) for o in outcomes)) if len(outcomes) > 1 else set()
    lines = ["| job | status | test MSE | test MAE | overrides | note |", "|---|---|---|---|---|---|"]
    for outcome, row in zip(outcomes, job_rows(outcomes, sweep_dir), strict=True):
        mse, mae = (f"{row[k]:.4f}" if isinstance(row[k], float) else "–" for k in ("test_mse", "test_mae"))
        own = " ".join(o for o in outcome.overrides if o not in shared)
        lines.append(f"| {row['job']} | {row['status']} | {mse} | {mae} | `{own}` | {row['error']} |")
    if shared:
        lines += ["", "Every job: `" + " ".join(o for o in outcomes[0].overrides if o in shared) + "`"]
    return "\n".join(lines) + "\n"
