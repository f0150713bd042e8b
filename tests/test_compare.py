"""`one4all compare`: planning entries, dropping overrides per entry, and a one-step run on a tiny dataset."""

from __future__ import annotations

import csv
import json
import math

import pytest

from one4all.cli import main
from one4all.compare import plan_entries, split_overrides
from one4all.compare.plan import merge_overrides
from one4all.compare.report import human_bytes, markdown
from one4all.config import compose_config
from one4all.errors import UserError
from tests.conftest import TINY_OVERRIDES


def test_overrides_split_between_the_comparison_and_its_entries():
    own, shared = split_overrides(["experiment=compare/etth1_96", "hydra.run.dir=x", "compare.models=[a]",
                                   "data.root=d", "+trainer.foo=1", "model.backbone.init=random"])
    assert own == ["experiment=compare/etth1_96", "hydra.run.dir=x", "compare.models=[a]"]
    assert shared == ["data.root=d", "+trainer.foo=1", "model.backbone.init=random"]
    assert merge_overrides(["a=1", "b=2"], ["c=3", "a=4"]) == ["b=2", "c=3", "a=4"]


def test_plan_drops_gpt2_only_overrides_for_the_baselines():
    cfg, _ = compose_config(["experiment=compare/etth1_96"], config_name="compare")
    entries = plan_entries(cfg.compare, ["model.backbone.init=random", "trainer.max_steps=5"])
    assert [e.name for e in entries] == ["one4all", "gpt4ts", "dlinear", "patchtst", "timesnet"]
    by_name = {e.name: e for e in entries}
    assert by_name["gpt4ts"].overrides[-4:] == ["experiment=long_term/etth1_96", "adapter=gpt4ts",
                                                "model.backbone.init=random", "trainer.max_steps=5"]
    assert by_name["gpt4ts"].notes == []
    for name in ("dlinear", "patchtst", "timesnet"):
        assert "model.backbone.init=random" not in by_name[name].overrides
        assert by_name[name].notes == ["dropped model.backbone.init=random (no such key for this model)"]
        assert by_name[name].overrides[-1] == "trainer.max_steps=5"


def test_plan_rejects_typos_and_unknown_models():
    cfg, _ = compose_config(["experiment=compare/etth1_96"], config_name="compare")
    with pytest.raises(UserError, match="trainer.max_stepz=5 fits none"):
        plan_entries(cfg.compare, ["trainer.max_stepz=5"])
    cfg, _ = compose_config(["experiment=compare/etth1_96", "compare.models=[dlinear,lstm]"], config_name="compare")
    with pytest.raises(UserError, match="available: one4all, gpt4ts"):
        plan_entries(cfg.compare, [])
    cfg, _ = compose_config([], config_name="compare")
    with pytest.raises(UserError, match="experiment=compare/<name>"):
        plan_entries(cfg.compare, [])


def test_markdown_formats_cost_columns():
    rows = [{"model": "dlinear", "status": "ok", "test_mse": 0.37192, "test_mae": 0.39403, "trainable_params": 64704,
             "artifact_bytes": 260463, "notes": "dropped x=1 (no such key for this model)"},
            {"model": "broken", "status": "failed", "notes": "exit 2: error: bad"}]
    text = markdown(rows)
    assert "| dlinear | ok | 0.3719 | 0.3940 | 64,704 | 260.5 kB |" in text
    assert "| broken | failed | – | – |" in text and "- broken: exit 2: error: bad" in text
    assert human_bytes(999) == "999 B" and human_bytes(2_200_000) == "2.2 MB"


def test_one_step_compare_on_a_tiny_dataset(tmp_path, data_root, capsys):
    tiny_csv = tmp_path / "etth1_head.csv"
    with (data_root / "ETTh1" / "ETTh1.csv").open() as src:
        tiny_csv.write_text("".join(line for _, line in zip(range(701), src)))  # header + 700 rows
    run_dir = tmp_path / "cmp"
    code = main(["compare", "experiment=compare/etth1_96", "compare.models=[dlinear,broken]",
                 "+compare.entries.broken=['experiment=long_term/etth1_96_patchtst42','model.n_heads=3']",
                 f"data.path={tiny_csv}", "data.split=ratio", "task.seq_len=48", "task.horizon=12",
                 "trainer.max_steps=1", "trainer.max_time=null", "model.backbone.init=random", *TINY_OVERRIDES,
                 f"hydra.run.dir={run_dir}"])
    assert code == 1  # one entry failed; the other still ran and is reported
    rows = {r["model"]: r for r in csv.DictReader((run_dir / "comparison.csv").open())}
    assert set(rows) == {"dlinear", "broken"}
    ok, broken = rows["dlinear"], rows["broken"]
    assert ok["status"] == "ok" and math.isfinite(float(ok["test_mse"])) and math.isfinite(float(ok["test_mae"]))
    assert int(ok["trainable_params"]) == 2 * (48 * 12 + 12) and int(ok["global_step"]) == 1
    assert int(ok["artifact_bytes"]) > 4 * 1176 and ok["precision"] == "32-true"
    assert "dropped model.backbone.init=random" in ok["notes"]
    metrics = json.loads((run_dir / "dlinear" / "metrics.json").read_text())
    assert float(ok["test_mse"]) == pytest.approx(metrics["test/mse"])
    # 700 rows -> 70/10/20: test rows [560 - 48, 700), 140 - 12 + 1 windows
    assert metrics["data"]["n_test_samples"] == 129
    assert broken["status"] == "failed" and "not divisible by model.n_heads=3" in broken["notes"]
    assert broken["test_mse"] == "" and not (run_dir / "broken").exists()
    assert (run_dir / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| dlinear | ok |" in (run_dir / "comparison.md").read_text()
    assert "1 of 2 models did not finish: broken" in capsys.readouterr().err
