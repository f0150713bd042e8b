"""Backtests: forecasts from rolling origins (cutoffs) in the past, scored against what happened.

Cutoffs are points in time shared by all series: the last is `h` steps before the latest timestamp
of the data, the others `step_size` steps apart before it (with series that all end together these
are neuralforecast's cutoffs). A model trained only on rows up to the first cutoff (or, with
`refit=True`, a model per cutoff trained on rows up to it) forecasts the `h` steps after each cutoff
from the history up to that cutoff; rows `unique_id, ds, cutoff, y, <model>` (+ interval bounds)
keep every forecast step whose true value was given. Series that end before a window get fewer
(or no) rows there; series without `seq_len` rows up to a cutoff are skipped for it and named.

`evaluate` summarises a backtest per horizon step, per cutoff and overall: MAE, MSE, sMAPE (percent,
M4), MASE (scaled by the seasonal-naive error of each series' history up to the cutoff) and the
empirical coverage of every interval level.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from one4all.config import build_object, compose_config, quote
from one4all.conformal import check_levels
from one4all.data.formats.long import Panel, frame_to_panel, grid_steps, shift_stamps
from one4all.data.windows.panel import PanelProtocol
from one4all.errors import UserError
from one4all.fitting import fit
from one4all.metrics import mase_scale, smape_terms
from one4all.panel_forecast import PanelForecastModel
from one4all.validation import check_config

log = logging.getLogger(__name__)

CUTOFF = "cutoff"


def season_length(freq: str) -> int:
    """The seasonal period MASE compares with: a day of sub-daily steps, a week of days, a year of months..."""
    offset = to_offset(freq)
    name = offset.name.split("-")[0].upper()
    try:
        step = pd.Timedelta(offset)
    except ValueError:
        step = None
    if step is not None and step < pd.Timedelta(days=1) and pd.Timedelta(days=1) % step == pd.Timedelta(0):
        return int(pd.Timedelta(days=1) / step)
    periods = {"D": 7, "B": 5, "W": 52, "M": 12, "ME": 12, "MS": 12, "BM": 12, "BME": 12, "BMS": 12,
               "Q": 4, "QE": 4, "QS": 4, "BQ": 4, "BQE": 4, "BQS": 4}
    return periods.get(name, 1) if offset.n == 1 else 1


def cutoffs(panel: Panel, n_windows: int, step_size: int, h: int) -> pd.DatetimeIndex:
    """`n_windows` shared forecast origins, the last `h` steps before the data's latest timestamp."""
    if n_windows < 1 or step_size < 1 or h < 1:
        raise UserError(f"n_windows={n_windows}, step_size={step_size} and h={h} must all be at least 1")
    last = panel.ends().max()
    back = h + step_size * np.arange(n_windows - 1, -1, -1)
    return shift_stamps(pd.DatetimeIndex([last] * n_windows), -back, panel.freq)


def _origin_rows(model: PanelForecastModel, panel: Panel, cutoff: pd.Timestamp, h: int,
                 levels: list[float]) -> pd.DataFrame:
    forecast = model.forecast(panel.truncate(cutoff), h, levels)
    forecast.insert(2, CUTOFF, cutoff)
    return forecast


def cross_validate(overrides: list[str], data_inputs: dict[str, Any], n_windows: int, step_size: int | None,
                   h: int | None, refit: bool, level: list[float] | None, run_dir: Path, alias: str | None = None
                   ) -> tuple[pd.DataFrame, Panel]:
    """Backtest the `one4all train` config of `overrides` (data=long); each fold's run goes to
    `run_dir/fold_<k>`. Returns the rows `unique_id, ds, cutoff, y, <model>, ...` (the forecast column
    named `alias` if given, else after the network) and the full panel."""
    levels = check_levels(level)
    cfg, _ = compose_config([*overrides, f"hydra.run.dir={quote(run_dir)}"])
    check_config(cfg)  # a wrong value is one line before anything below reads it
    if not isinstance(build_object(cfg.task.protocol), PanelProtocol):
        raise UserError("backtests take long-format data: data=long data.path=FILE (Python: a DataFrame with "
                        "unique_id, ds, y); reshape a wide table with DataFrame.melt")
    spec = build_object(cfg.data, **data_inputs)
    panel = spec.read()
    horizon = int(cfg.task.horizon)
    h = horizon if h is None else int(h)
    if not 1 <= h <= horizon:
        raise UserError(f"h={h} is outside 1..{horizon} (task.horizon); set task.horizon={h} to backtest {h} steps")
    origins = cutoffs(panel, int(n_windows), h if step_size is None else int(step_size), h)
    folds = [(k, [c]) for k, c in enumerate(origins)] if refit else [(0, list(origins))]
    truth = panel.to_frame(spec.id_col, spec.time_col)[[spec.id_col, spec.time_col, spec.target_col]]
    parts = []
    for k, fold_origins in folds:
        fold_dir = run_dir / f"fold_{k}"
        fold_cfg, _ = compose_config([*overrides, f"data.cutoff={quote(fold_origins[0])}", "data.test_size=0",
                                      f"hydra.run.dir={quote(fold_dir)}"])
        log.info("backtest fold %d: training on rows up to %s", k, fold_origins[0])
        fit(fold_cfg, fold_dir, data_inputs)
        model = PanelForecastModel.load(fold_dir)
        if alias:
            model.manifest["alias"] = alias
        parts += [_origin_rows(model, panel, c, h, levels) for c in fold_origins]
    rows = pd.concat(parts, ignore_index=True).merge(truth, on=[spec.id_col, spec.time_col], how="inner")
    name = model.name
    order = [spec.id_col, spec.time_col, CUTOFF, spec.target_col, name]
    rows = rows[order + [c for c in rows.columns if c not in order]]
    position = {value: i for i, value in enumerate(panel.ids)}
    rank = rows[spec.id_col].map(position)
    rows = rows.assign(_rank=rank).sort_values(["_rank", CUTOFF, spec.time_col], kind="stable")
    return rows.drop(columns="_rank").reset_index(drop=True), panel


