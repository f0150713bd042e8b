"""User-facing errors: a problem with the user's input or environment, not a bug.

The CLI prints these as one line (no traceback) and exits with status 2.
"""


class UserError(Exception):
    """Bad input or environment. The message names the problem and the fix in one line."""

    exit_code = 2
