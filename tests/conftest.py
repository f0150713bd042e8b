"""Shared fixtures: the shared benchmark data and tiny GPT-2 configurations.

Tests that read the real benchmark files carry the `data` marker (added to every test that uses the
`data_root` fixture; mark others with `@pytest.mark.data`). Without the files they are skipped with
the reason in the summary, so a fresh clone passes; under CI (`CI=true`, as `.ci/run` sets) a missing
data folder fails them instead, so CI always runs them all.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from one4all.paths import default_data_root

# Never reach for the network in tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The GPT-2 of `debug=tiny` (configs/debug/model/tiny_one4all.yaml), for networks built in Python
# (with 128 positions; the debug config has 256, room for the short-term network's tokens).
TINY_GPT2 = {"n_embd": 32, "n_head": 2, "n_positions": 128}
# The same sizes as a BERT encoder (configs/debug/backbone/tiny_minilm.yaml).
TINY_BERT = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "max_position_embeddings": 128}
# Runs through the CLI/config path shrink every model family with the `debug=tiny` config group.
TINY_OVERRIDES = ["debug=tiny"]


MISSING_DATA = ("shared benchmark data not found (needs ../shared/data beside the checkout or $ONE4ALL_DATA_ROOT; "
                "`one4all data fetch` gets the public files)")


def _shared_data() -> Path | None:
    root = default_data_root()
    return root if root is not None and (root / "ETTh1" / "ETTh1.csv").is_file() else None


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "data: reads the shared benchmark data; skipped where it is missing "
                                       "(fails under CI=true)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "data_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("data") is None or _shared_data() is not None:
        return
    if _in_ci():
        pytest.fail(f"{MISSING_DATA}; CI=true, and CI must run the data tests")
    pytest.skip(MISSING_DATA)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """../shared/data (or $ONE4ALL_DATA_ROOT). Tests read the real files from there."""
    root = _shared_data()
    if root is None:  # only reached from a session fixture of an unmarked test: same policy as the marker
        if _in_ci():
            pytest.fail(f"{MISSING_DATA}; CI=true, and CI must run the data tests")
        pytest.skip(MISSING_DATA)
    return root


# Rows and step of the standard benchmark files that ../shared/data deliberately lacks (registry.yaml).
STAND_INS = {"ETTh2/ETTh2.csv": (17420, "h"), "ETTm2/ETTm2.csv": (69680, "15min"),
             "weather/weather.csv": (52696, "10min"), "electricity/electricity.csv": (26304, "h"),
             "traffic/traffic.csv": (17544, "h"), "illness/national_illness.csv": (966, "7D")}


@pytest.fixture(scope="session")
def suite_root(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared data plus synthetic stand-ins for the standard files it lacks: same rows and step as
    the real file, 3 channels (date, a, b, OT), so that every benchmark config builds in the tests."""
    import numpy as np
    import pandas as pd

    root = tmp_path_factory.mktemp("suite")
    for entry in data_root.iterdir():
        (root / entry.name).symlink_to(entry)
    rng = np.random.default_rng(0)
    for relative, (rows, freq) in STAND_INS.items():
        if (data_root / relative).exists():
            continue
        frame = pd.DataFrame(rng.standard_normal((rows, 3)), columns=["a", "b", "OT"])
        frame.insert(0, "date", pd.date_range("2016-07-01", periods=rows, freq=freq).strftime("%Y-%m-%d %H:%M:%S"))
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(root / relative, index=False, float_format="%.4f")
    return root


@pytest.fixture()
def tiny_overrides(data_root: Path) -> list[str]:
    return [*TINY_OVERRIDES, f"data.root={data_root}"]