def _model_column(cv: pd.DataFrame, id_col: str, time_col: str, target_col: str) -> str:
    names = [c for c in cv.columns if c not in (id_col, time_col, CUTOFF, target_col)
             and "-lo-" not in c and "-hi-" not in c]
    if len(names) != 1:
        raise UserError(f"expected one forecast column besides {id_col}, {time_col}, {CUTOFF}, {target_col} and "
                        f"interval bounds, found {names}")
    return names[0]


def _steps_after(cutoff: pd.Series, stamps: pd.Series, freq: str) -> np.ndarray:
    """Horizon step of each row: 1 for the first step after its cutoff."""
    try:
        step = pd.Timedelta(to_offset(freq))
    except ValueError:  # calendar frequencies: count grid points one by one
        return np.array([grid_steps(c, t, freq) - 1 for c, t in zip(cutoff, stamps)], dtype=np.int64)
    delta = pd.DatetimeIndex(stamps) - pd.DatetimeIndex(cutoff)
    return np.asarray(delta / step).round().astype(np.int64)


def _mase_scales(cv: pd.DataFrame, panel: Panel, id_col: str, season: int) -> np.ndarray:
    """Per row: the seasonal-naive in-sample MAE of its series' history up to its cutoff (NaN if too short)."""
    position = {value: i for i, value in enumerate(panel.ids)}
    scales: dict[tuple, float] = {}
    for key in cv[[id_col, CUTOFF]].drop_duplicates().itertuples(index=False):
        i = position.get(key[0])
        if i is None:
            scales[tuple(key)] = np.nan
            continue
        n = min(int(panel.lengths[i]), grid_steps(panel.starts[i], key[1], panel.freq))
        history = panel.series(i)[:n, -1]
        scales[tuple(key)] = mase_scale(history, season) if n > season else np.nan
    return np.array([scales[tuple(k)] for k in cv[[id_col, CUTOFF]].itertuples(index=False)])


def _summary_of(terms: pd.DataFrame, by: str | None) -> pd.DataFrame:
    metrics = [c for c in terms.columns if c not in ("step", CUTOFF)]
    grouped = terms[metrics].agg("mean").to_frame().T if by is None else terms.groupby(by)[metrics].mean()
    counts = len(terms) if by is None else terms.groupby(by).size()
    out = grouped.assign(n_points=counts)
    return out[["n_points", *metrics]].reset_index(drop=by is None)


def evaluate_panel(cv: pd.DataFrame, panel: Panel, level: list[float] | None = None, season: int | None = None,
                   id_col: str = "unique_id", time_col: str = "ds", target_col: str = "y") -> dict[str, Any]:
    """`evaluate` with the history already parsed into a `Panel`."""
    name = _model_column(cv, id_col, time_col, target_col)
    levels = check_levels(level) or sorted(
        {float(c.rsplit("-lo-", 1)[1]) for c in cv.columns if c.startswith(f"{name}-lo-")})
    season = season_length(panel.freq) if season is None else int(season)
    true, pred = cv[target_col].to_numpy(np.float64), cv[name].to_numpy(np.float64)
    err = pred - true
    terms = pd.DataFrame({"step": _steps_after(cv[CUTOFF], cv[time_col], panel.freq), CUTOFF: cv[CUTOFF],
                          "mae": np.abs(err), "mse": err ** 2, "smape": smape_terms(pred, true),
                          "mase": np.abs(err) / _mase_scales(cv, panel, id_col, season)})
    for a in levels:
        label = str(int(a)) if float(a).is_integer() else str(a)
        lo, hi = f"{name}-lo-{label}", f"{name}-hi-{label}"
        if lo not in cv.columns or hi not in cv.columns:
            raise UserError(f"level {label}: the backtest has no {lo} / {hi} columns; run it with level=[{label}]")
        terms[f"coverage_{label}"] = ((cv[lo] <= cv[target_col]) & (cv[target_col] <= cv[hi])).astype(float)
    overall = _summary_of(terms, None).iloc[0].to_dict()
    return {"model": name, "season_length": season, "overall": {k: float(v) for k, v in overall.items()},
            "by_step": _summary_of(terms, "step"), "by_cutoff": _summary_of(terms, CUTOFF)}


def evaluate(cv: pd.DataFrame, history: pd.DataFrame, level: list[float] | None = None,
             season_length: int | None = None, id_col: str = "unique_id", time_col: str = "ds",
             target_col: str = "y", freq: str | None = None) -> dict[str, Any]:
    """Summarise a `cross_validation` frame: {"overall": {...}, "by_step": frame, "by_cutoff": frame}.

    `history` is the long-format data the backtest ran on (for MASE's in-sample scale). Metrics are
    means over all scored points: mae, mse, smape (percent), mase, and coverage_<level> for intervals.
    """
    # Only the in-sample scale is read from the history: any gap may be bridged for it.
    panel = frame_to_panel(history, id_col, time_col, target_col, None, freq, max_missing_gap=len(history))
    return evaluate_panel(cv, panel, level, season_length, id_col, time_col, target_col)
