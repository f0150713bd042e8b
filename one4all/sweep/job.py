"""One job of a multirun: train and test one run in the directory Hydra's launcher made for it.

Hydra's launchers (basic, joblib, submitit) call `train_job(cfg)` after creating the job's directory
(`hydra.sweep.dir/hydra.sweep.subdir`). A job never raises: its outcome (ok, failed or timeout, with
the one-line reason) is its return value, so a failing job is reported and the others go on. A job
that fails before its run wrote anything (bad input) removes the empty directory Hydra made for it:
like a single run, it leaves nothing behind.

With `sweep.isolate=true` (the default) the run happens in a fresh process: a crash or an
out-of-memory kill ends that job only, its peak memory is its own, `sweep.timeout_s` can stop it, and
its whole output goes to `<sweep dir>/logs/<job>.log`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import one4all
from one4all import notices
from one4all.errors import UserError

log = logging.getLogger(__name__)

# Seconds a timed-out job gets to exit after SIGTERM before it is killed.
_GRACE_S = 10.0


@dataclass
class JobResult:
    """What a job reports back to the process that launched it (pickled or JSON across processes)."""

    status: str  # ok | failed | timeout
    run_dir: str
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)  # the run's test/* numbers
    log_file: str = ""
    wall_time_s: float | None = None  # the whole job: process start, build, fit and test


def _one_device(cfg: DictConfig) -> bool:
    """Whether the run trains on a single device: Lightning's DDP launcher re-runs the command line,
    which in a multirun would start the whole sweep again in every extra process."""
    devices, nodes = cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1)
    one = len(devices) == 1 if OmegaConf.is_list(devices) else str(devices) == "1"
    return one and str(nodes) == "1"


def run_here(cfg: DictConfig, run_dir: Path) -> JobResult:
    """Train and test in this process (as `one4all train`: its fit mode, its interval calibration);
    any failure becomes the result, never an exception."""
    from one4all.fitting import fit

    try:
        if not _one_device(cfg):
            raise UserError("a multirun job trains on one device (trainer.devices=1, trainer.num_nodes=1); "
                            "run a multi-device training as a single `one4all train`")
        metrics = fit(cfg, run_dir)
    except UserError as err:
        log.error("error: %s", err)
        return JobResult("failed", str(run_dir), f"error: {err}")
    except Exception as err:  # a bug or a crash inside one job must not end the sweep
        log.error("job failed:\n%s", traceback.format_exc())
        return JobResult("failed", str(run_dir), f"{type(err).__name__}: {' '.join(str(err).split())}"[:300])
    tests = {k: float(v) for k, v in metrics.items() if k.startswith("test/") and isinstance(v, int | float)}
    return JobResult("ok", str(run_dir), metrics=tests)


def _orphan_watch(parent: int) -> None:
    """End this job's process once the sweep that started it is gone (a killed launcher cannot stop it)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def child_main(job_file: str) -> int:
    """Body of an isolated job's process (`python -m one4all.sweep.job JOB.json`): the run, then its result.

    JOB.json holds the resolved config, the run directory, where to write the result and the launcher's
    process id; the process's output is the job's log file (set up by the launcher).
    """
    job = json.loads(Path(job_file).read_text())
    threading.Thread(target=_orphan_watch, args=(job["parent"],), daemon=True).start()
    from one4all.cli import setup_logging

    setup_logging()
    result = run_here(OmegaConf.create(job["config"]), Path(job["run_dir"]))
    notices.release()  # the job's log file keeps what a refused job noticed too (the CLI would drop it)
    Path(job["result"]).write_text(json.dumps(asdict(result)))
    return 0


def _last_line(log_file: Path) -> str:
    """The CLI's one-line `error:` message, else the last line of the log (e.g. a traceback's)."""
    if not log_file.is_file():
        return "no output"
    lines = [line.strip() for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1][:300]


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the process has not ended after the grace period."""
    process.terminate()
    try:
        process.wait(_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_isolated(cfg: DictConfig, run_dir: Path, log_file: Path, timeout_s: float | None) -> JobResult:
    """Run the job in a fresh Python process, with an optional wall-clock limit.

    A plain interpreter (not multiprocessing): the launcher's own process may have changed how
    multiprocessing starts children (joblib's loky workers do), which a spawned child cannot follow.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    # Resolved here: the child has no Hydra context for `${hydra:...}`-style values.
    config = OmegaConf.to_container(cfg, resolve=True)
    config["trainer"]["enable_progress_bar"] = False  # the output goes to a log file, where a bar is noise
    # The child imports the same one4all as this process, wherever its working directory is.
    package_root = str(Path(one4all.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="one4all-job-") as tmp:
        job_file, result_file = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_file.write_text(json.dumps({"config": config, "run_dir": str(run_dir), "result": str(result_file),
                                        "parent": os.getpid()}))
        with log_file.open("wb") as log_handle:
            process = subprocess.Popen([sys.executable, "-m", "one4all.sweep.job", str(job_file)], env=env,
                                       stdout=log_handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                code = process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _stop(process)
                return JobResult("timeout", str(run_dir), f"timeout after {timeout_s:g}s", log_file=str(log_file))
            except BaseException:  # interrupted: the job must not outlive the sweep
                _stop(process)
                raise
        if code == 0 and result_file.is_file():
            return JobResult(**{**json.loads(result_file.read_text()), "log_file": str(log_file)})
    how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
    hint = " (out of memory?)" if code == -9 else ""
    return JobResult("failed", str(run_dir), f"the job's process ended without a result, {how}{hint}: "
                     f"{_last_line(log_file)}", log_file=str(log_file))


def remove_if_empty(run_dir: Path) -> None:
    """Remove a job directory that nothing was written to (rmdir refuses non-empty ones)."""
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def train_job(cfg: DictConfig) -> JobResult:
    """Hydra task function of `one4all train -m` and `one4all compare`: one job, one run directory."""
    started = time.perf_counter()
    hydra = HydraConfig.get()
    run_dir = Path(hydra.runtime.output_dir)
    settings = cfg.get("sweep") or {}
    timeout_s = settings.get("timeout_s")
    if settings.get("isolate", True):
        log_file = Path(hydra.sweep.dir) / "logs" / f"{hydra.sweep.subdir}.log"
        result = run_isolated(cfg, run_dir, log_file.resolve(), timeout_s)
    elif timeout_s is not None:
        result = JobResult("failed", str(run_dir), "error: sweep.timeout_s needs sweep.isolate=true (a job in the "
                           "launcher's own process cannot be stopped)")
    else:
        result = run_here(cfg, run_dir)
    if result.status != "ok":
        remove_if_empty(run_dir)
    result.wall_time_s = round(time.perf_counter() - started, 1)
    return result


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1]))
