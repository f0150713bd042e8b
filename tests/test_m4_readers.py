"""M4 csv and M3 workbook readers on the real files; Naive2 on M4 Hourly equals the competition's."""

from __future__ import annotations

import numpy as np
import pytest

from one4all.data.formats.m4 import read_m4_file
from one4all.data.sources.competitions import M3Data, M4Data
from one4all.errors import UserError
from one4all.metrics import mase, smape
from one4all.naive2 import is_seasonal, naive2


@pytest.fixture(scope="module")
def hourly(data_root):
    return M4Data("Hourly", root=str(data_root)).load()


def test_m4_hourly_reader(hourly):
    assert hourly.n_series == 414 and hourly.horizon == 48 and hourly.seasonality == 24
    assert hourly.ids[:2] == ["H1", "H2"] and hourly.ids[-1] == "H414"
    assert min(map(len, hourly.train)) == 700 and max(map(len, hourly.train)) == 960
    assert all(len(t) == 48 for t in hourly.test)
    assert hourly.train[0][:5].tolist() == [605, 586, 586, 559, 511]
    assert hourly.test[0][:5].tolist() == [619, 565, 532, 495, 481]
    assert not any(np.isnan(s).any() for s in hourly.train)


def test_naive2_reproduces_the_published_m4_hourly_benchmark(hourly):
    # M4 competition (Makridakis et al. 2020), Naive2 on Hourly: sMAPE 18.383, MASE 2.395.
    forecasts = [naive2(s, 24, 48) for s in hourly.train]
    assert np.mean([smape(f, t) for f, t in zip(forecasts, hourly.test)]) == pytest.approx(18.383, abs=5e-4)
    assert np.mean([mase(f, t, s, 24) for f, t, s in zip(forecasts, hourly.test, hourly.train)]) == pytest.approx(
        2.395, abs=5e-4)
    assert sum(is_seasonal(s, 24) for s in hourly.train) == 413


def test_m4_trailing_cells_and_gaps(tmp_path):
    path = tmp_path / "Toy-train.csv"
    path.write_text('"V1","V2","V3","V4"\n"T1","1","2","3"\n"T2","4","5",\n')
    ids, series = read_m4_file(path)
    assert ids == ["T1", "T2"] and [s.tolist() for s in series] == [[1, 2, 3], [4, 5]]
    path.write_text('"V1","V2","V3","V4"\n"T1","1",,"3"\n')
    with pytest.raises(UserError, match="gap"):
        read_m4_file(path)
    with pytest.raises(UserError, match="data.root"):
        read_m4_file(tmp_path / "missing.csv")
    with pytest.raises(UserError, match="Hourly"):
        M4Data("Minutely")


def test_m4_test_file_must_match(tmp_path):
    for part, rows in (("Train", '"H1","1","2"\n"H2","3","4"\n'), ("Test", '"H2","1","2"\n"H1","3","4"\n')):
        (tmp_path / "M4" / part).mkdir(parents=True)
        (tmp_path / "M4" / part / f"Yearly-{part.lower()}.csv").write_text('"V1","V2","V3"\n' + rows)
    with pytest.raises(UserError, match="different series"):
        M4Data("Yearly", root=str(tmp_path)).load()


@pytest.mark.parametrize("group,n,horizon,m,shortest", [("Yearly", 645, 6, 1, 14), ("Quarterly", 756, 8, 4, 16),
                                                         ("Monthly", 1428, 18, 12, 48), ("Other", 174, 8, 1, 63)])
def test_m3_groups(data_root, group, n, horizon, m, shortest):
    c = M3Data(group, root=str(data_root)).load()
    assert (c.n_series, c.horizon, c.seasonality, min(map(len, c.train))) == (n, horizon, m, shortest)
    assert all(len(t) == horizon for t in c.test)


def test_m3_other_values(data_root):
    c = M3Data("Other", root=str(data_root)).load()
    # N2830: N = 104 values, of which the last NF = 8 are the test horizon
    assert c.ids[0] == "N2830" and len(c.train[0]) == 96
    assert c.train[0][:3].tolist() == [3060.42, 3021.19, 3301.13]
    assert c.test[0][:3].tolist() == [4381.08, 4405.63, 4377.02]
    with pytest.raises(UserError, match="M3C.xls"):
        M3Data("Other", root=str(data_root), path="M3/none.xls").load()
