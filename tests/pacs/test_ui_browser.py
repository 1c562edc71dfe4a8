"""The study browser and the node settings dialog in the real window against a real Orthanc:
search by each key, series thumbnails as they arrive, Open retrieves into the cache on a
worker and the study opens in the viewer (voxels equal to the files'), resume, cancel, a node
that is down, and a retrieved study holding a SEG opening with its overlay."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest

from app.devtools.orthanc import OrthancServer
from app.pacs.nodes import PacsNode, PacsProtocol, load_nodes, save_nodes
from tests.pacs.conftest import SMALL_STUDY_UID

LOAD_MS = 120_000


def _node(pacs, protocol: PacsProtocol = PacsProtocol.DICOMWEB, name: str = "Test Orthanc") -> PacsNode:
    server = pacs.server if hasattr(pacs, "server") else pacs
    if protocol is PacsProtocol.DICOMWEB:
        return PacsNode(name=name, protocol=protocol, url=server.dicomweb_url)
    return PacsNode(name=name, protocol=protocol, ae_title=server.aet, host="127.0.0.1", port=server.dicom_port)


@pytest.fixture
def window(main_window):
    return main_window  # tests/conftest.py


def _search(qtbot, browser, **fields) -> int:
    for name, value in fields.items():
        widget = getattr(browser, name)
        widget.setEditText(value) if name == "modality" else widget.setText(value)
    with qtbot.waitSignal(browser.searched, timeout=30_000) as sig:
        browser.search_button.click()
    return sig.args[0]


def _wait_thumbnails(qtbot, browser, n: int) -> None:
    from PySide6.QtCore import Qt

    qtbot.waitUntil(lambda: browser.series_list.count() == n and all(
        browser.series_list.item(i).data(Qt.ItemDataRole.UserRole + 1) is not None for i in range(n)), timeout=30_000)


@pytest.mark.parametrize("protocol", [PacsProtocol.DICOMWEB, PacsProtocol.DIMSE])
def test_search_thumbnails_open_in_the_viewer(qtbot, window, orthanc, ct_volume, protocol):
    from PySide6.QtCore import Qt

    from app.ui.pacs_browser import cache_dir

    save_nodes([_node(orthanc, protocol)])
    browser = window.pacs.show_browser()
    assert browser.node_box.count() == 1 and browser.node.protocol is protocol
    assert _search(qtbot, browser, patient_id="LUNG1") == 1
    assert browser.table.item(0, 1).text() == "LUNG1"
    assert browser.table.item(0, 2).text() == "2020-01-01"
    assert browser.table.item(0, 4).text() == "CT" and browser.table.item(0, 7).text() == "48"
    _wait_thumbnails(qtbot, browser, 1)
    item = browser.series_list.item(0)
    assert item.data(Qt.ItemDataRole.UserRole + 1) is True  # a real picture, not the blank
    thumb = item.icon().pixmap(72, 72).toImage()
    assert max(thumb.pixelColor(x, 36).red() for x in range(72)) > 100  # the chest, not black

    with qtbot.waitSignal(window.series_loaded, timeout=LOAD_MS):
        browser.open_button.click()
    assert "Retrieved 48 of 48 instances (48 new" in browser.status.text()
    (volume,) = window.volumes
    assert volume.series_uid == ct_volume.series_uid
    assert np.array_equal(volume.array, ct_volume.array)
    assert all(f.startswith(str(cache_dir() / orthanc.ct_study)) for f in volume.source_files)

    # Open again: nothing is fetched twice.
    with qtbot.waitSignal(browser.retrieve_done, timeout=LOAD_MS) as sig:
        browser.open_button.click()
    assert sig.args[0].already_present == 48 and sig.args[0].written == []
    assert "48 already in the cache" in browser.status.text()


def test_every_search_key_reaches_the_node(qtbot, orthanc, tmp_path):
    from app.ui.pacs_browser import PacsBrowser

    browser = PacsBrowser(nodes=[_node(orthanc)], cache=tmp_path)
    qtbot.addWidget(browser)
    assert _search(qtbot, browser, date_from="20210101", date_to="2021-12-31") == 1
    assert browser.studies[0].study_uid == SMALL_STUDY_UID
    browser.date_from.clear()
    browser.date_to.clear()
    assert _search(qtbot, browser, accession="ACC-42") == 1
    browser.accession.clear()
    assert _search(qtbot, browser, patient_name="OTHER1*") == 1
    browser.patient_name.clear()
    mr = _search(qtbot, browser, modality="MR")
    assert mr == 2 and {s.study_uid for s in browser.studies} == {orthanc.mr_study, SMALL_STUDY_UID}
    # A date that is not one never reaches the node.
    browser.date_from.setText("2021-13-45")
    browser.search_button.click()
    assert "not a date" in browser.status.text() and browser.search_button.isEnabled()


def test_a_node_that_is_down_says_so_in_one_line(qtbot, tmp_path, closed_port):
    from app.ui.pacs_browser import PacsBrowser

    node = PacsNode(name="Down", protocol=PacsProtocol.DICOMWEB, url=f"http://127.0.0.1:{closed_port}/dicom-web")
    browser = PacsBrowser(nodes=[node], cache=tmp_path)
    qtbot.addWidget(browser)
    # (dicomweb-client retries a refused connection for ~30 s before giving up.)
    with qtbot.waitSignal(browser.failed, timeout=120_000) as sig:
        browser.search_button.click()
    assert "\n" not in sig.args[0] and "Down" in sig.args[0] and "cannot connect" in sig.args[0]
    assert browser.status.text() == sig.args[0] and browser.table.rowCount() == 0


def test_cancelled_retrieve_keeps_what_it_has_and_resumes(qtbot, orthanc, tmp_path):
    from app.ui.pacs_browser import PacsBrowser

    browser = PacsBrowser(nodes=[_node(orthanc)], cache=tmp_path)
    qtbot.addWidget(browser)
    assert _search(qtbot, browser, patient_id="LUNG1") == 1
    opened: list[str] = []
    browser.open_requested.connect(opened.append)
    browser.open_selected()
    assert browser.cancel_button.isEnabled()
    browser.cancel_retrieve()  # before the first instance: the loop sees it at once
    qtbot.waitUntil(lambda: "Retrieve cancelled" in browser.status.text(), timeout=30_000)
    assert opened == [] and not browser.cancel_button.isEnabled()
    kept = len(list(tmp_path.rglob("*.dcm")))
    assert kept < 48
    with qtbot.waitSignal(browser.open_requested, timeout=LOAD_MS):
        browser.open_selected()
    assert len(list((tmp_path / orthanc.ct_study).rglob("*.dcm"))) == 48
    assert f"{kept} already in the cache" in browser.status.text()


def test_retrieved_study_with_a_seg_opens_with_its_overlay(qtbot, window, tmp_path, ct_dicom_dir, shared_data):
    import SimpleITK as sitk

    from tests.study.seg_factory import axial_seg, ct_sources

    label = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct-chest-lung1" / "lung1_label.nrrd"))) > 0
    seg = axial_seg(ct_sources(ct_dicom_dir), label, color="red")
    seg.save_as(tmp_path / "seg.dcm")
    with OrthancServer() as server:
        server.upload(sorted(ct_dicom_dir.glob("*.dcm")) + [tmp_path / "seg.dcm"])
        save_nodes([_node(server)])
        browser = window.pacs.show_browser()
        assert _search(qtbot, browser, patient_id="LUNG1") == 1
        _wait_thumbnails(qtbot, browser, 2)  # the CT and the SEG series
        with qtbot.waitSignal(window.series_loaded, timeout=LOAD_MS):
            browser.open_button.click()
    assert len(window.volumes) == 1
    (overlay,) = window.segmentations
    assert overlay.sop_instance_uid == seg.SOPInstanceUID
    assert np.array_equal(overlay.segments[0].mask, label)
    assert window.segs.panel.list.item(0).text().startswith("Tumour")
    assert any(n.startswith("seg:") for n in window.view.overlays.names())


# ----------------------------------------------------------------------- nodes dialog --
def test_nodes_dialog_adds_edits_echoes_and_removes(qtbot, orthanc):
    import keyring

    from app.ui.pacs_nodes_dialog import PacsNodesDialog

    dlg = PacsNodesDialog()
    qtbot.addWidget(dlg)
    assert dlg.list.count() == 0
    dlg.add_node()
    dlg.name.setText("Archive")
    dlg.url.setText(orthanc.server.dicomweb_url)
    dlg.username.setText("reader")
    dlg.password_env.setText("ARCHIVE_PASSWORD")
    dlg.password.setText("s3cret")
    with qtbot.waitSignal(dlg.saved):
        assert dlg.save(), dlg.message.text()
    (node,) = load_nodes()
    assert node.name == "Archive" and node.url == orthanc.server.dicomweb_url
    assert node.auth.username == "reader" and node.auth.password_env == "ARCHIVE_PASSWORD"
    from app.pacs.nodes import nodes_path

    assert "s3cret" not in nodes_path().read_text()
    assert keyring.get_password("care-viewer", "pacs:Archive:reader") == "s3cret"
    with qtbot.waitSignal(dlg.echoed, timeout=30_000) as sig:
        dlg.echo_button.click()
    assert sig.args[0].ok and dlg.echo_result.text().startswith("\u2713")

    # A DIMSE node: the right AE title answers, a wrong one is refused in one line.
    dlg.add_node()
    dlg.name.setText("Archive DIMSE")
    dlg.protocol.setCurrentIndex(1)
    dlg.ae_title.setText(orthanc.server.aet)
    dlg.host.setText("127.0.0.1")
    dlg.port.setValue(orthanc.server.dicom_port)
    with qtbot.waitSignal(dlg.echoed, timeout=30_000) as sig:
        dlg.echo_button.click()
    assert sig.args[0].ok, sig.args[0].message
    dlg.ae_title.setText("NOT-ORTHANC")
    with qtbot.waitSignal(dlg.echoed, timeout=30_000) as sig:
        dlg.echo_button.click()
    assert not sig.args[0].ok and dlg.echo_result.text().startswith("\u2717")
    assert "\n" not in sig.args[0].message
    dlg.ae_title.setText(orthanc.server.aet)
    assert dlg.save()
    assert [n.protocol for n in load_nodes()] == [PacsProtocol.DICOMWEB, PacsProtocol.DIMSE]

    dlg.list.setCurrentRow(0)
    dlg.remove_node()
    assert dlg.save()
    assert [n.name for n in load_nodes()] == ["Archive DIMSE"]


def test_nodes_dialog_refuses_an_invalid_node(qtbot):
    from app.ui.pacs_nodes_dialog import PacsNodesDialog

    dlg = PacsNodesDialog()
    qtbot.addWidget(dlg)
    dlg.add_node()
    dlg.url.setText("ftp://nowhere")
    assert not dlg.save()
    assert "http(s) URL" in dlg.message.text()
    assert load_nodes() == []


def test_the_retrieved_files_are_the_nodes_instances(orthanc, tmp_path):
    """What the browser opens is what Orthanc holds: every retrieved file's SOP UID is stored there."""
    from app.pacs.client import client_for

    result = client_for(_node(orthanc)).retrieve(SMALL_STUDY_UID, out_dir=tmp_path)
    assert result.complete
    uids = {str(pydicom.dcmread(p).SOPInstanceUID) for p in result.written}
    assert uids <= set(orthanc.server.instances()) and len(uids) == 5


