"""Drawing the slice view's decorations over the image: the empty-state message, overlay
boxes, corner annotations, orientation labels and the scale bar (part of
:class:`~app.ui.slice_view.SliceView`; the image itself is :mod:`.slice_renderer`'s)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen

from app.audit.present import fmt_person_name
from app.study.edge_labels import plane_name
from app.study.reformat import EdgeLabels

if TYPE_CHECKING:
    from .slice_view import SliceView


# Where the slice number would be: a provisional image is one file, not a slice of the series.
PROVISIONAL_LABEL = "PROVISIONAL: one file, the series is still being read and sorted"


def _nice_length(max_mm: float) -> float:
    """Largest 1/2/5 x 10^n mm not above ``max_mm``."""
    if max_mm <= 0:
        return 0.0
    exp = math.floor(math.log10(max_mm))
    for m in (5, 2, 1):
        v = m * 10**exp
        if v <= max_mm:
            return float(v)
    return float(10 ** (exp - 1) * 5)


def _format_mm(mm: float) -> str:
    return f"{mm / 10:g} cm" if mm >= 10 else f"{mm:g} mm"


def _format_date(d: str) -> str:
    if len(d) == 8 and d.isdigit():
        return f"{d[0:4]}-{d[4:6]}-{d[6:8]}"
    return d


class SlicePaintingMixin:
    """The painting helpers of :class:`~app.ui.slice_view.SliceView`."""

    def _paint_message(self: "SliceView", p: QPainter) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        f = QFont(self.font())
        f.setPointSizeF(f.pointSizeF() * 1.15)
        p.setFont(f)
        if self._message:
            text, color = self._message, QColor(255, 120, 110) if self._message_is_error else QColor(170, 178, 189)
        else:
            text = (
                "No study open\n\nOpen a file (Ctrl+O) or a DICOM folder (Ctrl+Shift+O),\n"
                "or drop files or folders here."
            )
            color = QColor(140, 148, 160)
        p.setPen(color)
        r = self.rect().adjusted(40, 40, -40, -40)
        p.drawText(r, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), text)

    def _paint_boxes(self: "SliceView", p: QPainter) -> None:
        g = self.geometry_
        if g is None:
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for box in self.overlays.stack.boxes_for(g.slice_axis, self.slice_index):
            c0, r0, c1, r1 = box.rect  # display-frame pixels: this view's own screen pixels
            tl, br = self.image_to_widget(c0, r0), self.image_to_widget(c1, r1)
            color = QColor(*box.color)
            color.setAlphaF(box.opacity)
            pen = QPen(color, box.line_width)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(tl, br))
            if box.label:
                self._shadow_text(p, QPointF(tl.x(), tl.y() - 4), box.label, color)

    def _shadow_text(self: "SliceView", p: QPainter, at: QPointF, text: str, color: QColor) -> None:
        p.setPen(QColor(0, 0, 0, 200))
        p.drawText(at + QPointF(1, 1), text)
        p.setPen(color)
        p.drawText(at, text)

    def _text_block(self: "SliceView", p: QPainter, lines: list[str], corner: str) -> None:
        fm = p.fontMetrics()
        lh = fm.height()
        pad = 8
        n = len(lines)
        for idx, line in enumerate(lines):
            if not line:
                continue
            w = fm.horizontalAdvance(line)
            x = pad if corner in ("tl", "bl") else self.width() - pad - w
            y = pad + fm.ascent() + idx * lh if corner in ("tl", "tr") else self.height() - pad - (n - 1 - idx) * lh - fm.descent()
            self._shadow_text(p, QPointF(x, y), line, QColor(222, 226, 232))

    def _paint_annotations(self: "SliceView", p: QPainter) -> None:
        v, g = self._volume, self.geometry_
        assert v is not None and g is not None
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        f = QFont(self.font())
        f.setPointSizeF(max(8.0, f.pointSizeF() * 0.95))
        p.setFont(f)
        pat = v.patient
        # "Family, Given" as the Series list, the PACS browser and the PDF write it, not "FAMILY^GIVEN".
        self._text_block(p, [fmt_person_name(pat.name), f"ID: {pat.patient_id}" if pat.patient_id else "", _format_date(pat.study_date)], "tr")
        desc = v.description or "(no description)"
        self._text_block(p, [desc, f"{v.modality}  {plane_name(v, self._plane)}"], "tl")
        self._text_block(p, self.slice_lines(), "bl")
        self._text_block(p, [f"Zoom: {self.zoom * 100:.0f}%", self.spacing_text()], "br")
        labels = self.shown_edge_labels()  # the view transform's labels (view_tools)
        if labels is not None:
            self._paint_orientation(p, labels)
        self._paint_scale_bar(p)

    def slice_lines(self: "SliceView") -> list[str]:
        """The bottom-left corner: slice number (or the provisional label) and window."""
        v = self._volume
        if v is None:
            return []
        lines = [PROVISIONAL_LABEL if v.provisional else f"Im: {self.slice_index + 1}/{self.slice_count}"]
        if not v.is_rgb:
            lines.append(f"W: {self._window.width:.0f}  L: {self._window.center:.0f}")
        return lines

    def spacing_text(self: "SliceView") -> str:
        """The corner's pixel-size readout; never a made-up "1.00 x 1.00 mm"."""
        v, g = self._volume, self.geometry_
        if v is None or g is None:
            return ""
        if v.spacing_source == "none":
            return "Pixels (no calibration)"
        sx, sy = g.pixel_spacing
        text = f"{sx:.2f} x {sy:.2f} mm"
        if v.spacing_source == "ImagerPixelSpacing":
            return text + " at detector"
        if v.projection:
            return text  # a projection has no slice thickness
        return text + f"  Thk {g.spacing[2 - g.slice_axis]:.2f} mm"

    def _paint_orientation(self: "SliceView", p: QPainter, labels: EdgeLabels) -> None:
        f = QFont(p.font())
        f.setBold(True)
        f.setPointSizeF(f.pointSizeF() * 1.2)
        p.setFont(f)
        fm = p.fontMetrics()
        color = QColor(255, 214, 102)
        r = self.rect()
        cx, cy = r.width() / 2, r.height() / 2
        pad = 8
        for text, x, y in (
            (labels.left, pad, cy + fm.ascent() / 2),
            (labels.right, r.width() - pad - fm.horizontalAdvance(labels.right), cy + fm.ascent() / 2),
            (labels.top, cx - fm.horizontalAdvance(labels.top) / 2, pad + fm.ascent()),
            (labels.bottom, cx - fm.horizontalAdvance(labels.bottom) / 2, r.height() - pad - fm.descent()),
        ):
            self._shadow_text(p, QPointF(x, y), text, color)
        p.setFont(self.font())

    def scale_bar(self: "SliceView") -> tuple[float, float]:
        """(length in mm, length in screen px) of the scale bar for the current zoom."""
        if self.geometry_ is None or self._scale <= 0:
            return 0.0, 0.0
        if self._volume is not None and self._volume.spacing_source == "none":
            return 0.0, 0.0  # uncalibrated: a bar would invent a length
        target_px = min(160.0, self.width() * 0.25)
        mm = _nice_length(target_px / self._scale)
        return mm, mm * self._scale

    def _paint_scale_bar(self: "SliceView", p: QPainter) -> None:
        mm, px = self.scale_bar()
        if px < 8:
            return
        fm = p.fontMetrics()
        x1 = self.width() - 12
        x0 = x1 - px
        y = self.height() - 12 - 2 * fm.height() - 10
        pen = QPen(QColor(222, 226, 232), 2)
        pen.setCosmetic(True)
        shadow = QPen(QColor(0, 0, 0, 180), 4)
        for pn in (shadow, pen):
            p.setPen(pn)
            p.drawLine(QPointF(x0, y), QPointF(x1, y))
            p.drawLine(QPointF(x0, y - 5), QPointF(x0, y + 1))
            p.drawLine(QPointF(x1, y - 5), QPointF(x1, y + 1))
            p.drawLine(QPointF((x0 + x1) / 2, y - 3), QPointF((x0 + x1) / 2, y))
        label = _format_mm(mm)
        if self._volume is not None and self._volume.spacing_source == "ImagerPixelSpacing":
            label += " at detector"  # magnified by the beam geometry; not the patient's size
        self._shadow_text(p, QPointF(x1 - fm.horizontalAdvance(label), y - 8), label, QColor(222, 226, 232))
