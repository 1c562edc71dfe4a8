"""The report's paragraph styles and small flowable builders (reportlab platypus)."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence
from xml.sax.saxutils import escape

from app.pipeline.record import RunRecord
from app.study.volume import PatientInfo

from ..present import RunPresentation
from .fonts import FontSet


class Scrubber:
    """Removes the patient's identifiers wherever free text repeats them (de-identified mode):
    a clinician may type the patient's name into the question."""

    def __init__(self, patient: PatientInfo | None, on: bool) -> None:
        tokens: set[str] = set()
        if on and patient is not None:
            for part in re.split(r"[\^=,\s]+", patient.name or ""):
                if len(part) >= 3:
                    tokens.add(part)
            for value in (patient.patient_id, patient.accession):
                if value and len(value.strip()) >= 3:
                    tokens.add(value.strip())
        self._re = (re.compile("|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)), re.I)
                    if tokens else None)

    def __call__(self, text: str) -> str:
        return self._re.sub("[removed]", text) if self._re is not None else text


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
    t = Table(cells, colWidths=list(widths), repeatRows=1 if header else 0, hAlign="LEFT")
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
