"""Series without pictures in the study browser, against a real Orthanc: a structured report
(SR) and an encapsulated PDF (DOC) in a study show a document placeholder naming their
modality, never a black square that reads as an empty scan; the image series beside them keeps
its real thumbnail."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from app.devtools.orthanc import OrthancServer
from app.pacs.nodes import PacsNode, PacsProtocol, save_nodes
from app.ui.slice_renderer import qimage_to_numpy
from tests.pacs.conftest import require_orthanc

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
PDF_CLASS = "1.2.840.10008.5.1.4.1.1.104.1"  # Encapsulated PDF


def _document(like: pydicom.Dataset, sop_class: str, modality: str) -> pydicom.Dataset:
    """A pixel-less object in ``like``'s study (same patient), as its own series."""
    ds = pydicom.Dataset()
    for key in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyDescription", "AccessionNumber"):
        setattr(ds, key, like.get(key, ""))
    ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = sop_class, generate_uid(), generate_uid()
    ds.Modality, ds.SeriesDescription, ds.SeriesNumber = modality, f"{modality} document", 90
    if modality == "DOC":
        ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
        ds.EncapsulatedDocument = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = sop_class, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _icon(item) -> np.ndarray:
    return qimage_to_numpy(item.icon().pixmap(72, 72).toImage()).astype(int)


@pytest.fixture
def browser_on_documents(qtbot, main_window, small_files, tmp_path):
    require_orthanc()
    like = pydicom.dcmread(small_files[0])
    paths = list(small_files)
    for cls, mod in ((SR_CLASS, "SR"), (PDF_CLASS, "DOC")):
        path = tmp_path / f"{mod}.dcm"
        _document(like, cls, mod).save_as(path, enforce_file_format=True)
        paths.append(path)
    with OrthancServer() as server:
        server.upload(paths)
        save_nodes([PacsNode(name="Test Orthanc", protocol=PacsProtocol.DICOMWEB, url=server.dicomweb_url)])
        browser = main_window.pacs.show_browser()
        browser.patient_id.setText(str(like.PatientID))
        with qtbot.waitSignal(browser.searched, timeout=30_000):
            browser.search_button.click()
        yield browser


def test_sr_and_pdf_series_show_a_document_placeholder(qtbot, browser_on_documents):
    from PySide6.QtCore import Qt

    browser = browser_on_documents
    qtbot.waitUntil(lambda: browser.series_list.count() == 3 and all(
        browser.series_list.item(i).data(Qt.ItemDataRole.UserRole + 1) is not None for i in range(3)), timeout=30_000)
    items = {browser.series_list.item(i).text().split("\n")[1].split(" ")[0]: browser.series_list.item(i)
             for i in range(3)}
    assert set(items) == {"MR", "SR", "DOC"}
    assert items["MR"].data(Qt.ItemDataRole.UserRole + 1) is True  # a real picture
    for mod in ("SR", "DOC"):
        img = _icon(items[mod])
        assert items[mod].data(Qt.ItemDataRole.UserRole + 1) is False  # no picture: the placeholder
        # Not a black square: the placeholder's panel is grey, its icon and modality text bright.
        assert img.reshape(-1, 3).min(axis=0).sum() > 40, f"{mod} thumbnail has black pixels"
        assert img.max() > 150, f"{mod} thumbnail has no icon or text"
    # Each names its own modality (the SR's and the PDF's pictures differ).
    assert not np.array_equal(_icon(items["SR"]), _icon(items["DOC"]))


def test_placeholder_for_a_series_without_pixels_or_a_seg(qapp):
    from app.ui.pacs_thumbnails import THUMB, thumb_pixmap

    def pixels(pm):
        return qimage_to_numpy(pm.toImage()).astype(int)

    unknown = pixels(thumb_pixmap(None))  # undecodable pixels: "no preview", not black
    assert unknown.reshape(-1, 3).min(axis=0).sum() > 40 and unknown.max() > 150
    # A SEG's frame is a mask that would read as an empty scan: the placeholder instead.
    mask = np.zeros((64, 64), np.uint8)
    mask[20:30, 20:30] = 255
    seg = pixels(thumb_pixmap(mask, "SEG"))
    assert seg.shape == (THUMB, THUMB, 3) and seg.reshape(-1, 3).min(axis=0).sum() > 40
    picture = pixels(thumb_pixmap(mask, "MR"))  # an image series keeps its picture on black
    assert picture.reshape(-1, 3).min(axis=0).sum() == 0 and picture.max() == 255