def test_export_and_send_dialogs_refuse_what_cannot_be_done(qtbot, orthanc):
    from PySide6.QtWidgets import QDialogButtonBox

    from app.ui.run_dicom import DicomExportDialog, SendToPacsDialog

    none = SendToPacsDialog(None, [])
    qtbot.addWidget(none)
    assert not none.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert "No PACS node configured" in none.message.text() and none.node() is None
    dlg = SendToPacsDialog(None, [_node(orthanc)])
    qtbot.addWidget(dlg)
    assert dlg.node().name == "Test Orthanc" and dlg.kinds() == frozenset({"seg", "sr", "pdf"})
    for box in dlg.kind_boxes.values():
        box.setChecked(False)
    dlg.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dlg.result() == 0 and "at least one" in dlg.message.text()
    export = DicomExportDialog(None, "")
    qtbot.addWidget(export)
    export.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert export.result() == 0 and "Choose a folder" in export.message.text()


def test_choosing_another_node_clears_the_results(qtbot, orthanc, tmp_path):
    from app.ui.pacs_browser import PacsBrowser

    browser = PacsBrowser(nodes=[_node(orthanc), _node(orthanc, PacsProtocol.DIMSE, "Same, DIMSE")], cache=tmp_path)
    qtbot.addWidget(browser)
    assert _search(qtbot, browser, patient_id="LUNG1") == 1
    browser.node_box.setCurrentIndex(1)
    assert browser.table.rowCount() == 0 and browser.studies == [] and not browser.open_button.isEnabled()
    assert _search(qtbot, browser) == 1 and browser.node.protocol is PacsProtocol.DIMSE  # the form stays
    assert browser.table.item(0, 1).text() == "LUNG1"
