"""`one4all data fetch`: download a dataset's files into a data root, verified, never half-written.

Each file streams into a temp file beside its destination and is renamed onto it only after its
size and checksum match the registry, so a failed, corrupted or interrupted download leaves nothing
behind, and a file already there is never overwritten: it is verified instead (and a copy that fails
verification is reported, left for the user to move away). A file the registry has no checksum for
is stored only with `allow_unverified`, with its sha256 printed. Only ever runs when asked.
"""

from __future__ import annotations

import contextlib
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from one4all.atomic import atomic_write
from one4all.data.registry import DataFile, Dataset, compare, read_digest, verify
from one4all.errors import UserError

_TIMEOUT_S = 60
_CHUNK = 1 << 20


class _TooLarge(Exception):
    """The server sent more bytes than the registry expects."""


def _download(url: str, handle: BinaryIO, limit: int | None) -> None:
    """Stream `url` into `handle`, stopping as soon as it exceeds `limit` bytes."""
    request = urllib.request.Request(url, headers={"User-Agent": "one4all-data-fetch"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:  # the registry allows http(s) only
        received = 0
        while chunk := response.read(_CHUNK):
            received += len(chunk)
            if limit is not None and received > limit:
                raise _TooLarge(f"more than the expected {limit:,} bytes")
            handle.write(chunk)


def fetch_file(spec: DataFile, root: Path, allow_unverified: bool = False,
               say: Callable[[str], None] = print) -> str:
    """Download one file into `root` (`ok`, `unverified` or `present`); UserError when it cannot be stored."""
    target = root / spec.path
    if target.exists():
        status, detail = verify(spec, target)
        if status == "failed":
            raise UserError(f"{target} exists but fails verification ({detail}); it is left as it is: move it "
                            "away and fetch again")
        say(f"{spec.path}: already there, {detail}")
        return "present"
    if spec.url is None:
        raise UserError(f"{spec.path} has no direct download ({spec.source}); get it there, put it at {target}, "
                        "then run `one4all data check`")
    if spec.checksum is None and not allow_unverified:
        raise UserError(f"{spec.path} has no published checksum, so a download cannot be verified; add "
                        "--allow-unverified to store it anyway (its sha256 is printed)")
    say(f"{spec.path}: downloading {spec.url}")
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]  # folders to undo on failure
    try:
        with atomic_write(target, "w+b") as handle:  # renamed onto the target only if the block succeeds
            status, detail = _stream(spec, handle)
    except BaseException:
        for folder in made:  # deepest first; rmdir only removes what stayed empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    say(f"{spec.path}: stored, {detail}")
    return "ok" if status == "ok" else "unverified"


def _stream(spec: DataFile, handle: BinaryIO) -> tuple[str, str]:
    """Download into `handle` and compare what arrived with the registry; UserError if it does not fit."""
    try:
        _download(str(spec.url), handle, spec.bytes)
    except _TooLarge as err:
        raise UserError(f"the download of {spec.path} from {spec.url} is corrupt ({err}); nothing was stored") from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        raise UserError(f"cannot download {spec.path} from {spec.url} ({reason}); check the connection (nothing "
                        "was stored)") from err
    size = handle.tell()
    handle.seek(0)
    status, detail = compare(spec, read_digest(handle, size))
    if status == "failed":
        raise UserError(f"the download of {spec.path} from {spec.url} fails verification ({detail}); nothing "
                        "was stored")
    return status, detail


def fetch_dataset(dataset: Dataset, root: Path, allow_unverified: bool = False,
                  say: Callable[[str], None] = print) -> list[str]:
    """Fetch every file of a dataset; the first file that cannot be stored stops with its reason."""
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    need = sum(f.bytes or 0 for f in dataset.files if not (root / f.path).exists())
    if need > free:
        raise UserError(f"{dataset.name} needs {need:,} bytes, {root} has {free:,} free; free space or choose --root")
    return [fetch_file(spec, root, allow_unverified, say) for spec in dataset.files]
