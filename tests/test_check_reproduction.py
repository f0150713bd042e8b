"""scripts/check_reproduction.py reads the documented DLinear numbers it reruns."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_reproduction", REPO / "scripts" / "check_reproduction.py")
check_reproduction = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_reproduction)

DOC = """# Benchmarks

| DLinear | not this section | 0.1 / 0.2 / 0.3 |

## Seed-robust reproductions

| model | setting | test MSE, seeds 2021 / 2022 / 2023 | mean ± std |
|---|---|---|---|
| DLinear | L=336, H=96 | 0.4146 / 0.3732 / 0.3703 | **0.3860 ± 0.0248** |

## Next section

| DLinear | also not this one | 0.9 / 0.9 / 0.9 |
"""


def test_reads_the_per_seed_values_of_the_seed_robust_section():
    assert check_reproduction.documented_mse(DOC) == {2021: 0.4146, 2022: 0.3732, 2023: 0.3703}


def test_a_doc_without_the_row_is_an_error():
    with pytest.raises(ValueError, match="no DLinear row"):
        check_reproduction.documented_mse(DOC.replace("| DLinear | L=336", "| PatchTST | L=336"))
    with pytest.raises(ValueError, match="no section"):
        check_reproduction.documented_mse("# Benchmarks\n")


def test_the_docs_hold_the_rerun_row():
    documented = check_reproduction.documented_mse(check_reproduction.DOC.read_text())
    assert sorted(documented) == [2021, 2022, 2023] and all(0.3 < v < 0.5 for v in documented.values())
