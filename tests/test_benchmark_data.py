"""Named benchmark data configs: their protocol (borders follow the file's frequency) and positional reading."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from one4all.cli import main
from one4all.config import compose_config
from one4all.data.sources.table import CsvData
from one4all.data.splits import make_borders, steps_per_hour
from one4all.data.windows.forecast import ForecastProtocol
from one4all.errors import UserError
from tests.conftest import TINY_OVERRIDES

SUITE = {  # data=NAME -> (file under the data root, name, split, batch size of the papers' scripts)
    "etth1": ("ETTh1/ETTh1.csv", "ETTh1", "ett", 256), "etth2": ("ETTh2/ETTh2.csv", "ETTh2", "ett", 256),
    "ettm1": ("ETTm1/ETTm1.csv", "ETTm1", "ett", 256), "ettm2": ("ETTm2/ETTm2.csv", "ETTm2", "ett", 256),
    "weather": ("weather/weather.csv", "weather", "ratio", 512),
    "electricity": ("electricity/electricity.csv", "electricity", "ratio", 2048),
    "traffic": ("traffic/traffic.csv", "traffic", "ratio", 2048),
    "exchange": ("exchange_rate/exchange_rate.csv", "exchange_rate", "ratio", 32),
    "illness": ("illness/national_illness.csv", "illness", "ratio", 16),
}


@pytest.mark.parametrize("name", sorted(SUITE))
def test_named_data_configs_carry_their_protocol(name):
    cfg, _ = compose_config([f"data={name}"])
    path, dataset, split, batch = SUITE[name]
    assert (cfg.data.path, cfg.data.name, cfg.data.split, cfg.data.batch_size) == (path, dataset, split, batch)
    assert cfg.data.timestamps == "positional" and cfg.data.target == "OT"


@pytest.mark.parametrize("experiment, seq_len, horizon, dataset", [
    ("long_term/etth2_96", 336, 96, "ETTh2"), ("long_term/ettm1_96", 336, 96, "ETTm1"),
    ("long_term/ettm2_96", 336, 96, "ETTm2"), ("long_term/weather_96", 336, 96, "weather"),
    ("long_term/electricity_96", 336, 96, "electricity"), ("long_term/traffic_96", 336, 96, "traffic"),
    ("long_term/exchange_96", 336, 96, "exchange_rate"), ("long_term/illness_24", 104, 24, "illness")])
def test_long_term_experiments_per_dataset(experiment, seq_len, horizon, dataset):
    cfg, _ = compose_config([f"experiment={experiment}"])
    assert (cfg.task.seq_len, cfg.task.horizon, cfg.data.name) == (seq_len, horizon, dataset)
    if dataset == "illness":  # GPT4TS's ILI script: patches of 24, stride 2, batch 16
        assert (cfg.model.patch_len, cfg.model.stride, cfg.data.batch_size) == (24, 2, 16)
    if dataset == "traffic":
        assert cfg.task.module.optimizer.lr == 1e-3 and cfg.task.module.scheduler.T_max == 10


def test_steps_per_hour_of_frequencies():
    assert [steps_per_hour(f) for f in ("h", "15min", "10min", "30min", "D", "MS", None)] == [1, 4, 6, 2, None, None,
                                                                                             None]


def test_ett_split_follows_the_frequency():
    hourly = make_borders("ett", 17420, 336, freq="h")
    minute = make_borders("ett", 69680, 336, freq="15min")
    assert hourly.test == (11520 - 336, 14400) and minute.test == (46080 - 336, 57600)
    with pytest.raises(UserError, match="data.split=ett_hour assumes hourly rows, but ETTm1 is at 15min; use "
                                        "data.split=ett_minute"):
        make_borders("ett_hour", 69680, 336, freq="15min", name="ETTm1")
    with pytest.raises(UserError, match="data.split=ett needs hourly or 15-minute rows, but x is at D"):
        make_borders("ett", 20000, 336, freq="D", name="x")


def _series(n: int, freq: str, columns: int = 2, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = pd.date_range("2020-01-01", periods=n, freq=freq)
    frame = pd.DataFrame(np.sin(np.arange(n) / 20.0)[:, None] + 0.1 * rng.standard_normal((n, columns)),
                         columns=[f"c{i}" for i in range(columns - 1)] + ["OT"])
    frame.insert(0, "date", t.strftime("%Y-%m-%d %H:%M:%S"))
    return frame


def test_explicit_split_contradicting_the_file_is_an_error(tmp_path):
    _series(200, "15min").to_csv(tmp_path / "ETTm9.csv", index=False)
    data = CsvData(path=str(tmp_path / "ETTm9.csv"), split="ett_hour", timestamps="positional")
    with pytest.raises(UserError, match="use data.split=ett_minute"):
        data.load(96, 24)


def weather_shaped(path, n: int = 1500, duplicate_at: int = 700) -> None:
    """A file shaped like TSLib's weather.csv: quoted header with U+FFFD, CRLF lines, one duplicated timestamp."""
    frame = _series(n, "10min", columns=3)
    frame.loc[duplicate_at, "date"] = frame.loc[duplicate_at - 1, "date"]
    frame.columns = ["date", "SWDR (W/m\ufffd)", "wv (m/s)", "OT"]
    frame.to_csv(path, index=False, lineterminator="\r\n", quoting=1, encoding="utf-8")


