"""M4 competition files: `<root>/M4/Train/<Frequency>-train.csv` and `.../Test/<Frequency>-test.csv`.

One row per series: the id (`V1`), then the values with quoted headers `V2`, `V3`, ...; shorter
series leave trailing cells empty. `M4-info.csv` is not needed: horizon and seasonal period per
frequency are the competition's (table below).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from one4all.errors import UserError

# frequency: (horizon, seasonal period m, sampling history in horizons: TSLib's M4Meta.history_size)
M4_FREQUENCIES: dict[str, tuple[int, int, float]] = {
    "Yearly": (6, 1, 1.5),
    "Quarterly": (8, 4, 1.5),
    "Monthly": (18, 12, 1.5),
    "Weekly": (13, 1, 10.0),
    "Daily": (14, 1, 10.0),
    "Hourly": (48, 24, 10.0),
}


def read_m4_file(path: Path) -> tuple[list[str], list[np.ndarray]]:
    """Series ids and values of one M4 csv; trailing empty cells are dropped, gaps inside a series are errors."""
    if not path.is_file():
        raise UserError(f"M4 file not found: {path}; set data.root to the folder holding M4/Train and M4/Test")
    try:
        frame = pd.read_csv(path, index_col=0, dtype={0: str})
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"{path} is not an M4 csv ({str(err).splitlines()[0]}); use the competition files") from err
    ids = [str(i).strip() for i in frame.index]
    values = frame.to_numpy(dtype=np.float64)
    series = []
    for sid, row in zip(ids, values):
        observed = ~np.isnan(row)
        length = int(observed.sum())
        if length == 0 or not observed[:length].all():
            raise UserError(f"{path}: series {sid} is empty or has a gap; M4 rows hold values then empty cells")
        series.append(row[:length])
    return ids, series




def m4_long_frame(path: Path, series: int | None = None, freq: str = "h", end: str = "2017-01-01") -> pd.DataFrame:
    """The first `series` series (all if None) of an M4 file in long format (`unique_id, ds, y`).

    M4's start dates are in M4-info.csv, which is not needed elsewhere: every series gets timestamps
    at `freq` ending at `end`, so series of different lengths start at different times and end together.
    """
    ids, values = read_m4_file(path)
    keep = slice(None) if series is None else slice(series)
    parts = [pd.DataFrame({"unique_id": sid, "ds": pd.date_range(end=end, periods=len(y), freq=freq), "y": y})
             for sid, y in zip(ids[keep], values[keep])]
    return pd.concat(parts, ignore_index=True)
