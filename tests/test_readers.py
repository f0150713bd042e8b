"""CSV reading: date detection, time zones, booleans, line endings, missing values."""

from __future__ import annotations

import numpy as np
import pytest

from one4all.data.formats.table import read_table
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


def _write(tmp_path, text: str | bytes, name: str = "f.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_utc_zone_is_kept_and_booleans_are_ignored_unless_listed(tmp_path, caplog):
    rows = "".join(f"2011-12-31T{13 + i // 2}:{30 * (i % 2):02d}:00Z,{i},{'TRUE' if i < 2 else 'FALSE'}\n"
                   for i in range(4))
    path = _write(tmp_path, "Time,Demand,Holiday\n" + rows)
    table = read_table(path)
    assert str(table.timestamps.tz) == "UTC" and table.timestamps[0].hour == 13 and table.freq == "30min"
    assert table.columns == ["Demand"] and "Holiday (boolean)" in caplog.text
    assert read_table(path, columns=["Demand", "Holiday"]).values[:, 1].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_daylight_saving_offsets_become_utc(tmp_path, caplog):
    # Melbourne leaves daylight saving at 2020-04-05 03:00 +11:00 -> 02:00 +10:00: hourly in UTC
    path = _write(tmp_path, "date,y\n2020-04-05T01:00:00+11:00,1\n2020-04-05T02:00:00+11:00,2\n"
                            "2020-04-05T02:00:00+10:00,3\n2020-04-05T03:00:00+10:00,4\n")
    table = read_table(path)
    assert str(table.timestamps.tz) == "UTC" and table.freq == "h" and "converted to UTC" in caplog.text
    assert str(table.timestamps[0]) == "2020-04-04 14:00:00+00:00"


def test_semicolons_and_crlf(tmp_path):
    table = read_table(_write(tmp_path, "date;a;b\r\n2020-01-01;1;2\r\n2020-01-02;3;4\r\n2020-01-03;5;6\r\n"))
    assert table.columns == ["a", "b"] and table.values.tolist() == [[1, 2], [3, 4], [5, 6]] and table.freq == "D"


BAD_FILES = {
    "header only": ("date,y\n", "has a header but no data rows"),
    "empty": ("", "is empty"),
    "binary": (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "is a binary file, not a CSV"),
    "latin-1": ("date,y\n2020-01-01,caf\xe9\n".encode("latin-1"), "not a UTF-8 text CSV"),
    "ragged": ("date,y\n2020-01-01,1\n2020-01-02,1,2\n", "could not be parsed as CSV"),
    "zone and no zone": ("date,y\n2020-01-01T00:00Z,1\n2020-01-02T00:00,2\n2020-01-03T00:00Z,3\n",
                         "mixes timestamps with and without a time zone (data row 2: '2020-01-02T00:00')"),
    "date column unparseable": ("date,y\nmonday,1\ntuesday,2\n", "no date column found: ['date'] hold no parseable"),
    "unparseable": ("date,y\n2020-01-01,1\nyesterday,2\n2020-01-03,3\n",
                    "unparseable timestamp 'yesterday' in column 'date' at data row 2"),
    "irregular": ("date,y\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n2020-01-05,4\n",
                  "the usual step is 1 days 00:00:00 but data row 4 (2020-01-05 00:00:00) comes 2 days"),
    "non-numeric": ("date,y\n" + "".join(f"2020-01-{d:02d},{d}\n" for d in range(1, 30)) + "2020-01-30,abc\n",
                    "non-numeric value 'abc' at data row 30"),
    "inf run": ("date,y\n2020-01-01,1\n2020-01-02,inf\n2020-01-03,-inf\n2020-01-04,nan\n2020-01-05,\n2020-01-06,6\n",
                "4 consecutive missing/inf values (from data row 2)"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files(case, tmp_path):
    content, message = BAD_FILES[case]
    with pytest.raises(UserError) as err:
        read_table(_write(tmp_path, content))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_given_frequency_must_match_the_timestamps(tmp_path):
    path = _write(tmp_path, "date,y\n2020-01-06,1\n2020-01-07,2\n2020-01-08,3\n2020-01-09,4\n2020-01-10,5\n"
                            "2020-01-13,6\n")
    assert read_table(path, freq="B").freq == "B"  # business days skip the weekend
    with pytest.raises(UserError, match="not on a regular D grid \\(data row 6 is 2020-01-13 00:00:00, expected "
                                        "2020-01-11"):
        read_table(path, freq="D")
    with pytest.raises(UserError, match="unknown frequency 'fortnightly'"):
        read_table(path, freq="fortnightly")


def test_ratio_split_names_the_rows_it_needs():
    # seq_len 96, horizon 24: train int(0.7 n) >= 120, val and test >= 24 rows of their own. int() rounding
    # makes val 24, 23, 23, 24, 24, 24, 23, 24 rows for n = 224..231: 224 fits, 230 not, from 231 on all do.
    from one4all.data.splits import ratio_borders, ratio_min_rows

    assert ratio_min_rows(96, 24) == 231 and ratio_min_rows(336, 96) == 951 and ratio_min_rows(96) == 138
    assert ratio_borders(231, 96, 24).as_dict() == {"train": [0, 161], "val": [65, 185], "test": [89, 231]}
    with pytest.raises(UserError, match="226 rows are too few: seq_len=96 \\+ horizon=24 .* needs at least 231"):
        ratio_borders(226, 96, 24)


def test_numeric_column_names_from_the_command_line(data_root):
    from one4all.data.sources.table import CsvData

    # `data.target=6` arrives as the int 6; exchange_rate's column is the string "6"
    loaded = CsvData("exchange_rate/exchange_rate.csv", root=str(data_root), features="S", target=6).load(96, 24)
    assert loaded.columns == ["6"] and loaded.freq == "D"
    # 7588 rows: train int(5311.6) = 5311, test int(1517.6) = 1517, val 760; val/test start 96 rows early
    assert loaded.borders.as_dict() == {"train": [0, 5311], "val": [5215, 6071], "test": [5975, 7588]}
