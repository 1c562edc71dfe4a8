"""The dark theme on real widgets, read back from their grabbed pixels: an unticked check box or
radio button has a visible indicator, a ticked one the accent fill, a disabled one looks
disabled, and disabled push buttons are dimmer than enabled ones. The style sheet's icon paths
are absolute, so the tick shows whatever the working directory is."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QCheckBox, QPushButton, QRadioButton, QStyle, QStyleOptionButton

from tests.ui.ui_helpers import grab_rgb

BACKGROUND = np.array([0x1B, 0x1F, 0x24])  # QWidget background in dark.qss
ACCENT = np.array([0x4F, 0xC3, 0xF7])


@pytest.fixture
def themed(qapp):
    """The app's theme on the test QApplication, as the real start applies it; undone after."""
    from app.ui.theme import apply_theme

    style, palette, sheet = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    apply_theme(qapp)
    yield qapp
    qapp.setStyleSheet(sheet)
    qapp.setPalette(palette)
    qapp.setStyle(style)


def _shown(qtbot, widget):
    widget.resize(max(widget.sizeHint().width(), 160), max(widget.sizeHint().height(), 24))
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _indicator(box) -> np.ndarray:
    """The pixels of the box's indicator (where the style places it)."""
    opt = QStyleOptionButton()
    box.initStyleOption(opt)
    element = (QStyle.SubElement.SE_RadioButtonIndicator if isinstance(box, QRadioButton)
               else QStyle.SubElement.SE_CheckBoxIndicator)
    r = box.style().subElementRect(element, opt, box)
    assert r.width() >= 10 and r.height() >= 10, r
    return grab_rgb(box)[r.top():r.bottom() + 1, r.left():r.right() + 1].astype(int)


def _contrast(pixels: np.ndarray) -> int:
    """The largest per-channel difference of any pixel from the window background."""
    return int(np.abs(pixels - BACKGROUND).max())


def _accent_share(pixels: np.ndarray) -> float:
    return float((np.abs(pixels - ACCENT).max(axis=-1) < 40).mean())


@pytest.mark.parametrize("cls", [QCheckBox, QRadioButton])
def test_unticked_indicator_is_visible_and_ticked_is_unmistakable(qtbot, themed, cls):
    box = _shown(qtbot, cls("De-identify"))
    unticked = _indicator(box)
    # Fusion's own border on this background differed by ~20 levels: nearly invisible.
    assert _contrast(unticked) > 80, _contrast(unticked)
    assert _accent_share(unticked) < 0.05  # no accent fill when unticked
    box.setChecked(True)
    ticked = _indicator(box)
    assert ticked.shape == unticked.shape and not np.array_equal(ticked, unticked)
    assert _accent_share(ticked) > 0.4, _accent_share(ticked)  # the accent fill, not a thin grey tick
    # The tick (or dot) is drawn on the fill: dark pixels inside the indicator.
    inner = ticked[3:-3, 3:-3]
    assert (inner.max(axis=-1) < 80).any()


def test_disabled_check_box_looks_disabled(qtbot, themed):
    on = _shown(qtbot, QCheckBox("Evidence report"))
    off = _shown(qtbot, QCheckBox("Evidence report"))
    on.setChecked(True)
    off.setChecked(True)
    off.setEnabled(False)
    enabled, disabled = _indicator(on), _indicator(off)
    assert _accent_share(disabled) < 0.05 < _accent_share(enabled)  # a dim fill, not the accent
    assert _contrast(disabled) > 30  # still readable as a ticked box
    assert grab_rgb(off).max() < grab_rgb(on).max() - 40  # the label is dimmed too


def test_disabled_push_button_is_dimmer_than_enabled(qtbot, themed):
    enabled = _shown(qtbot, QPushButton("Export DICOM…"))
    disabled = _shown(qtbot, QPushButton("Export DICOM…"))
    disabled.setEnabled(False)
    a, b = grab_rgb(enabled).astype(int), grab_rgb(disabled).astype(int)
    assert a.shape == b.shape
    # The text is the brightest thing on a button: the disabled one's clearly darker.
    assert b.max() < a.max() - 60, (a.max(), b.max())
    # And its border: the outermost non-corner column.
    mid = a.shape[0] // 2
    assert b[mid, 0].sum() < a[mid, 0].sum()


def test_tick_image_path_is_absolute_and_exists(tmp_path, monkeypatch):
    from pathlib import Path
    import re

    from app.ui.theme import ICONS_TOKEN, theme_stylesheet

    monkeypatch.chdir(tmp_path)  # a relative url() would now point into tmp_path
    qss = theme_stylesheet()
    assert ICONS_TOKEN not in qss
    urls = re.findall(r'url\("([^"]+)"\)', qss)
    assert urls and all(Path(u).is_absolute() and Path(u).is_file() for u in urls), urls


def test_tick_shows_from_another_working_directory(qtbot, themed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from app.ui.theme import apply_theme

    apply_theme(themed)  # applied from here, as an installed app started elsewhere would
    box = _shown(qtbot, QCheckBox("Structured report"))
    box.setChecked(True)
    ticked = _indicator(box)
    assert _accent_share(ticked) > 0.4  # the theme's ticked fill...
    assert (ticked[3:-3, 3:-3].max(axis=-1) < 80).any()  # ...with the dark tick from check.svg on it
