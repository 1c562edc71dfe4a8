"""Layout groups that must share a page (reportlab platypus): a table with the notes under it,
a lead line with the table it introduces, a heading with the start of what follows it, and the
height arithmetic the figure uses to fit itself and its legend on one page.

``keepWithNext`` (the heading styles, :func:`lead`) covers a flowable and the one after it; a note
*after* a table needs :func:`with_tail` (keepWithNext would pull the whole table onto the next page
with it, or leave the note alone at the top of one when the table splits)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

FRAME_PADDING = 6.0  # points: reportlab's default Frame padding, on each of the four sides


def lead(flowable: Any) -> Any:
    """``flowable`` kept on the page of whatever follows it (a line that introduces a table)."""
    flowable.keepWithNext = 1  # read before the style's (Flowable.getKeepWithNext)
    return flowable


def stack_height(flowables: Sequence[Any], width: float) -> float:
    """The height ``flowables`` take one under the other at ``width``, spaces between them merged
    as a frame merges them (the first one's space before and the last one's after not counted)."""
    from reportlab.platypus.flowables import _listWrapOn  # what KeepTogether measures with

    return float(_listWrapOn(list(flowables), width, None)[1])


def largest_fitting(height: Callable[[float], float], limit: float, lo: float, hi: float = 1.0,
                    steps: int = 12) -> float | None:
    """The largest scale in [lo, hi] whose ``height(scale)`` is at most ``limit`` (``height``
    grows with the scale), or None when not even ``lo`` fits."""
    if height(hi) <= limit:
        return hi
    if height(lo) > limit:
        return None
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if height(mid) <= limit else (lo, mid)
    return lo


def with_tail(body: Any, tail: Sequence[Any]) -> Any:
    """``body`` (a table) with ``tail`` (its notes) drawn under it and never parted from it: when
    the body splits over pages, its last part goes to the tail's page, so no page begins with the
    notes of a table that ended on the page before."""
    from reportlab.platypus import Flowable

    def gap(a: Any, b: Any) -> float:
        return max(a.getSpaceAfter(), b.getSpaceBefore())  # a frame merges adjacent spaces

    class WithTail(Flowable):
        def __init__(self, body: Any, tail: list[Any]) -> None:
            super().__init__()
            self.body, self.tail = body, tail
            self._body_h = self._tail_h = self._aw = 0.0

        def __repr__(self) -> str:
            return f"WithTail({self.body!r}, {len(self.tail)} notes)"

        def wrap(self, aw: float, ah: float) -> tuple[float, float]:
            self._aw = aw  # the notes are drawn at the width they were measured at
            # No canvas when measured from outside a frame (a group deciding where to split).
            w, self._body_h = self.body.wrapOn(getattr(self, "canv", None), aw, ah)
            self._tail_h = gap(self.body, self.tail[0]) + stack_height(self.tail, aw)
            self.width, self.height = max(w, aw), self._body_h + self._tail_h
            return self.width, self.height

        def getSpaceBefore(self) -> float:  # noqa: N802 (reportlab API)
            return self.body.getSpaceBefore()

        def getSpaceAfter(self) -> float:  # noqa: N802 (reportlab API)
            return self.tail[-1].getSpaceAfter()

        def split(self, aw: float, ah: float) -> list[Any]:
            self.wrap(aw, ah)
            parts = self.body.split(aw, ah - self._tail_h) if ah > self._tail_h else []
            if len(parts) >= 2:  # what fits here; the rest goes on with the notes
                return [*parts[:-1], WithTail(parts[-1], self.tail)]
            frame = getattr(self, "_frame", None)
            if frame is not None and getattr(frame, "_atTop", False):
                # Not even one row fits above the notes on an empty page: lay them out apart
                # rather than fail the whole report.
                return [self.body, *self.tail]
            return []  # all of it to the next page

        def draw(self) -> None:
            y = self.height - self._body_h
            self.body.drawOn(self.canv, 0, y)
            prev = self.body
            for f in self.tail:
                _, h = f.wrapOn(self.canv, self._aw, 0xFFFFFF)
                y -= gap(prev, f) + h
                f.drawOn(self.canv, 0, y)
                prev = f

    tail = list(tail)
    return WithTail(body, tail) if tail else body


def heading_group_class() -> type:
    """The group reportlab makes of a heading (``keepWithNext``) and what follows it: moved to
    the next page whole, as KeepTogether does, unless the heading and the *first lines* of a long
    paragraph or table fit here; then they start here (the heading never ends a page alone, and
    a long chain of thought no longer leaves the rest of a page blank before it)."""
    from reportlab.platypus import KeepTogether
    from reportlab.platypus.doctemplate import _FrameBreak

    class HeadingGroup(KeepTogether):
        def split(self, aw: float, ah: float) -> list[Any]:
            out = super().split(aw, ah)
            if not out or not isinstance(out[0], _FrameBreak) or len(self._content) < 2:
                return out
            *heads, last = self._content
            room = ah - stack_height(heads, aw) - max(heads[-1].getSpaceAfter(), last.getSpaceBefore())
            # A paragraph splits into two parts only when at least two of its lines fit
            # (allowOrphans 0); a table only with its header and a first row.
            if room > 0 and len(last.split(aw, room)) >= 2:
                return out[1:]
            return out

    return HeadingGroup
