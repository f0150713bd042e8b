"""Atomic file writes: readers (and a crash) see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from one4all.errors import UserError, write_error


def umask_mode(mode: int) -> int:
    """`mode` as a plain open() would create it under the current umask (mkstemp makes 0600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temp file in `path`'s folder; on success flush it to disk and rename it onto `path`.

    A crash or SIGKILL at any point leaves either the old file or the new one, never half a
    file (rename within one filesystem is atomic); on an exception the temp file is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from err
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp, umask_mode(0o666))
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:
            # Name the file being written, not its temp file (a full disk fails the temp file's write).
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def atomic_write_all(files: dict[Path, bytes]) -> None:
    """Write several files so that a failure changes none of them.

    Every file first goes to a synced temp file beside its target; only when all are written are
    they renamed over their targets. A full disk or a read-only folder fails during the first
    phase, when no target has been touched yet; the temp files are removed again.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                staged.append((tmp, path))
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, umask_mode(0o666))
            except OSError as err:
                raise OSError(err.errno, err.strerror, str(path)) from err
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    with atomic_write(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`atomic_write_text` for bytes."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def probe_writable(directory: Path, what: str) -> None:
    """Fail now, in one line, if files cannot be written under `directory` (which need not exist yet).

    Its nearest existing ancestor must be a folder in which a file can be created, written and
    synced: this finds a path under a file, a read-only file system, missing permissions and a full
    disk before a run spends its time. The probe is an unnamed temp file: nothing is left behind.
    """
    directory = Path(directory).expanduser().absolute()
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write {what} {directory}: {existing} is a file, not a folder; choose another "
                        "location")
    try:
        with tempfile.TemporaryFile(dir=existing) as handle:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise write_error(OSError(err.errno, err.strerror, str(existing)), f"{what} {directory}") from err
