"""CSV reading: date detection, time zones, booleans, line endings, missing values."""

from __future__ import annotations

import numpy as np
import pytest

from one4all.data.readers import read_table
from one4all.errors import UserError
from one4all.paths import resolve_data_file


def test_embedded_vic_elec():
    table = read_table(resolve_data_file(None, "pkg://tsdata.fpp3/vic_elec.csv"))
    # 'Time' (unique, UTC 'Z') wins over 'Date' (48 repeats per day); Date and Holiday are ignored
    assert table.date_col == "Time" and table.columns == ["Demand", "Temperature"]
    assert table.n_rows == 52608 and str(table.timestamps.tz) == "UTC"
    assert table.freq in ("30min", "30T")


def test_exchange_rate_crlf_and_daily_frequency(data_root, tmp_path):
    src = (data_root / "exchange_rate" / "exchange_rate.csv").read_bytes()
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(src.replace(b"\n", b"\r\n"))
    a, b = read_table(data_root / "exchange_rate" / "exchange_rate.csv"), read_table(crlf)
    assert a.freq == "D" and a.columns == ["0", "1", "2", "3", "4", "5", "6", "OT"]
    np.testing.assert_array_equal(a.values, b.values)


def test_short_gaps_interpolate_long_gaps_fail(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("date,y\n2020-01-01,1\n2020-01-02,\n2020-01-03,3\n2020-01-04,4\n")
    assert read_table(path).values[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    path.write_text("date,y\n" + "".join(f"2020-01-{d:02d},{'' if 2 <= d <= 6 else d}\n" for d in range(1, 9)))
    with pytest.raises(UserError, match="max_missing_gap"):
        read_table(path)


def test_duplicated_and_unsorted_timestamps(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("date,y\n2020-01-01,1\n2020-01-01,2\n2020-01-02,3\n")
    with pytest.raises(UserError, match="duplicated"):
        read_table(path, date_col="date")
    path.write_text("date,y\n2020-01-02,1\n2020-01-01,2\n2020-01-03,3\n")
    with pytest.raises(UserError, match="increasing"):
        read_table(path)


def test_no_date_column_and_missing_file(tmp_path):
    path = tmp_path / "nodate.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(UserError, match="no date column"):
        read_table(path)
    with pytest.raises(UserError, match="not found"):
        read_table(tmp_path / "missing.csv")
