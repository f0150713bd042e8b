"""`one4all compare` on every task: task comparisons plan, and tables carry each task's accuracy columns."""

from __future__ import annotations

import csv
import json

import pytest

from one4all.cli import main
from one4all.compare import plan_entries
from one4all.compare.report import markdown, shown_metrics, with_task_metrics
from one4all.config import compose_config


@pytest.mark.parametrize("comparison", ["imputation_etth1", "classification_japanese_vowels", "anomaly_smap_p1"])
def test_task_comparisons_plan_every_model(comparison):
    cfg, _ = compose_config([f"experiment=compare/{comparison}"], config_name="compare")
    entries = {e.name: e for e in plan_entries(cfg.compare, ["model.backbone.init=random"])}
    assert list(entries) == ["one4all", "gpt4ts", "dlinear", "patchtst", "timesnet"]
    assert entries["timesnet"].overrides[-1] == "model=timesnet" and entries["timesnet"].notes
    assert entries["one4all"].overrides[-1] == "model.backbone.init=random"


def test_rows_take_their_task_metrics_from_metrics_json(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metrics.json").write_text(json.dumps({"test/accuracy": 0.9621, "test/loss": 0.2}))
    rows = [{"model": "a", "status": "ok", "run_dir": "a", "test_mse": None, "trainable_params": 1234},
            {"model": "b", "status": "failed", "run_dir": "b", "notes": "exit 2: error: bad"}]
    filled = with_task_metrics(rows, tmp_path)
    assert filled[0]["test_accuracy"] == 0.9621 and filled[1] == rows[1]
    assert shown_metrics(filled) == ["test_accuracy"]
    text = markdown(filled)
    assert "| model | status | test accuracy | trainable params |" in text
    assert "| a | ok | 0.9621 | 1,234 |" in text and "| b | failed | – | – |" in text


def test_classification_compare_tabulates_accuracy(tmp_path, data_root, capsys):
    run_dir = tmp_path / "cmp"
    code = main(["compare", "experiment=compare/classification_japanese_vowels", "compare.models=[dlinear]",
                 f"data.root={data_root}", "trainer.max_steps=1", "trainer.max_time=null", "trainer.precision=32-true",
                 "trainer.limit_val_batches=1", f"hydra.run.dir={run_dir}"])
    assert code == 0
    row = next(csv.DictReader((run_dir / "comparison.csv").open()))
    metrics = json.loads((run_dir / "dlinear" / "metrics.json").read_text())
    assert float(row["test_accuracy"]) == pytest.approx(metrics["test/accuracy"]) and row["test_mse"] == ""
    assert int(row["trainable_params"]) == 2 * (26 * 26 + 26) + (26 * 12 * 9 + 9)
    assert "test accuracy" in (run_dir / "comparison.md").read_text() and "test accuracy" in capsys.readouterr().out
    assert (run_dir / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
