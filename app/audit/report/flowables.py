"""The report's paragraph styles and small flowable builders (reportlab platypus)."""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence
from xml.sax.saxutils import escape

from app.pipeline.record import RunRecord

from ..present import RunPresentation
from .deid import Scrubber
from .fonts import FontSet

__all__ = ["Continuation", "Ctx", "Scrubber", "clip", "fitted", "image", "para", "rgb", "styles", "table"]


@dataclass
class Ctx:
    """What every section needs: the record (images), its presentation (text) and the page."""

    record: RunRecord
    pres: RunPresentation
    fonts: FontSet
    styles: dict[str, Any]
    scrub: Scrubber
    deidentify: bool
    frame_width: float
    # What one page's frame holds, in points: a group kept together must fit it (figure + legend).
    frame_height: float
    # Text too long for its place on page 1, laid out in full further on; ``pages`` holds where
    # each continuation landed in the previous layout pass, ``marks`` where it lands in this one.
    continuations: list["Continuation"] = field(default_factory=list)
    pages: dict[str, int] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Continuation:
    key: str
    heading: str
    text: str  # already scrubbed
    style: str


def styles(f: FontSet) -> dict[str, Any]:
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("body", fontName=f.regular, fontSize=8.8, leading=11.2, splitLongWords=1)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.6, leading=9.4),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7.8, leading=9.6),
        "cellb": ParagraphStyle("cellb", parent=base, fontName=f.bold, fontSize=7.8, leading=9.6),
        "mono": ParagraphStyle("mono", parent=base, fontName=f.mono, fontSize=7.2, leading=9.0),
        "title": ParagraphStyle("title", parent=base, fontName=f.bold, fontSize=16, leading=20, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=8.5, leading=11,
                                   textColor=colors.HexColor("#444444"), spaceAfter=6),
        "h2": ParagraphStyle("h2", parent=base, fontName=f.bold, fontSize=11.5, leading=14, spaceBefore=10,
                             spaceAfter=4, keepWithNext=1, textColor=colors.HexColor("#1F3A5F")),
        "h3": ParagraphStyle("h3", parent=base, fontName=f.bold, fontSize=9.5, leading=12, spaceBefore=6,
                             spaceAfter=2, keepWithNext=1),
        "label": ParagraphStyle("label", parent=base, fontName=f.bold, fontSize=7.6, leading=9.4,
                                textColor=colors.HexColor("#555555"), keepWithNext=1),
        "question": ParagraphStyle("question", parent=base, fontSize=10.5, leading=13.5),
        "answer": ParagraphStyle("answer", parent=base, fontName=f.bold, fontSize=14, leading=18),
        "think": ParagraphStyle("think", parent=base, fontSize=8.2, leading=10.6, leftIndent=8,
                                textColor=colors.HexColor("#333333")),
        "caption": ParagraphStyle("caption", parent=base, fontSize=7.4, leading=9,
                                  textColor=colors.HexColor("#444444")),
    }


def para(ctx: Ctx, text: Any, style: str = "body") -> Any:
    from reportlab.platypus import Paragraph

    clean = ctx.fonts.clean(ctx.scrub(str(text if text is not None else "")))
    return Paragraph(escape(clean).replace("\n", "<br/>"), ctx.styles[style])


def image(png: bytes, width: float, max_height: float | None = None) -> Any:
    from reportlab.platypus import Image

    img = Image(io.BytesIO(png))
    w, h = img.imageWidth, img.imageHeight
    scale = width / w
    if max_height is not None and h * scale > max_height:
        scale = max_height / h
    img.drawWidth, img.drawHeight = w * scale, h * scale
    return img


def table(ctx: Ctx, rows: list[list[Any]], widths: Sequence[float], *, header: bool = True,
          extra: Iterable[tuple] = ()) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    cells = [[c if not isinstance(c, str) else para(ctx, c, "cellb" if header and i == 0 else "cell") for c in row]
             for i, row in enumerate(rows)]
    # splitInRow: a row taller than what is left of the page splits inside its cells (no cell
    # holding long model output can make the layout fail).
    t = Table(cells, colWidths=list(widths), repeatRows=1 if header else 0, hAlign="LEFT", splitInRow=1)
    style = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#BBBBBB")),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8EDF3")))
    style.extend(extra)
    t.setStyle(TableStyle(style))
    return t


def rgb(c: tuple[int, int, int]) -> Any:
    from reportlab.lib import colors

    return colors.Color(c[0] / 255, c[1] / 255, c[2] / 255)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary when one is near, marked "…"."""
    text = str(text)
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", int(limit * 0.8), limit)
    return text[:cut if cut > 0 else limit].rstrip() + "…"


def fitted(ctx: Ctx, text: str, style: str, width: float, max_height: float, heading: str) -> Any:
    """A paragraph of ``text`` no taller than ``max_height`` at ``width``: when the whole text
    does not fit, the longest prefix that does, ending "… (continued on page N)", and the full
    text goes to the continuation section (page 1 must hold the answer, not a full page of it).
    ``text`` is scrubbed before it is cut, so a cut never leaves half a name behind."""
    clean = ctx.scrub(str(text if text is not None else ""))
    whole = para(ctx, clean, style)
    if whole.wrap(width, 1e9)[1] <= max_height:
        return whole
    key = f"cont{len(ctx.continuations) + 1}"
    ctx.continuations.append(Continuation(key, heading, clean, style))
    page = ctx.pages.get(key)
    suffix = f" (continued on page {page if page else '??'})"
    lo, hi = 0, len(clean)
    while lo < hi:  # the longest prefix (in characters) that fits with the suffix
        mid = (lo + hi + 1) // 2
        if para(ctx, clip(clean, mid) + suffix, style).wrap(width, 1e9)[1] <= max_height:
            lo = mid
        else:
            hi = mid - 1
    return para(ctx, clip(clean, max(lo, 1)) + suffix, style)


def anchored(ctx: Ctx, key: str, flowable: Any) -> Any:
    """``flowable`` recording the page it is drawn on under ``key`` (for "continued on page N")."""
    from reportlab.platypus import Flowable

    class _Anchor(Flowable):
        def __init__(self) -> None:
            super().__init__()
            self.keepWithNext = getattr(flowable.style, "keepWithNext", 0) if hasattr(flowable, "style") else 0

        def wrap(self, aw: float, ah: float) -> tuple[float, float]:
            self.width, self.height = flowable.wrap(aw, ah)
            return self.width, self.height

        def getSpaceBefore(self) -> float:  # noqa: N802 (reportlab API)
            return flowable.getSpaceBefore()

        def getSpaceAfter(self) -> float:  # noqa: N802 (reportlab API)
            return flowable.getSpaceAfter()

        def draw(self) -> None:
            ctx.marks.setdefault(key, self.canv.getPageNumber())
            flowable.drawOn(self.canv, 0, 0)

    return _Anchor()
