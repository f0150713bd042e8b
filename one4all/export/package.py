"""`one4all export`: a trained forecasting run -> a self-contained inference package (all or nothing).

The package folder holds the model (`model.pt` or `model.onnx`), `package.json` (data schema,
scaler, frequency as calendar arithmetic, sizes) and `predict.py` (a copy of `one4all/deploy.py`),
so that a device with numpy and torch (or onnxruntime) forecasts from a CSV without one4all.
The package is built in a staging folder beside `--out`, checked by loading it back with its own
loader and comparing with the run's network, and only then renamed to `--out`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pandas.tseries import offsets
from pandas.tseries.frequencies import to_offset

from one4all import __version__, deploy
from one4all.atomic import umask_mode
from one4all.errors import UserError
from one4all.export.formats import FORMATS, check_options, write_onnx, write_torchscript
from one4all.export.graph import build_graph, forecast_layout
from one4all.forecast import ForecastModel

# fp32 exports must reproduce the run's network to this (max abs, scaled units); the acceptance
# bound is 1e-4, and a correct export differs by float rounding only (~1e-6).
FP32_TOLERANCE = 1e-4
PROBE_BATCH = 3  # the check batch differs from the trace example's (2), so a frozen batch size shows


def calendar_step(freq: str) -> dict[str, Any]:
    """A pandas frequency as the calendar arithmetic `deploy.Step` does with the standard library."""
    offset = to_offset(freq)
    day = 86_400_000_000
    if isinstance(offset, offsets.Tick):
        if offset.nanos % 1000:
            raise UserError(f"frequency {freq} is finer than a microsecond; the export's dates need whole microseconds")
        return {"unit": "microseconds", "n": offset.nanos // 1000}
    if type(offset) is offsets.Day:
        return {"unit": "microseconds", "n": offset.n * day}
    if type(offset) is offsets.Week:
        return {"unit": "microseconds", "n": offset.n * 7 * day}
    months = {offsets.MonthBegin: (1, "start"), offsets.MonthEnd: (1, "end"), offsets.QuarterBegin: (3, "start"),
              offsets.QuarterEnd: (3, "end"), offsets.YearBegin: (12, "start"), offsets.YearEnd: (12, "end")}
    if type(offset) in months:
        size, anchor = months[type(offset)]
        return {"unit": "months", "n": offset.n * size, "anchor": anchor}
    if type(offset) is offsets.BusinessDay and not offset.offset:
        return {"unit": "business_days", "n": offset.n}
    raise UserError(f"the run's data frequency {freq} is not supported by the export (fixed steps, weeks, months, "
                    "quarters, years and business days are); resample the series to one of those and retrain")


def package_schema(model: ForecastModel, fmt: str, dtype: str, quantize: str | None,
                   channel_independent: bool) -> dict[str, Any]:
    """The `package.json` of an export of `model`."""
    schema = model.schema
    if not schema.get("freq"):
        raise UserError("the run's data has no timestamps/frequency, so its forecasts have no dates; "
                        "export a run trained on a CSV with a date column")
    return {
        "format": deploy.FORMAT,
        "version": deploy.VERSION,
        "runtime": fmt,
        "model_file": FORMATS[fmt],
        "dtype": dtype,
        "quantize": quantize,
        "seq_len": model.seq_len,
        "horizon": model.horizon,
        "channel_independent": channel_independent,
        "columns": model.columns,
        "target_channels": list(schema["target_channels"]),
        "date_col": schema["date_col"],
        "freq": schema["freq"],
        "step": calendar_step(schema["freq"]),
        "max_missing_gap": int(schema.get("max_missing_gap", 3)),
        "scaler": schema["scaler"],
        "run_precision": model.manifest.get("precision", "32-true"),
        "exported_with": {"one4all": __version__, "torch": torch.__version__},
    }


def export_run(run: str | Path, out: str | Path, fmt: str = "torchscript", dtype: str = "fp32",
               quantize: str | None = None) -> dict[str, Any]:
    """Export the forecasting run `run` to the new folder `out`; returns the written `package.json`."""
    check_options(fmt, dtype, quantize)
    out = Path(out).expanduser()
    if out.exists():
        raise UserError(f"--out {out} already exists; give a new folder (an export never overwrites)")
    model = ForecastModel.load(run)
    independent = forecast_layout(model.network).channel_independent
    schema = package_schema(model, fmt, dtype, quantize, independent)
    channels = 1 if independent else len(model.columns)
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(PROBE_BATCH, model.seq_len, channels, generator=generator)
    with torch.no_grad():  # the network before merging: what the export must reproduce
        expected = model.network(probe).numpy()
    graph = build_graph(model.network)
    example = torch.randn(2, model.seq_len, channels, generator=generator)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        if fmt == "torchscript":
            write_torchscript(graph, example, staging / FORMATS[fmt], dtype, quantize)
        else:
            write_onnx(graph, example, staging / FORMATS[fmt], quantize)
        shutil.copyfile(deploy.__file__, staging / "predict.py")
        (staging / deploy.SCHEMA).write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        got = deploy.Package.load(staging).predict_scaled(probe.numpy())
        if got.shape != expected.shape or not np.isfinite(got).all():
            raise UserError(f"the exported {dtype} model gives non-finite or misshaped forecasts on a probe batch "
                            f"({got.shape}); export in fp32 instead")
        diff = float(abs(got - expected).max())
        if diff > FP32_TOLERANCE and dtype == "fp32" and quantize is None:
            raise UserError(f"the exported model does not reproduce the run's network (max abs diff {diff:.2e} > "
                            f"{FP32_TOLERANCE:g}); this is a bug in one4all export, please report it")
        schema["probe_max_abs_diff"] = diff
        (staging / deploy.SCHEMA).write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        os.chmod(staging, umask_mode(0o777))
        staging.replace(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return schema
