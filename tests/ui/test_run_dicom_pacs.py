"""The audit panel's Export DICOM… and Send to PACS… on a real run (tiny models, a LiteMedSAM
box on the tumour), stored on a real Orthanc and opened again through the study browser: the
run's SEG shows as an overlay on exactly its mask pixels, and its SR as a past run from PACS."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.devtools.orthanc import OrthancServer, orthanc_missing
from app.study.display_frame import display_frame
from tests.ui.care_session import QUESTION, TUMOUR_BOX, TUMOUR_SLICE
from tests.ui.test_ask_audit import ask, draw_box

pytestmark = pytest.mark.slow

SEG, SR, PDF = "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.104.1"


@pytest.fixture
def pacs_server(ct_dicom_dir):
    if orthanc_missing():
        pytest.skip(f"Orthanc is needed: {orthanc_missing()}")
    with OrthancServer() as server:
        server.upload(sorted(ct_dicom_dir.glob("*.dcm")))
        yield server


def _run_with_mask(qtbot, care):
    draw_box(qtbot, care, TUMOUR_BOX)
    care.act_draw.setChecked(False)
    outcome = ask(qtbot, care)
    rec = outcome.record
    assert rec.status == "completed" and outcome.persisted, (outcome.error, rec.errors)
    return rec


def test_export_dicom_writes_the_runs_objects_into_the_folder(qtbot, care, tmp_path, ct_volume):
    rec = _run_with_mask(qtbot, care)
    header = care.audit.header
    assert header.dicom_button.isEnabled() and header.pacs_button.isEnabled()
    actions = care.window.run_dicom
    with qtbot.waitSignal(actions.dicom_written, timeout=120_000) as sig:
        actions.export_dicom(rec.run_id, tmp_path / "out", frozenset({"seg", "sr", "pdf"}))
    paths = [Path(p) for p in sig.args[0]]
    assert all(p.parent == tmp_path / "out" for p in paths)
    datasets = [pydicom.dcmread(p) for p in paths]
    assert sorted(str(d.SOPClassUID) for d in datasets) == sorted([SEG, SR, PDF])
    assert {str(d.StudyInstanceUID) for d in datasets} == {ct_volume.study_uid}
    assert f"Wrote 3 DICOM object(s) into {tmp_path / 'out'}" in care.window.status.currentMessage()


def test_export_failure_is_one_line_and_nothing_is_claimed(qtbot, care, tmp_path):
    rec = _run_with_mask(qtbot, care)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    actions = care.window.run_dicom
    with qtbot.waitSignal(actions.failed, timeout=120_000) as sig:
        actions.export_dicom(rec.run_id, blocker / "out", frozenset({"sr"}))
    assert "\n" not in sig.args[0] and "Wrote" not in care.window.status.currentMessage()


def test_send_to_pacs_then_reopen_shows_seg_overlay_and_past_run(qtbot, care, pacs_server, tmp_path):
    from app.pacs.nodes import PacsNode, PacsProtocol, save_nodes

    rec = _run_with_mask(qtbot, care)
    node = PacsNode(name="Orthanc", protocol=PacsProtocol.DICOMWEB, url=pacs_server.dicomweb_url)
    save_nodes([node])
    before = set(pacs_server.instances())
    actions = care.window.run_dicom
    with qtbot.waitSignal(actions.pacs_stored, timeout=120_000) as sig:
        actions.send_to_pacs(rec.run_id, node, frozenset({"seg", "sr", "pdf"}))
    result = sig.args[0]
    assert len(result.stored) == 3 and result.failed == []
    assert set(pacs_server.instances()) - before == set(result.stored)
    assert care.window.status.currentMessage().startswith("Stored 3 of 3 object(s) (SEG, SR, PDF) on Orthanc")

    # Open the study again from the PACS: the SEG is an overlay, the SR a past run.
    w = care.window
    browser = w.pacs.show_browser()
    browser.patient_id.setText("LUNG1")
    with qtbot.waitSignal(browser.searched, timeout=30_000):
        browser.search_button.click()
    with qtbot.waitSignal(w.run_dicom.past_runs.read, timeout=LOAD_MS) as sig:
        browser.open_button.click()
    (summary,) = sig.args[0]
    assert summary.run_id == rec.run_id and summary.question == QUESTION
    box = w.run_dicom.past_runs.box
    assert box.isVisible() and "1 past run from PACS" in box.title.text()
    assert QUESTION in box.rows[0].text() and rec.run_id[:8] in box.rows[0].text()

    (overlay,) = w.segmentations
    assert len(w.volumes) == 1 and overlay.target is w.volumes[0]
    frame = display_frame(overlay.target)
    exported = {m.entity: m for m in rec.masks if m.accepted and m.mask is not None}
    assert exported, "the run has an accepted mask to export"
    for segment in overlay.segments:
        mask = exported[segment.label.split(" (")[0]] if segment.label not in exported else exported[segment.label]
        shown = frame.from_array(segment.mask[TUMOUR_SLICE])
        assert np.array_equal(shown, mask.mask), segment.label
        assert not segment.mask[np.arange(segment.mask.shape[0]) != TUMOUR_SLICE].any()


LOAD_MS = 120_000
