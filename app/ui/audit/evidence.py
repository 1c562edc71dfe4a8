"""The evidence section: what the VQA model saw (thumbnail, crop rectangle, source masks);
click an item to show it on the image."""
from __future__ import annotations

from typing import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel

from app.audit.audit_view_model import MaskEntry, evidence_key
from app.audit.palette import CROP_COLOUR
from app.audit.present import RunPresentation
from app.pipeline.record import RunRecord

from .widgets import DIM, WARN, ClickableFrame, Section, esc, label, numpy_to_pixmap, rgb_hex, span


def fill_evidence(sec: Section, r: RunRecord, p: RunPresentation, entries: Sequence[MaskEntry],
                  highlight: Callable[[str | None], None]) -> list[ClickableFrame]:
    frames = []
    if not p.evidence:
        sec.add(label("No evidence was built (the run stopped earlier).", color=DIM))
    for row, item in zip(p.evidence, r.evidence):
        fr = ClickableFrame()
        fr.setObjectName("EvidenceItem")
        fr.setStyleSheet("#EvidenceItem{background:#1e2329; border-radius:4px;}")
        lay = QHBoxLayout(fr)
        lay.setContentsMargins(6, 4, 6, 4)
        thumb = QLabel()
        thumb.setFixedSize(112, 112)
        thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        thumb.setStyleSheet("background:#000;")
        img = item.images[1] if len(item.images) > 1 else (item.images[0] if item.images else None)
        if img is not None:
            thumb.setPixmap(numpy_to_pixmap(img).scaled(112, 112, Qt.AspectRatioMode.KeepAspectRatio,
                                                        Qt.TransformationMode.SmoothTransformation))
        else:
            thumb.setText("(image not stored)")
        lay.addWidget(thumb)
        lines = [f"<b>{esc(row.title)}</b>"]
        if row.crop_text:
            lines.append(f"{row.crop_text}, {span('yellow box', rgb_hex(CROP_COLOUR))} on the image")
        elif row.description:
            lines.append(row.description)
        if row.entities_text:
            lines.append(esc(row.entities_text))
        if row.fallback_text:
            lines.append(span(esc(row.fallback_text), WARN))
        lines.append(span(row.inputs_text, DIM))
        lay.addWidget(label("<br>".join(lines), rich=True), 1)
        key = evidence_key(r, row.index, entries)
        if key:
            fr.setCursor(Qt.CursorShape.PointingHandCursor)
            fr.setToolTip("Click to show it on the image")
            fr.clicked.connect(lambda k=key: highlight(k))
        frames.append(fr)
        sec.add(fr)
    sec.set_title(f"Evidence ({len(p.evidence)})")
    return frames
