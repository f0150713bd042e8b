"""`one4all train -m`: Hydra's sweeper and launchers, one run directory per job, failures isolated."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from hydra.core.plugins import Plugins
from hydra.types import HydraContext

from one4all.cli import main
from one4all.sweep.job import train_job
from one4all.sweep.launch import _hydra, _master_config
from tests.conftest import TINY_OVERRIDES


@pytest.fixture()
def series_csv(tmp_path):
    """A small benchmark-shaped CSV (hourly, 3 channels, 600 rows)."""
    n = 600
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(np.sin(np.arange(n) / 12.0)[:, None] + 0.1 * rng.standard_normal((n, 3)),
                         columns=["a", "b", "OT"])
    frame.insert(0, "date", pd.date_range("2021-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M:%S"))
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    return path


def tiny(series_csv) -> list[str]:
    return ["data=custom", f"data.root={series_csv.parent}", f"data.path={series_csv.name}", "task.seq_len=48",
            *TINY_OVERRIDES, "trainer.max_steps=1"]


def rows(sweep_dir) -> list[dict[str, str]]:
    return list(csv.DictReader((sweep_dir / "jobs.csv").open()))


def test_dry_run_lists_every_combination_and_writes_nothing(tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    assert main(["train", "-m", "data=etth1,ettm1", "task.horizon=96,192", "seed=1,2", "--dry-run",
                 f"hydra.sweep.dir={sweep_dir}"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "0: data=etth1 task.horizon=96 seed=1" and out[7] == "7: data=ettm1 task.horizon=192 seed=2"
    assert out[-1] == f"8 job(s) -> {sweep_dir}" and not sweep_dir.exists()


def test_a_typo_in_any_job_stops_the_sweep_before_anything_runs(tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    assert main(["train", "-m", "seed=1,2", "trainer.max_stepz=1", f"hydra.sweep.dir={sweep_dir}"]) == 2
    assert "error: bad configuration or override: Could not override 'trainer.max_stepz'" in capsys.readouterr().err
    # Only the third job's config is wrong (DLinear has no GPT-2 backbone): still nothing runs.
    assert main(["train", "-m", "model=one4all,dlinear", "seed=1,2", "model.backbone.init=random",
                 f"hydra.sweep.dir={sweep_dir}"]) == 2
    assert ("error: job 2 (model=dlinear seed=1 model.backbone.init=random): bad configuration or override: "
            "Could not override 'model.backbone.init'") in capsys.readouterr().err
    assert not sweep_dir.exists()


def test_sweep_runs_every_job_in_its_directory_and_reports(series_csv, tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    code = main(["train", "-m", *tiny(series_csv), "task.horizon=12,24", "seed=1,2", "sweep.isolate=false",
                 f"hydra.sweep.dir={sweep_dir}"])
    assert code == 0
    jobs = rows(sweep_dir)
    assert [(r["job"], r["status"], r["run_dir"]) for r in jobs] == [("0", "ok", "0"), ("1", "ok", "1"),
                                                                     ("2", "ok", "2"), ("3", "ok", "3")]
    metrics = {}
    for r in jobs:
        run = json.loads((sweep_dir / r["run_dir"] / "metrics.json").read_text())
        assert float(r["test_mse"]) == pytest.approx(run["test/mse"])
        metrics[(run["run"]["seed"], run["data"]["n_test_samples"])] = run["test/mse"]
    # 600 rows -> 120 test rows + 48 input rows: (168 - 48 - H + 1) windows x 3 channels
    assert sorted({n for _, n in metrics}) == [(168 - 48 - 24 + 1) * 3, (168 - 48 - 12 + 1) * 3]
    assert not (sweep_dir / "0" / ".hydra").exists() and (sweep_dir / "multirun.yaml").is_file()
    capsys.readouterr()
    assert main(["report", str(sweep_dir)]) == 0
    text = capsys.readouterr().out
    h12 = [v for (s, n), v in sorted(metrics.items()) if n == 109 * 3]
    mean, std = float(np.mean(h12)), float(np.std(h12, ddof=1))
    assert "| dataset | metric | 12 | 24 | avg | seeds | trainable params | artifact |" in text
    assert f"| series | MSE | {mean:.3f} ± {std:.3f} |" in text
    assert (sweep_dir / "report.csv").is_file() and (sweep_dir / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_an_isolated_job_failing_on_bad_input_leaves_no_directory(series_csv, tmp_path, capsys):
    # (test_compare runs an isolated job that succeeds beside one that fails)
    sweep_dir = tmp_path / "sweep"
    code = main(["train", "-m", *tiny(series_csv), "task.horizon=12", "data.path=missing.csv",
                 f"hydra.sweep.dir={sweep_dir}"])
    assert code == 1
    (failed,) = rows(sweep_dir)
    assert failed["status"] == "failed" and failed["error"].startswith("error: data file not found")
    assert not (sweep_dir / "0").exists() and failed["log_file"] == "logs/0.log"
    assert "error: data file not found" in (sweep_dir / "logs" / "0.log").read_text()
    assert "1 of 1 jobs did not finish: 0" in capsys.readouterr().err


def test_timeout_stops_an_isolated_job(series_csv, tmp_path):
    sweep_dir = tmp_path / "sweep"
    assert main(["train", "-m", *tiny(series_csv), "task.horizon=12", "sweep.timeout_s=0.5",
                 f"hydra.sweep.dir={sweep_dir}"]) == 1
    (row,) = rows(sweep_dir)
    assert row["status"] == "timeout" and row["error"] == "timeout after 0.5s" and not (sweep_dir / "0").exists()


def test_joblib_launcher_runs_two_jobs_in_parallel(series_csv, tmp_path):
    sweep_dir = tmp_path / "sweep"
    # The jobs run inside joblib's worker processes (sweep.isolate=false keeps the test fast; an isolated
    # job is a plain child interpreter whatever the launcher, see test_an_isolated_job_...).
    code = main(["train", "-m", *tiny(series_csv), "task.horizon=12", "seed=1,2", "sweep.isolate=false",
                 "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep_dir}"])
    assert code == 0
    jobs = rows(sweep_dir)
    assert [r["status"] for r in jobs] == ["ok", "ok"]
    seeds = [json.loads((sweep_dir / r["run_dir"] / "metrics.json").read_text())["run"]["seed"] for r in jobs]
    assert seeds == [1, 2]


def test_slurm_launcher_composes_from_its_plugin():
    with _hydra() as hydra:
        master = _master_config(hydra, ["seed=1,2", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                                        "hydra.launcher.timeout_min=120", "hydra.launcher.gpus_per_node=1"])
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=HydraContext(config_loader=hydra.config_loader, callbacks=None), task_function=train_job,
            config=master)
    assert type(launcher).__name__ == "SlurmLauncher"
    assert launcher.params["partition"] == "gpu" and launcher.params["timeout_min"] == 120
    assert launcher.params["submitit_folder"].endswith("/.submitit/%j")
