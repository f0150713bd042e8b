"""M3 competition workbook (`M3C.xls`): one sheet per frequency group.

Columns: `Series, N, NF, Category, <start columns>`, then the N values. `N` includes the last `NF`
values, which are the competition's test horizon (Yearly 6, Quarterly 8, Monthly 18, Other 8).
"""

from __future__ import annotations

import numpy as np
import xlrd

from one4all.errors import UserError

# group: (sheet, horizon, seasonal period m, sampling history in horizons)
M3_GROUPS: dict[str, tuple[str, int, int, float]] = {
    "Yearly": ("M3Year", 6, 1, 1.5),
    "Quarterly": ("M3Quart", 8, 4, 1.5),
    "Monthly": ("M3Month", 18, 12, 1.5),
    "Other": ("M3Other", 8, 1, 10.0),
}
_FIRST_VALUE_COLUMN = 6


def read_m3_sheet(path, sheet: str) -> tuple[list[str], list[np.ndarray], list[int]]:
    """Series ids, full series (in-sample + test) and NF of one sheet of the workbook."""
    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except FileNotFoundError as err:
        raise UserError(f"M3 workbook not found: {path}; set data.root to the folder holding M3/M3C.xls") from err
    except xlrd.XLRDError as err:
        raise UserError(f"{path} is not the M3 .xls workbook ({err}); use M3C.xls") from err
    if sheet not in book.sheet_names():
        raise UserError(f"{path} has no sheet {sheet!r} (sheets: {book.sheet_names()}); use M3C.xls")
    rows = book.sheet_by_name(sheet)
    header = [str(v).strip() for v in rows.row_values(0)[:3]]
    if header != ["Series", "N", "NF"]:
        raise UserError(f"{path}:{sheet} starts with columns {header}, expected Series, N, NF; use M3C.xls")
    ids, series, nf = [], [], []
    for r in range(1, rows.nrows):
        row = rows.row_values(r)
        n = int(row[1])
        values = np.asarray(row[_FIRST_VALUE_COLUMN:_FIRST_VALUE_COLUMN + n], dtype=np.float64)
        if len(values) != n:
            raise UserError(f"{path}:{sheet} row {r + 1} declares N={n} but has {len(values)} values")
        ids.append("".join(str(row[0]).split()))  # "N   1" -> "N1"
        series.append(values)
        nf.append(int(row[2]))
    book.release_resources()
    return ids, series, nf


