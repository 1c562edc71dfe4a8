"""The one exception the DICOM reader raises internally; it always becomes a ``LoadError``."""
from __future__ import annotations


class ReadFailure(Exception):
    """A file (or frame) that cannot be used, with a one-line reason for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = one_line(reason)


def one_line(text: object, limit: int = 240) -> str:
    """Collapse a (possibly multi-line) library message into one short line."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"
