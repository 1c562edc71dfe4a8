"""The study-scope section: the evidence slices the answer rests on, as thumbnails of the
windowed slices the models saw; click one to go to that slice in the viewer."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel

from app.audit.present import RunPresentation
from app.pipeline.record import RunRecord

from .widgets import DIM, ClickableFrame, Section, esc, label, numpy_to_pixmap, span

THUMB = 96


def fill_study(sec: Section, r: RunRecord, p: RunPresentation, jump: Callable[[int], None]) -> list[ClickableFrame]:
    """One clickable row per evidence slice (``jump`` gets its 0-based index); [] for a slice-scope run."""
    view, study = p.study, r.study
    sec.setVisible(view is not None)
    if view is None or study is None:
        return []
    sec.add(label(f"<b>{esc(view.rests_on)}</b>", rich=True))
    images = {s.index: s.image for s in study.slices}
    frames = []
    for row in view.rows:
        fr = ClickableFrame()
        fr.setObjectName("StudySlice")
        fr.setStyleSheet("#StudySlice{background:#1e2329; border-radius:4px;}")
        lay = QHBoxLayout(fr)
        lay.setContentsMargins(6, 4, 6, 4)
        thumb = QLabel()
        thumb.setObjectName("StudySliceThumb")
        thumb.setFixedSize(THUMB, THUMB)
        thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        thumb.setStyleSheet("background:#000;")
        img = images.get(row.index)
        if img is not None:
            thumb.setPixmap(numpy_to_pixmap(img).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                        Qt.TransformationMode.SmoothTransformation))
        else:
            thumb.setText("(image not stored)")
        lay.addWidget(thumb)
        mark = "gave the study's answer" if row.winner else ("" if row.counted else "not counted")
        lines = [f"<b>{esc(row.title)}</b>", esc(row.score_text), esc(row.answer_text)]
        if mark:
            lines.append(span(mark, DIM))
        lay.addWidget(label("<br>".join(lines), rich=True), 1)
        fr.setCursor(Qt.CursorShape.PointingHandCursor)
        fr.setToolTip(f"Click to go to slice {row.number} in the viewer")
        fr.clicked.connect(lambda k=row.index: jump(k))
        fr.setProperty("slice_index", row.index)
        frames.append(fr)
        sec.add(fr)
    for text in (view.decided_text, view.rule_text, view.route_text, view.selection_text, view.mask3d_text,
                 view.primary_note):
        if text:
            sec.add(label(esc(text), color=DIM))
    sec.set_title(f"Study scope ({len(view.rows)} evidence slices)")
    return frames
