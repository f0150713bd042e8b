"""Notices held back until a command's input is accepted.

While a command checks its input it may log notices (ignored columns, dates read day first);
if the input is then refused, the user should see the one error line and nothing else. The CLI
holds one4all's records on its stderr handler (`hold`); a command releases them once everything
it was given is checked (`release`: `train.run` before training starts), the CLI when the command
succeeds, and a refused command never prints them. Where the CLI did not set up logging (the
Python API, an application's own handlers) records pass as usual.
"""

from __future__ import annotations

import logging

_held: list[HeldNotices] = []


class HeldNotices(logging.Filter):
    """A handler filter that keeps one4all's records until `release()`, then lets everything through."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler
        self.records: list[logging.LogRecord] | None = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.records is None or not record.name.startswith("one4all"):
            return True
        self.records.append(record)
        return False

    def release(self) -> None:
        records, self.records = self.records or [], None
        for record in records:
            self.handler.handle(record)


def hold(handler: logging.Handler) -> None:
    """Hold one4all's records on `handler` until `release()`."""
    held = HeldNotices(handler)
    handler.addFilter(held)
    _held.append(held)


def release() -> None:
    """Print the held notices now and stop holding: the input has been accepted."""
    for held in _held:
        held.release()