def test_weather_shaped_file_reads_by_position_with_a_warning(tmp_path, caplog):
    weather_shaped(tmp_path / "weather.csv")
    assert b"\r\n" in (tmp_path / "weather.csv").read_bytes()[:200]
    caplog.set_level(logging.WARNING)
    series = ForecastProtocol(seq_len=96, horizon=24).load(
        CsvData(path="weather.csv", root=str(tmp_path), split="ratio", timestamps="positional"))
    note = ("1 x duplicated timestamp in column 'date': data row 701 (2020-01-05 20:30:00); "
            "kept, rows are read by position")
    assert note in caplog.text
    assert series.meta["repairs"] == [note, "1 x irregular step (usual step 10min) in column 'date': data row 702 "
                                      "(2020-01-05 20:50:00); kept, rows are read by position"]
    assert series.meta["n_rows"] == 1500 and series.freq == "10min"
    assert series.columns == ["SWDR (W/m\ufffd)", "wv (m/s)", "OT"]
    assert series.borders.train == (0, 1050) and series.borders.test == (1500 - 300 - 96, 1500)
    with pytest.raises(UserError, match=r"duplicated timestamp 2020-01-05 20:30:00 in column 'date' \(data row 701\)"):
        CsvData(path="weather.csv", root=str(tmp_path)).load(96, 24)


def test_custom_trains_where_csv_and_forecast_refuse(tmp_path, capsys):
    weather_shaped(tmp_path / "dup.csv")
    common = ["task.seq_len=48", "task.horizon=12", *TINY_OVERRIDES, "trainer.max_steps=1"]
    run = tmp_path / "run"
    assert main(["train", "data=custom", f"data.root={tmp_path}", "data.path=dup.csv", *common,
                 f"hydra.run.dir={run}"]) == 0
    data = json.loads((run / "metrics.json").read_text())["data"]
    assert data["timestamps"] == "positional" and data["split"] == "ratio" and data["n_rows"] == 1500
    assert "duplicated timestamp in column 'date': data row 701" in data["repairs"][0]
    assert main(["train", "data=csv", f"data.path={tmp_path / 'dup.csv'}", "data.target=OT", *common,
                 f"hydra.run.dir={tmp_path / 'strict'}"]) == 2
    assert not (tmp_path / "strict").exists()
    assert main(["forecast", "--run", str(run), "--csv", str(tmp_path / "dup.csv"), "--out",
                 str(tmp_path / "f.csv")]) == 2
    assert "duplicated timestamp" in capsys.readouterr().err and not (tmp_path / "f.csv").exists()


def test_ettm1_gets_minute_borders_even_under_etth1s_experiment(data_root):
    cfg, _ = compose_config(["experiment=long_term/etth1_96", "data.path=ETTm1/ETTm1.csv", f"data.root={data_root}"])
    data = CsvData(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    windowing = ForecastProtocol(seq_len=336, horizon=96)
    series = windowing.load(data)
    assert series.meta["split"] == "ett_minute" and series.borders.test == (46080 - 336, 57600)
    assert len(windowing.datasets(series, channel_independent=True)["test"]) == 11425 * 7 == 79975
