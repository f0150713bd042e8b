"""`one4all report`: runs -> the papers' tables, mean ± std over seeds, published numbers beside ours."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest
import yaml

from one4all.cli import main
from one4all.errors import UserError
from one4all.report.published import load_published
from one4all.report.runs import find_runs

HORIZONS = (96, 192, 336, 720)
SEEDS = (2021, 2022, 2023)


def write_run(folder, dataset, horizon, seed, mse, mae, preset="reference", fraction=1.0, seq_len=336,
              params=546304, model="one4all.models.one4all.One4All", task="long_term_forecast", **task_settings):
    folder.mkdir(parents=True)
    config = {"seed": seed, "task": {"name": task, "seq_len": seq_len, "horizon": horizon, **task_settings},
              "data": {"name": dataset, "train_fraction": fraction},
              "model": {"_target_": model, "adapter": {"preset": preset, "rank": 16}}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    efficiency = {"trainable_params": params, "artifact_bytes": 2_200_000}
    metrics = {"test/mse": mse, "test/mae": mae, "efficiency": efficiency}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def mse_of(h, s):  # distinct, known numbers per cell
    return 0.4 + h / 10000 + (s - 2021) / 100


@pytest.fixture()
def sweep(tmp_path):
    root = tmp_path / "sweep"
    job = 0
    for h in HORIZONS:
        for s in SEEDS:
            write_run(root / str(job), "ETTh1", h, s, mse_of(h, s), mse_of(h, s) + 0.01, params=546304 + h)
            job += 1
    return root


def test_table_cells_are_mean_and_sample_std_over_seeds(sweep, capsys):
    assert main(["report", str(sweep)]) == 0
    text = capsys.readouterr().out
    cells = [np.array([mse_of(h, s) for s in SEEDS]) for h in HORIZONS]
    shown = [f"{c.mean():.3f} ± {c.std(ddof=1):.3f}" for c in cells]
    per_seed_avg = np.array([np.mean([mse_of(h, s) for h in HORIZONS]) for s in SEEDS])
    avg = f"{per_seed_avg.mean():.3f} ± {per_seed_avg.std(ddof=1):.3f}"
    assert shown[0] == "0.420 ± 0.010" and avg == "0.444 ± 0.010"
    assert "### long-term · One-for-All · L=336" in text
    assert (f"| ETTh1 | MSE | {' | '.join(shown)} | {avg} | 2021, 2022, 2023 | 546,400–547,024 | 2.2 MB |") in text
    rows = list(csv.DictReader((sweep / "report.csv").open()))
    avg_row = next(r for r in rows if r["horizon"] == "avg" and r["metric"] == "mse")
    assert float(avg_row["mean"]) == pytest.approx(per_seed_avg.mean()) and avg_row["n_seeds"] == "3"


def test_published_numbers_beside_ours_with_the_gap(sweep, capsys):
    assert main(["report", str(sweep), "--published"]) == 0
    text = capsys.readouterr().out
    ours = np.mean([mse_of(h, s) for h in HORIZONS for s in SEEDS])
    ours_mae = ours + 0.01
    gap, gap_mae = f"{(ours - 0.43) / 0.43:+.1%}", f"{(ours_mae - 0.43) / 0.43:+.1%}"
    assert (f"| ETTh1 | One-for-All | One-for-All Table I | 336 | 96/192/336/720 | 0.43 | 0.43 | {ours:.3f} | "
            f"{ours_mae:.3f} | {gap} | {gap_mae} |") in text
    # Other models' published numbers are context: no gap against a different model.
    assert "| ETTh1 | DLinear | GPT4TS Table 3 | – | 96/192/336/720 | 0.423 | 0.437 |" in text
    assert f"{ours:.3f} | {ours_mae:.3f} | – | – |" in text


def test_horizon_sets_and_settings_get_their_own_tables(tmp_path, capsys):
    root = tmp_path / "runs"
    for i, h in enumerate((24, 36)):
        write_run(root / f"ili{i}", "illness", h, 1, 2.0 + i, 1.0, seq_len=104)
    write_run(root / "fs", "ETTh1", 96, 1, 0.7, 0.55, fraction=0.1)
    write_run(root / "gpt4ts", "ETTh1", 96, 1, 0.38, 0.40, preset="gpt4ts")
    write_run(root / "dlinear", "ETTh1", 96, 1, 0.375, 0.399, model="one4all.models.baselines.dlinear.DLinear")
    write_run(root / "imp", "ETTh1", None, 1, 0.05, 0.15, task="imputation", seq_len=96)
    write_run(root / "imp25", "ETTh1", None, 1, 0.07, 0.17, task="imputation", seq_len=96, mask_ratio=0.25)
    assert main(["report", str(root), "--published"]) == 0
    text = capsys.readouterr().out
    for title in ("long-term · DLinear · L=336", "long-term · GPT4TS · L=336", "long-term · One-for-All · L=104",
                  "few-shot 10% · One-for-All · L=336", "other runs"):
        assert f"### {title}" in text
    assert "| illness | MSE | 2.000 | 3.000 | 2.500 | 1 |" in text
    assert "| imputation | ETTh1 | One-for-All | 96 | – | – | 100% | 1 | mae 0.1500, mse 0.0500 |" in text
    assert "| imputation | ETTh1 | One-for-All | 96 | – | mask_ratio=0.25 | 100% | 1 | mae 0.1700, mse 0.0700 |" in text
    assert ("| ETTh1 | One-for-All | One-for-All Table II | 336 | 96/192/336/720 | 0.65 | 0.55 | 0.700 | 0.550 "
            "| – |") in text
    assert "ours average 96, the papers 96/192/336/720: not the same protocol, no gap" in text


def test_malformed_runs_are_skipped_and_an_empty_folder_is_an_error(tmp_path, caplog):
    write_run(tmp_path / "good", "ETTh1", 96, 1, 0.4, 0.41)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.json").write_text("{not json")
    (tmp_path / "bad" / "config.yaml").write_text("seed: 1\n")
    write_run(tmp_path / "odd", "ETTh1", 96, 1, 0.4, 0.41)
    (tmp_path / "odd" / "config.yaml").write_text("task: {name: long_term_forecast, seq_len: '336'}\n"
                                                  "model: {_target_: one4all.models.baselines.dlinear.DLinear}\n")
    caplog.set_level(logging.WARNING)
    runs = find_runs(tmp_path)
    assert [r.path.name for r in runs] == ["good"]
    assert "bad/metrics.json: unreadable (JSONDecodeError)" in caplog.text
    assert "odd/metrics.json: task.seq_len is str, not int" in caplog.text
    with pytest.raises(UserError, match="no finished runs below"):
        find_runs(tmp_path / "bad")


def test_the_published_table_parses_and_cites_every_cell():
    cells = load_published()
    assert len(cells) == 105 and all(c.source and c.horizons for c in cells)
    table1 = {c.dataset: (c.mse, c.mae) for c in cells if c.model == "One-for-All" and c.setting == "long_term"}
    assert table1 == {"ETTh1": (0.43, 0.43), "ETTh2": (0.36, 0.39), "ETTm1": (0.36, 0.38), "ETTm2": (0.26, 0.33),
                      "weather": (0.23, 0.27)}
    ili = [c for c in cells if c.dataset == "illness"]
    assert {c.model for c in ili} == {"GPT4TS", "DLinear", "PatchTST", "TimesNet"}
    assert all(c.horizons == (24, 36, 48, 60) for c in ili)
