"""User-facing errors: a problem with the user's input or environment, not a bug.

The CLI prints these as one line (no traceback) and exits with status 2.
"""

from __future__ import annotations

import errno


class UserError(Exception):
    """Bad input or environment. The message names the problem and the fix in one line."""

    exit_code = 2


_WRITE_FIXES = {
    errno.ENOSPC: "the disk is full: free space",
    errno.EDQUOT: "the disk quota is used up: free space",
    errno.EROFS: "the file system is read-only: choose a writable location",
    errno.EACCES: "permission denied: choose a writable location",
    errno.EPERM: "permission denied: choose a writable location",
    errno.ENOTDIR: "a parent of it is a file, not a folder: choose another location",
}


def write_error(err: OSError, what: str, then: str = "") -> UserError:
    """A failed write as one line: what could not be written, why, the fix, and `then` (what was kept)."""
    where = f" ({err.filename})" if err.filename else ""
    fix = _WRITE_FIXES.get(err.errno, f"{err.strerror or err}: choose a writable location with free space")
    return UserError(f"cannot write {what}{where}: {fix}" + (f"; {then}" if then else ""))
