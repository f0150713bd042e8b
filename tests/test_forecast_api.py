"""The Python API: `Forecaster` composes the CLI's config, trains with its loop, and round-trips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from one4all import Forecaster
from one4all.api import quote
from one4all.cli import main
from one4all.config import compose_config
from one4all.errors import UserError
from tests.conftest import TINY_OVERRIDES

SETTINGS = [*TINY_OVERRIDES, "task.seq_len=32", "trainer.max_steps=3"]


def sales_frame(n: int = 400) -> pd.DataFrame:
    """Hourly, UTC-zoned, a seasonal target, a driver, a boolean and a text column."""
    t = np.arange(n)
    return pd.DataFrame({
        "when": pd.date_range("2024-03-01", periods=n, freq="h", tz="UTC"),
        "sales": 200 + 50 * np.sin(2 * np.pi * t / 24) + 0.1 * t,
        "price": 9.5 + 0.5 * np.cos(2 * np.pi * t / 168),
        "promo": t % 48 < 6,
        "store": "north",
    })


@pytest.fixture(scope="module")
def fitted() -> Forecaster:
    return Forecaster(target="sales", horizon=12, features="MS", overrides=SETTINGS).fit(sales_frame())


def test_predict_is_the_future_in_data_units(fitted):
    got = fitted.predict(sales_frame())
    assert list(got.columns) == ["date", "sales"] and len(got) == 12
    # 400 hourly rows from 2024-03-01 00:00 UTC end at 2024-03-17 15:00 UTC
    assert got["date"].iloc[0] == pd.Timestamp("2024-03-17 16:00", tz="UTC")
    assert got["date"].iloc[-1] == pd.Timestamp("2024-03-18 03:00", tz="UTC")
    assert 100 < got["sales"].mean() < 400
    assert len(fitted.predict(sales_frame(), horizon=3)) == 3
    assert fitted.metrics["data"]["n_channels"] == 2  # price and sales; promo and store ignored


def test_round_trip_in_a_new_process_is_identical(fitted, tmp_path):
    expected = fitted.predict(sales_frame())
    saved = fitted.save(tmp_path / "model")
    sales_frame().to_csv(tmp_path / "history.csv", index=False)
    script = (
        "import numpy as np\n"
        "from one4all import Forecaster\n"
        f"f = Forecaster.load({str(saved)!r})\n"
        f"out = f.predict({str(tmp_path / 'history.csv')!r})\n"
        f"np.save({str(tmp_path / 'values.npy')!r}, out['sales'].to_numpy())\n"
        f"open({str(tmp_path / 'dates.txt')!r}, 'w').write('\\n'.join(map(str, out['date'])))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parent.parent)
    assert np.array_equal(np.load(tmp_path / "values.npy"), expected["sales"].to_numpy())
    assert (tmp_path / "dates.txt").read_text().splitlines() == [str(d) for d in expected["date"]]
    loaded = Forecaster.load(saved)
    assert (loaded.target, loaded.horizon, loaded.features, loaded.seq_len) == ("sales", 12, "MS", 32)


def test_api_and_cli_compose_the_same_config_and_train_the_same_model(tmp_path):
    frame = sales_frame(300)
    csv = tmp_path / "sales.csv"
    frame.to_csv(csv, index=False)
    api = Forecaster(target="sales", horizon=12, features="MS", overrides=SETTINGS, run_dir=tmp_path / "api")
    cli_args = ["data=csv", f"data.path={csv}", "data.target=sales", "task.horizon=12", "data.features=MS", *SETTINGS]
    api_cfg = OmegaConf.to_container(compose_config(api.config_overrides())[0])
    cli_cfg = OmegaConf.to_container(compose_config(cli_args)[0])
    api_data, cli_data = api_cfg.pop("data"), cli_cfg.pop("data")
    assert api_cfg == cli_cfg
    assert {k: v for k, v in api_data.items() if k != "_target_"} == {
        k: v for k, v in cli_data.items() if k not in ("_target_", "path", "root", "name")} | {"name": "dataframe"}
    api.fit(frame)
    assert main(["train", *cli_args, f"hydra.run.dir={tmp_path / 'cli'}"]) == 0
    from_cli = Forecaster.load(tmp_path / "cli").predict(frame)
    pd.testing.assert_frame_equal(api.predict(frame), from_cli)
    assert (tmp_path / "api" / "metrics.json").is_file()


def test_datetime_index_and_errors(fitted):
    indexed = sales_frame().set_index("when")
    pd.testing.assert_frame_equal(fitted.predict(indexed), fitted.predict(sales_frame()))
    with pytest.raises(UserError, match="lacks column\\(s\\) \\['price'\\]"):
        fitted.predict(sales_frame().drop(columns=["price"]))
    with pytest.raises(UserError, match="not trained"):
        Forecaster(target="sales").predict(sales_frame())
    with pytest.raises(UserError, match="expected a pandas DataFrame"):
        Forecaster(target="sales", overrides=SETTINGS).fit(sales_frame().to_numpy())


def test_quote_keeps_values_literal():
    cfg, _ = compose_config(["data=csv", f"data.path={quote('my file.csv')}", f"data.target={quote('0')}",
                             f"data.date_col={quote(chr(39) + 'Zeit' + chr(92))}"])
    assert (cfg.data.path, cfg.data.target, cfg.data.date_col) == ("my file.csv", "0", "'Zeit\\")
