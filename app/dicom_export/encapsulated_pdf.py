"""The run's evidence report as an Encapsulated PDF instance (pydicom) in the source study.

The PDF is exactly what ``care-viewer report`` writes for the run (``--deidentify``: its
de-identified variant, app/audit/report/deid.py). The instance references the source image
it reports on (SourceInstanceSequence) and carries the source's Patient and Study modules.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

from app import __version__

from .modules import copy_patient_study, now_da_tm
from .source import RunSource, SourceInstance

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
PDF_SERIES_NUMBER = 9703
MANUFACTURER = "CARE Viewer"


def report_pdf(run: RunSource, deidentify: bool) -> bytes:
    """The evidence report PDF of the run, made by the report code itself."""
    from app.audit.report import build_report

    with tempfile.TemporaryDirectory(prefix="care-export-") as tmp:
        path = build_report(run.record, Path(tmp) / "report.pdf", overrides=run.overrides,
                            deidentify=deidentify, patient=run.patient)
        return path.read_bytes()


def build_pdf(run: RunSource, src: SourceInstance, pdf: bytes, deidentify: bool) -> Dataset:
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = sop_uid
    copy_patient_study(src.dataset, ds)
    day, time = now_da_tm()
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = PDF_SERIES_NUMBER
    ds.SeriesDescription = "CARE evidence report"
    ds.Manufacturer = MANUFACTURER
    ds.SoftwareVersions = __version__ or "unknown"
    ds.ConversionType = "WSD"  # made on a workstation
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = day, time
    ds.AcquisitionDateTime = day + time
    # The identified report prints the patient's name and ID; the de-identified one does not.
    ds.BurnedInAnnotation = "NO" if deidentify else "YES"
    ds.DocumentTitle = "CARE evidence report"
    ds.ConceptNameCodeSequence = Sequence()
    ref = Dataset()
    ref.ReferencedSOPClassUID = src.dataset.SOPClassUID
    ref.ReferencedSOPInstanceUID = src.dataset.SOPInstanceUID
    ds.SourceInstanceSequence = Sequence([ref])
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")  # OB: even length, the true length above
    return ds
