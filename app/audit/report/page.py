"""Page furniture: the disclaimer and "page N of M" on every page, and raw PDF streams."""
from __future__ import annotations

from typing import Any

from ..present import DISCLAIMER, REPORT_TITLE
from .fonts import FontSet


def canvas_class(f: FontSet, run_id: str, generated: str) -> type:
    from reportlab.lib import colors
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):
        """Defers each page until the page count is known, then draws the footer."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab API)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._furniture(total)
                Canvas.showPage(self)
            Canvas.save(self)

        def _furniture(self, total: int) -> None:
            from reportlab.lib.utils import simpleSplit

            w, h = self._pagesize
            margin = 18 * 2.835
            lines = simpleSplit(f.clean(DISCLAIMER), f.bold, 7, w - 2 * margin)
            self.saveState()
            self.setStrokeColor(colors.HexColor("#999999"))
            self.setLineWidth(0.5)
            top = 18 + 8.5 * len(lines) + 9  # above the first disclaimer line's ascenders
            self.line(margin, top, w - margin, top)
            self.setFillColor(colors.HexColor("#333333"))
            self.setFont(f.bold, 7)
            for i, line in enumerate(lines):
                self.drawString(margin, 18 + 8.5 * (len(lines) - i), line)
            self.setFont(f.regular, 7)
            self.drawString(margin, 18, f"CARE Viewer evidence report · run {run_id} · generated {generated}")
            self.drawRightString(w - margin, 18, f"page {self._pageNumber} of {total}")
            if self._pageNumber > 1:
                self.setFillColor(colors.HexColor("#666666"))
                self.drawString(margin, h - 30, REPORT_TITLE)
                self.drawRightString(w - margin, h - 30, f"run {run_id}")
            self.restoreState()

    return NumberedCanvas


class no_ascii85:  # noqa: N801 - used as a context manager, like a function
    """Write raw (binary) streams: ASCII85 only inflates the embedded PNG pixels by 25 %."""

    def __enter__(self) -> None:
        from reportlab import rl_config

        self.saved = rl_config.useA85
        rl_config.useA85 = 0

    def __exit__(self, *exc: Any) -> None:
        from reportlab import rl_config

        rl_config.useA85 = self.saved
