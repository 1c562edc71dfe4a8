"""Header-only image sizes (used to apply the pixel cap before OpenCV decodes anything)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.study.image_header import image_size
from app.study.limits import default_max_pixels, max_pixels, over_cap


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif"])
def test_size_from_header_matches_the_image(ext):
    ok, enc = cv2.imencode(ext, np.zeros((37, 53, 3), np.uint8))
    assert ok
    assert image_size(enc.tobytes()) == (53, 37)


def test_unknown_or_damaged_header_gives_none():
    assert image_size(b"not an image") is None
    assert image_size(b"\x89PNG\r\n\x1a\n\x00\x00") is None


def test_cap_from_the_environment(monkeypatch):
    monkeypatch.delenv("CARE_MAX_PIXELS", raising=False)
    assert max_pixels() == default_max_pixels()
    monkeypatch.setenv("CARE_MAX_PIXELS", "5M")
    assert max_pixels() == 5_000_000 and over_cap((2000, 2000)) is None
    assert "3000 x 2000 = 6 megapixels, over the 5 megapixels limit" in over_cap((3000, 2000))
    monkeypatch.setenv("CARE_MAX_PIXELS", "nonsense")
    assert max_pixels() == default_max_pixels()
