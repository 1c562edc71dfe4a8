"""Terminal-safe CLI output: file- and user-derived text never drives the terminal.

Commands print names, descriptions, tag values, questions and answers that come from DICOM
files or the audit trail; an ESC/CSI/OSC sequence in them could recolour, retitle or rewrite
what the user sees. Each command neutralises such text with :func:`printable` where it
prints it, and :func:`neutralised_output` is the safety net ``main`` puts around every
subcommand, so a print that forgot still cannot emit a control character.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator, TextIO

from app.audit.present.formatting import printable


class NeutralisingStream:
    """A text stream that writes through ``printable``; everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        # CR stays: progress bars (tqdm) redraw with it; ESC/CSI/OSC and the rest never pass.
        self._stream.write(printable(text, keep_cr=True))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, buffer, fileno, ...
        return getattr(self._stream, name)


@contextlib.contextmanager
def neutralised_output() -> Iterator[None]:
    """sys.stdout/sys.stderr neutralised for the block, restored afterwards."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = NeutralisingStream(out), NeutralisingStream(err)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


__all__ = ["NeutralisingStream", "neutralised_output", "printable"]
