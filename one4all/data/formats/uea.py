"""Read the sktime / UEA `.ts` format: `@` headers, `#` comments, one instance per line.

A data line holds the dimensions separated by `:` and the values of a dimension separated by
`,`; with `@classLabel true` the label follows the last `:`. `?` (or NaN) marks a missing value.
Series may differ in length between instances (`@equalLength false`) and, rarely, between the
dimensions of one instance; short dimensions are padded with NaN (missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from one4all.errors import UserError


@dataclass
class TsData:
    """Instances of a `.ts` file: `series[i]` is float32 `[length_i, dims]` with NaN where missing."""

    series: list[np.ndarray]
    labels: list[str]
    class_names: list[str]
    header: dict[str, str] = field(default_factory=dict)

    @property
    def n_dims(self) -> int:
        return int(self.series[0].shape[1])

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.series])


def _values(text: str, where: str) -> np.ndarray:
    if text.strip().startswith("("):
        raise UserError(f"{where}: timestamped `(t, v)` values are not supported; export the series without timestamps")
    try:
        return np.array([np.nan if v.strip() in ("?", "") else float(v) for v in text.split(",")], dtype=np.float64)
    except ValueError as err:
        raise UserError(f"{where}: non-numeric value ({err}); values must be numbers or '?' for missing") from err


def _instance(line: str, has_labels: bool, where: str) -> tuple[np.ndarray, str | None]:
    fields = line.split(":")
    label = fields.pop().strip() if has_labels else None
    if not fields:
        raise UserError(f"{where}: no values before the class label")
    dims = [_values(f, f"{where}, dimension {d + 1}") for d, f in enumerate(fields)]
    length = max(len(d) for d in dims)
    out = np.full((length, len(dims)), np.nan, dtype=np.float64)
    for d, values in enumerate(dims):
        out[: len(values), d] = values
    return out.astype(np.float32), label


def _header(lines: list[str], path: Path) -> tuple[dict[str, str], int]:
    header: dict[str, str] = {}
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise UserError(f"{path}:{i + 1}: data before the @data line; a .ts file starts with @-headers")
        key, _, value = line[1:].partition(" ")
        key = key.lower()
        if key == "data":
            return header, i + 1
        header[key] = value.strip()
    raise UserError(f"{path} has no @data line; is it a sktime/UEA .ts file?")


def read_ts(path: str | Path) -> TsData:
    """Parse a `.ts` file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file not found: {path} (check data.root and data.name)")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not a text .ts file ({err.reason})") from err
    header, start = _header(lines, path)
    if header.get("timestamps", "false").lower() == "true":
        raise UserError(f"{path}: @timeStamps true is not supported; export the series without timestamps")
    label_spec = header.get("classlabel", "false").split()
    has_labels = bool(label_spec) and label_spec[0].lower() == "true"
    class_names = label_spec[1:] if has_labels else []
    if has_labels and not class_names:
        raise UserError(f"{path}: @classLabel true lists no class names")
    series, labels = [], []
    for i in range(start, len(lines)):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            continue
        values, label = _instance(line, has_labels, f"{path}:{i + 1}")
        if series and values.shape[1] != series[0].shape[1]:
            raise UserError(f"{path}:{i + 1}: {values.shape[1]} dimensions, the first instance has "
                            f"{series[0].shape[1]}; every instance needs the same dimensions")
        if has_labels and label not in class_names:
            raise UserError(f"{path}:{i + 1}: class label {label!r} is not declared in @classLabel {class_names}")
        series.append(values)
        labels.append(label)
    if not series:
        raise UserError(f"{path} has no instances after @data")
    declared = header.get("dimensions")
    if declared is not None and declared.isdigit() and int(declared) != series[0].shape[1]:
        raise UserError(f"{path}: @dimensions {declared} but instances have {series[0].shape[1]}")
    return TsData(series=series, labels=labels, class_names=class_names, header=header)
