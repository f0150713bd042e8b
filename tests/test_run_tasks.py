"""scripts/run_tasks.py: experiment discovery and the results table."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("run_tasks", REPO / "scripts" / "run_tasks.py")
run_tasks = importlib.util.module_from_spec(spec)
sys.modules["run_tasks"] = run_tasks  # dataclasses look their module up while the file runs
spec.loader.exec_module(run_tasks)


def test_discovers_the_task_experiments_in_task_order():
    found = run_tasks.discover(REPO / "configs", ["classification", "imputation", "anomaly"])
    assert found == [
        ("classification", "classification/japanese_vowels"),
        ("imputation", "imputation/etth1_mask12"), ("imputation", "imputation/etth1_mask25"),
        ("imputation", "imputation/etth1_mask37"), ("imputation", "imputation/etth1_mask50"),
        ("anomaly", "anomaly/msl_c1"), ("anomaly", "anomaly/smap_p1"),
    ]


def test_table_and_csv_from_run_directories(tmp_path):
    run_dir = tmp_path / "anomaly" / "smap_p1"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps({"test/f1": 0.25, "test/f1_pa": 0.5, "data": {"n": 1}}))
    results = [run_tasks.Result("anomaly", "anomaly/smap_p1", "ok", run_tasks.read_metrics(run_dir)),
               run_tasks.Result("imputation", "imputation/etth1_mask25", "failed (exit 2): error: x")]
    table = run_tasks.markdown(results)
    assert "| anomaly | `anomaly/smap_p1` | f1 0.25, f1_pa 0.5 | ok |" in table
    assert "| imputation | `imputation/etth1_mask25` | - | failed (exit 2): error: x |" in table
    run_tasks.write_csv(results, tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text().splitlines() == [
        "task,experiment,metric,value", "anomaly,anomaly/smap_p1,test/f1,0.25",
        "anomaly,anomaly/smap_p1,test/f1_pa,0.5"]


def test_bad_task_override_and_dry_run(capsys):
    assert run_tasks.main(["--task-override", "nope:x=1"]) == 2
    assert run_tasks.main(["--tasks", "classification", "--dry-run", "--", "trainer.max_steps=3"]) == 0
    assert capsys.readouterr().out.strip().endswith("classification/japanese_vowels")


def test_common_overrides_follow_the_double_dash():
    args, common = run_tasks.parse(["--tasks", "anomaly", "--", "trainer.max_steps=3", "data.root=x"])
    assert args.tasks == ["anomaly"] and common == ["trainer.max_steps=3", "data.root=x"]
    with pytest.raises(SystemExit):
        run_tasks.parse(["--tasks", "unknown"])
