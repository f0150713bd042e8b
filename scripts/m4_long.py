"""Reshape an M4 competition file into long format (`unique_id, ds, y`) for `data=long` and backtests.

    python scripts/m4_long.py ../shared/data/M4/Train/Hourly-train.csv m4_hourly.csv [--series 60] [--freq h]

Every series gets timestamps at `--freq` ending at `--end` (M4's start dates are in M4-info.csv,
which the shared data lacks), so series of different lengths start at different times and end
together. Written at run time; never commit the output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from one4all.data.formats.m4 import m4_long_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("m4_csv", type=Path, help="an M4 train file, e.g. M4/Train/Hourly-train.csv")
    parser.add_argument("out", type=Path, help="long-format CSV (or .parquet) to write")
    parser.add_argument("--series", type=int, help="keep the first N series (default: all)")
    parser.add_argument("--freq", default="h", help="pandas frequency of the timestamps (default: h)")
    parser.add_argument("--end", default="2017-01-01", help="the last timestamp of every series")
    args = parser.parse_args()
    frame = m4_long_frame(args.m4_csv, args.series, args.freq, args.end)
    if args.out.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(args.out, index=False)
    else:
        frame.to_csv(args.out, index=False)
    print(f"{frame['unique_id'].nunique()} series, {len(frame)} rows -> {args.out}")


if __name__ == "__main__":
    main()
