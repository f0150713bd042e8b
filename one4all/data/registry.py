"""The dataset registry (registry.yaml): known datasets, their public originals, and file verification.

The registry is data: parsed as plain YAML and checked field by field. A file verifies by its sha256
when the registry knows it, else by its git blob id (sha1 of `blob <size>\\0` + bytes, what a git
tree lists), else it is `unverified`: present, but nothing public to compare it with (its row count
is still checked when known). Nothing here downloads; `one4all.data.fetch` does, on request.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import yaml

from one4all.errors import UserError

_HEX = {"sha256": re.compile(r"[0-9a-f]{64}"), "git_blob": re.compile(r"[0-9a-f]{40}")}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: where it goes under the data root and how to check it."""

    path: str
    url: str | None
    bytes: int | None
    sha256: str | None
    git_blob: str | None
    rows: int | None
    source: str

    @property
    def checksum(self) -> str | None:
        """`sha256` or `git blob` (what `verify` compares), None when the registry knows neither."""
        return "sha256" if self.sha256 else "git blob" if self.git_blob else None


@dataclass(frozen=True)
class Dataset:
    """A known dataset: its config, description, public page and files."""

    name: str
    config: str | None
    description: str
    page: str
    original: str | None
    license: str | None
    files: tuple[DataFile, ...]


def _field(entry: dict[str, Any], key: str, kind: type, where: str, required: bool = False) -> Any:
    value = entry.get(key)
    if value is None:
        if required:
            raise ValueError(f"{where}: {key} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{where}: {key} must be a {kind.__name__}")
    return value


def _file(entry: Any, where: str) -> DataFile:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: a file must be a mapping")
    path = _field(entry, "path", str, where, required=True)
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"{where}: path {path!r} must stay inside the data root")
    url = _field(entry, "url", str, where)
    if url is not None and not url.startswith(("https://", "http://")):
        raise ValueError(f"{where}: url must be http(s)")
    sums = {}
    for key, pattern in _HEX.items():
        value = _field(entry, key, str, where)
        if value is not None and not pattern.fullmatch(value):
            raise ValueError(f"{where}: {key} {value!r} is not a lowercase hex digest")
        sums[key] = value
    return DataFile(path, url, _field(entry, "bytes", int, where), sums["sha256"], sums["git_blob"],
                    _field(entry, "rows", int, where), _field(entry, "source", str, where) or "")


def parse_registry(text: str, origin: str = "registry.yaml") -> dict[str, Dataset]:
    """Validate a registry's text into datasets by name; ValueError naming the bad entry."""
    tree = yaml.safe_load(text)
    if not isinstance(tree, dict) or not isinstance(tree.get("datasets"), dict):
        raise ValueError(f"{origin}: needs a `datasets:` mapping")
    datasets = {}
    for name, entry in tree["datasets"].items():
        where = f"{origin}: {name}"
        if not isinstance(entry, dict) or not isinstance(entry.get("files"), list) or not entry["files"]:
            raise ValueError(f"{where}: needs a non-empty `files:` list")
        files = tuple(_file(f, f"{where} file {i + 1}") for i, f in enumerate(entry["files"]))
        datasets[str(name)] = Dataset(str(name), _field(entry, "config", str, where),
                                      _field(entry, "description", str, where) or "",
                                      _field(entry, "page", str, where) or "", _field(entry, "original", str, where),
                                      _field(entry, "license", str, where), files)
    return datasets


def load_registry(path: str | Path | None = None) -> dict[str, Dataset]:
    """The shipped registry, or another file with the same schema (e.g. your own mirror's URLs)."""
    if path is None:
        return parse_registry(resources.files("one4all.data").joinpath("registry.yaml").read_text())
    path = Path(path).expanduser()
    try:
        return parse_registry(path.read_text(), str(path))
    except OSError as err:
        raise UserError(f"cannot read the registry {path} ({err.strerror}); check --registry") from err
    except (ValueError, yaml.YAMLError) as err:
        raise UserError(f"bad registry {path}: {' '.join(str(err).split())}") from err


def select(registry: dict[str, Dataset], names: list[str]) -> list[Dataset]:
    """The named datasets (all of them for an empty list); an unknown name is a one-line error."""
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise UserError(f"unknown dataset {unknown[0]!r}; known: {', '.join(registry)} (one4all data list)")
    return [registry[n] for n in names] if names else list(registry.values())


@dataclass(frozen=True)
class Digest:
    """What a file on disk is: size, sha256, git blob id and data rows (lines after the header)."""

    bytes: int
    sha256: str
    git_blob: str
    rows: int


def read_digest(handle: BinaryIO, size: int) -> Digest:
    """Size, sha256, git blob id and row count of an open binary file of `size` bytes, in one pass."""
    sha256, blob = hashlib.sha256(), hashlib.sha1(f"blob {size}\0".encode())
    newlines, last = 0, b""
    while chunk := handle.read(_CHUNK):
        sha256.update(chunk)
        blob.update(chunk)
        newlines += chunk.count(b"\n")
        last = chunk[-1:]
    lines = newlines + (1 if size and last != b"\n" else 0)
    return Digest(size, sha256.hexdigest(), blob.hexdigest(), max(lines - 1, 0))


def digest(path: Path) -> Digest:
    """`read_digest` of a file on disk."""
    with path.open("rb") as handle:
        return read_digest(handle, path.stat().st_size)


def compare(spec: DataFile, found: Digest) -> tuple[str, str]:
    """(`ok` | `unverified` | `failed`, detail) for a file's digest against its registry entry."""
    if spec.bytes is not None and found.bytes != spec.bytes:
        return "failed", f"{found.bytes:,} bytes, expected {spec.bytes:,}"
    if spec.sha256 and found.sha256 != spec.sha256:
        return "failed", f"sha256 {found.sha256[:12]}..., expected {spec.sha256[:12]}..."
    if spec.git_blob and found.git_blob != spec.git_blob:
        return "failed", f"git blob {found.git_blob[:12]}..., expected {spec.git_blob[:12]}..."
    if spec.checksum:
        return "ok", f"{found.bytes:,} bytes, {spec.checksum} verified"
    if spec.rows is not None and found.rows != spec.rows:
        return "failed", f"{found.rows:,} data rows, expected {spec.rows:,}"
    rows = f", {found.rows:,} rows as expected" if spec.rows is not None else ""
    return "unverified", f"{found.bytes:,} bytes{rows}; no published checksum to compare (sha256 {found.sha256})"


def verify(spec: DataFile, path: Path) -> tuple[str, str]:
    """`compare` for a file on disk."""
    return compare(spec, digest(path))
