"""Measurements on real volumes (no Qt): lengths and angles in physical space with the view's
anisotropic spacing, ROI statistics equal to numpy over the same pixels, pixels (never mm)
on an uncalibrated image, and the session store."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from app.study.measurements import (
    LUMA_BT601,
    LengthUnit,
    MeasureKind,
    Measurement,
    MeasurementSession,
    measure,
    series_key,
    study_key,
)
from app.study.reformat import Plane, slice_geometry

SX = 0.570312  # the shared CT's PixelSpacing (README: 0.570 x 0.570 x 5.0 mm)


def _m(volume, kind, plane, k, *points) -> Measurement:
    return Measurement(kind, series_key(volume), plane, k, tuple(points))


def test_length_on_the_ct_axial_is_pixels_times_the_pixel_spacing(ct_volume):
    g = slice_geometry(ct_volume, Plane.AXIAL)
    assert g.pixel_spacing == pytest.approx((SX, SX))
    r = measure(_m(ct_volume, MeasureKind.LENGTH, Plane.AXIAL, 33, (100.0, 200.0), (300.0, 200.0)), ct_volume, g)
    assert r.unit is LengthUnit.MM and r.length == pytest.approx(200 * SX)
    assert r.text == f"{200 * SX:.2f} mm"
    diag = measure(_m(ct_volume, MeasureKind.LENGTH, Plane.AXIAL, 33, (10.0, 10.0), (13.0, 14.0)), ct_volume, g)
    assert diag.length == pytest.approx(5 * SX)  # a 3-4-5 pixel triangle


def test_coronal_reformat_uses_the_anisotropic_spacing(ct_volume):
    g = slice_geometry(ct_volume, Plane.CORONAL)
    assert g.pixel_spacing == pytest.approx((SX, 5.0))  # screen rows are the 5 mm slices
    vertical = measure(_m(ct_volume, MeasureKind.LENGTH, Plane.CORONAL, 256, (100.0, 10.0), (100.0, 14.0)),
                       ct_volume, g)
    assert vertical.length == pytest.approx(20.0)  # 4 rows x 5.0 mm, not 4 x 0.57
    oblique = measure(_m(ct_volume, MeasureKind.LENGTH, Plane.CORONAL, 256, (100.0, 10.0), (130.0, 14.0)),
                      ct_volume, g)
    assert oblique.length == pytest.approx(math.hypot(30 * SX, 20.0))


def test_angle_of_a_known_triangle_is_computed_in_physical_space(ct_volume):
    g = slice_geometry(ct_volume, Plane.CORONAL)
    # Arms of 30 mm (across) and 40 mm (down) from (130/SX..): a 3-4-5 triangle in mm.
    v, a = (100.0, 10.0), (100.0 + 30.0 / SX, 10.0)
    c = (100.0 + 30.0 / SX, 18.0)  # 8 rows x 5 mm = 40 mm below a
    r = measure(_m(ct_volume, MeasureKind.ANGLE, Plane.CORONAL, 256, a, v, c), ct_volume, g)
    assert r.angle_deg == pytest.approx(math.degrees(math.atan2(40.0, 30.0)))  # 53.13°
    assert r.text == "53.1\u00b0"
    pixel_space = math.degrees(math.atan2(8.0, 30.0 / SX))
    assert abs(r.angle_deg - pixel_space) > 40  # the screen-pixel angle would be ~8.7°
    ax = slice_geometry(ct_volume, Plane.AXIAL)
    right = measure(_m(ct_volume, MeasureKind.ANGLE, Plane.AXIAL, 33, (10.0, 50.0), (10.0, 10.0), (60.0, 10.0)),
                    ct_volume, ax)
    assert right.angle_deg == pytest.approx(90.0)


def test_rectangle_roi_on_ct_air_and_tissue_equals_numpy_over_the_same_pixels(ct_volume):
    g = slice_geometry(ct_volume, Plane.AXIAL)
    img = ct_volume.array[33].astype(np.float64)  # axial screen layout is the stored layout here
    assert not g.row_flip and not g.col_flip
    # Integer corners: pixel centres 10.5..39.5 x 10.5..29.5 are inside.
    air = measure(_m(ct_volume, MeasureKind.RECTANGLE, Plane.AXIAL, 33, (10.0, 10.0), (40.0, 30.0)), ct_volume, g)
    px = img[10:30, 10:40]
    assert air.n_pixels == px.size == 600
    assert (air.mean, air.sd, air.min, air.max) == pytest.approx((px.mean(), px.std(), px.min(), px.max()))
    assert air.mean < -900 and air.value_unit == "HU"  # outside the patient
    assert air.area == pytest.approx(600 * SX * SX)
    # Fractional corners, drawn bottom-right to top-left: centres 250.5..270.5 x 281.5..299.5.
    tissue = measure(_m(ct_volume, MeasureKind.RECTANGLE, Plane.AXIAL, 33, (270.9, 300.2), (250.3, 280.7)),
                     ct_volume, g)
    px = img[281:300, 250:271]
    assert tissue.n_pixels == px.size
    assert (tissue.mean, tissue.sd, tissue.min, tissue.max) == pytest.approx((px.mean(), px.std(), px.min(), px.max()))
    assert tissue.mean > -200  # mediastinal soft tissue, not air
    assert "HU" in tissue.text and "mm\u00b2" in tissue.text and f"({px.size} px)" in tissue.text


def test_ellipse_roi_counts_the_pixel_centres_inside(ct_volume):
    g = slice_geometry(ct_volume, Plane.AXIAL)
    img = ct_volume.array[33].astype(np.float64)
    r = measure(_m(ct_volume, MeasureKind.ELLIPSE, Plane.AXIAL, 33, (200.0, 250.0), (240.0, 270.0)), ct_volume, g)
    inside = [img[y, x] for y in range(512) for x in range(512)
              if ((x + 0.5 - 220) / 20) ** 2 + ((y + 0.5 - 260) / 10) ** 2 <= 1]
    assert r.n_pixels == len(inside)
    assert abs(r.n_pixels - math.pi * 20 * 10) < 0.05 * math.pi * 200
    assert r.mean == pytest.approx(np.mean(inside)) and r.sd == pytest.approx(np.std(inside))
    assert (r.min, r.max) == (min(inside), max(inside))


def test_uncalibrated_ultrasound_measures_in_pixels_and_rgb_as_luma():
    from app.study.loader import load

    res = load([get_testdata_file("examples_rgb_color.dcm")])
    us = res.volumes[0]
    assert us.spacing_source == "none" and us.is_rgb
    g = slice_geometry(us, Plane.AXIAL)
    length = measure(_m(us, MeasureKind.LENGTH, g.plane, 0, (10.0, 20.0), (40.0, 60.0)), us, g)
    assert length.unit is LengthUnit.PX and length.length == pytest.approx(50.0)
    assert length.text == "50.00 px" and "mm" not in length.text
    roi = measure(_m(us, MeasureKind.RECTANGLE, g.plane, 0, (100.0, 100.0), (120.0, 110.0)), us, g)
    rgb = us.array[0, 100:110, 100:120].astype(np.float64)
    luma = rgb @ np.array(LUMA_BT601)
    assert roi.n_pixels == 200 and roi.mean == pytest.approx(luma.mean()) and roi.max == pytest.approx(luma.max())
    assert roi.area == 200 and "px\u00b2" in roi.text and "mm" not in roi.text and "luma" in roi.text


def test_imager_pixel_spacing_is_said_to_be_at_the_detector(ct_volume):
    cr = dataclasses.replace(ct_volume, spacing_source="ImagerPixelSpacing")
    g = slice_geometry(cr, Plane.AXIAL)
    r = measure(_m(cr, MeasureKind.LENGTH, Plane.AXIAL, 0, (0.0, 0.0), (10.0, 0.0)), cr, g)
    assert r.text == f"{10 * SX:.2f} mm at detector"
    roi = measure(_m(cr, MeasureKind.RECTANGLE, Plane.AXIAL, 0, (0.0, 0.0), (10.0, 10.0)), cr, g)
    assert "mm\u00b2 at detector" in roi.text


def test_a_measurement_is_measured_only_through_its_own_plane(ct_volume):
    m = _m(ct_volume, MeasureKind.LENGTH, Plane.CORONAL, 3, (0.0, 0.0), (1.0, 1.0))
    with pytest.raises(ValueError, match="coronal"):
        measure(m, ct_volume, slice_geometry(ct_volume, Plane.AXIAL))
    with pytest.raises(ValueError, match="3 points"):
        Measurement(MeasureKind.ANGLE, "s", Plane.AXIAL, 0, ((0.0, 0.0), (1.0, 1.0)))


def test_measurements_round_trip_and_the_session_keeps_them_per_study(ct_volume):
    m = _m(ct_volume, MeasureKind.ELLIPSE, Plane.SAGITTAL, 7, (1.5, 2.0), (30.0, 40.25))
    d = m.to_dict()
    assert d["kind"] == "ellipse" and d["plane"] == "sagittal" and d["slice"] == 7
    assert Measurement.from_dict(d) == m
    s = MeasurementSession()
    study = study_key(ct_volume)
    assert study == ct_volume.study_uid
    s.add(study, m)
    other = s.add("another-study", _m(ct_volume, MeasureKind.LENGTH, Plane.AXIAL, 0, (0.0, 0.0), (1.0, 0.0)))
    assert s.for_study(study) == [m] and s.for_study("another-study") == [other]
    assert s.on_slice(study, m.series, Plane.SAGITTAL, 7) == [m]
    assert s.on_slice(study, m.series, Plane.SAGITTAL, 8) == [] and s.on_slice(study, "x", Plane.SAGITTAL, 7) == []
    moved = m.moved(((0.0, 0.0), (5.0, 5.0)))
    s.replace(study, moved)
    assert s.get(study, m.mid).points == ((0.0, 0.0), (5.0, 5.0))
    assert s.remove(study, m.mid) == moved and s.for_study(study) == []
