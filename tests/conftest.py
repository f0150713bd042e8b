"""Shared fixtures: the shared benchmark data and tiny GPT-2 configurations."""

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
# Runs through the CLI/config path shrink every model family with the `debug=tiny` config group.
TINY_OVERRIDES = ["debug=tiny"]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """../shared/data (or $ONE4ALL_DATA_ROOT). Tests read the real files from there."""
    root = default_data_root()
    if root is None or not (root / "ETTh1" / "ETTh1.csv").is_file():
        pytest.fail("shared data not found: put ../shared/data beside the checkout or set ONE4ALL_DATA_ROOT")
    return root


@pytest.fixture()
def tiny_overrides(data_root: Path) -> list[str]:
    return [*TINY_OVERRIDES, f"data.root={data_root}"]
