"""The box tool in the real SliceView on the brain MR (rows stored posterior first, shown
anterior up): the box it emits is the rectangle drawn on the screen, in display-frame pixels,
and overlays added in that frame are painted exactly where it was drawn."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from app.pipeline.segmentation.confidence import mask_bbox
from app.study.display_frame import display_frame

MAGENTA = (255, 0, 255)


@pytest.fixture
def mr_view(view, mr_volume):
    view.set_volume(mr_volume)
    return view


def _lesion(mr_volume, shared_data):
    """(slice, the lesion label on it in the display frame)."""
    from app.cli.eval_cmd import label_on_grid
    from app.study.loader import load

    v = mr_volume
    label = load([shared_data / "mr-brain-brain1" / "brain1_label.nrrd"]).volumes[0]
    grid = label_on_grid(label, v)  # through LPS: the label's slice order differs
    k = int(grid.sum(axis=(1, 2)).argmax())
    return k, np.ascontiguousarray(display_frame(v).from_array(grid[k]))


def _point(view, col: float, row: float) -> QPoint:
    p = view.image_to_widget(col, row)
    return QPoint(round(p.x()), round(p.y()))


def test_drawn_box_is_the_screen_rectangle_around_the_displayed_lesion(qtbot, mr_view, mr_volume, shared_data):
    from app.ui.override_tools import BoxDrawTool

    view = mr_view
    k, truth = _lesion(mr_volume, shared_data)
    view.set_slice(k)
    assert mr_volume.direction[1, 1] == pytest.approx(-1.0) and display_frame(mr_volume).geometry.row_flip
    x0, y0, x1, y1 = mask_bbox(truth)
    tool = BoxDrawTool(view)
    tool.set_active(True)
    got: list[tuple[int, tuple]] = []
    tool.box_drawn.connect(lambda kk, box: got.append((kk, box)))
    a, b = _point(view, x0 + 0.5, y0 + 0.5), _point(view, x1 - 0.5, y1 - 0.5)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(view, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    qtbot.mouseMove(view, b)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=b)
    assert len(got) == 1
    kk, box = got[0]
    # The screen rectangle, pixel for pixel: the widget points under the press and release.
    (ca, ra), (cb, rb) = view.widget_to_image(QPointF(a)), view.widget_to_image(QPointF(b))
    assert box == (int(min(ca, cb)), int(min(ra, rb)), int(max(ca, cb)) + 1, int(max(ra, rb)) + 1)
    assert kk == k and box == (x0, y0, x1, y1)  # the lesion as displayed, not the raw array's rows

    # A box layer and a mask layer in that frame are painted where the box was drawn.
    inside = np.zeros(truth.shape, bool)
    inside[y0:y1, x0:x1] = True
    view.overlays.add("drawn", inside, MAGENTA, 1.0, slice_index=k)
    view.overlays.add_box("drawn:box", k, box, (0, 255, 0), line_width=3.0)
    frame = view.current_frame().array
    painted = np.all(frame == MAGENTA, axis=-1)
    np.testing.assert_array_equal(painted, inside)
    img = view.grab().toImage()
    top = _point(view, (x0 + x1) / 2, y0)
    colour = img.pixelColor(top)
    assert (colour.red(), colour.green(), colour.blue()) == (0, 255, 0)
    mirrored = _point(view, (x0 + x1) / 2, truth.shape[0] - y0)  # where the raw-array box would sit
    c2 = img.pixelColor(mirrored)
    assert (c2.red(), c2.green(), c2.blue()) != (0, 255, 0)


def test_wrong_shape_mask_is_refused_on_a_transposed_volume(view, mr_volume):
    from app.study.volume import Volume

    v = mr_volume
    arr = np.ascontiguousarray(v.array[:, :, :200].transpose(0, 2, 1))  # 200 rows x 256 cols stored
    d = v.direction[:, [1, 0, 2]].copy()
    d[:, 2] *= -1  # keep it right-handed
    t = Volume(arr, (v.spacing[1], v.spacing[0], v.spacing[2]), v.origin, d, "MR")
    frame = display_frame(t)
    assert frame.transposed and frame.shape == (256, 200)
    view.set_volume(t)
    view.overlays.add("ok", np.ones(frame.shape, bool), slice_index=0)
    with pytest.raises(ValueError, match="displayed slice shape"):
        view.overlays.add("raw", np.ones(frame.array_shape, bool), slice_index=0)


def _record(v, k: int, mask: np.ndarray, crop: tuple[int, int, int, int], plane: str):
    from app.pipeline.record import EvidenceItem, InputInfo, MaskRecord, RunRecord
    from app.pipeline.types import EvidenceType
    from app.pipeline.vocab import PromptType

    m = MaskRecord("lesion", "litemedsam", PromptType.BOX, box=mask_bbox(mask), confidence=0.9, accepted=True,
                   area_px=int(mask.sum()), bbox=mask_bbox(mask), mask=mask)
    return RunRecord(question="q", input=InputInfo(series_uid=v.series_uid, slice_index=k, num_slices=v.num_slices,
                                                   plane=plane),
                     masks=[m], evidence=[EvidenceItem(EvidenceType.CROP, crop_rect=crop)])


@pytest.mark.parametrize("legacy", [False, True])
def test_audit_panel_places_run_masks_and_crop_on_the_displayed_lesion(qtbot, mr_view, mr_volume, shared_data,
                                                                       legacy):
    """A run's masks and crop are in the display frame and go on the view unchanged; a run recorded
    before the display frame (no ``input.plane``) kept the array layout and is mapped."""
    from app.audit import audit_view_model as vm
    from app.ui.audit.panel import AuditPanel

    view, v = mr_view, mr_volume
    k, truth = _lesion(v, shared_data)
    frame = display_frame(v)
    crop = mask_bbox(truth)
    if legacy:
        stored_mask = np.ascontiguousarray(frame.to_array(truth))
        stored_crop = tuple(int(c) for c in frame.box_to_array(crop))
        assert stored_crop != crop  # the MR's rows are flipped: the layouts differ
    else:
        stored_mask, stored_crop = truth, crop
    panel = AuditPanel(view)
    qtbot.addWidget(panel)
    view.set_slice(0)
    panel.show_record(_record(v, k, stored_mask, stored_crop, "" if legacy else "axial"))
    layer = view.overlays.get(vm.mask_key(0))
    np.testing.assert_array_equal(layer.mask, truth)
    assert view.overlays.get(vm.crop_key(0)).rect == crop
    # Jump to the run's slice: the lesion is painted where the display shows it.
    panel.highlight(vm.mask_key(0))
    assert view.slice_index == k
