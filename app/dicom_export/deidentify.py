"""DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile on an export.

Applied to every object written (SEG, SR, Encapsulated PDF), with the Clean Structured Content
and Clean Descriptors options: the CARE text the objects carry (question, answer, entity
names, overrides) has already been scrubbed of the patient's identifiers by the report's
Scrubber (app/audit/report/deid.py), the same that de-identifies the PDF inside; here:

- every instance UID (study, series, SOP instance, frame of reference, tracking, every
  reference to them, the file meta) is replaced through ONE map for the whole export: the
  same source UID gets the same new UID in all objects, so the SEG still references its
  source image, the SR its SEG segments, and all three share one new study; a fresh random
  salt per export keeps two exports of one study unlinkable. SOP class, transfer syntax and
  coding-scheme UIDs (standard, not identifying) are kept;
- patient / study identifiers emptied or given a per-export dummy (Z), other identifying attributes removed (X), every
  remaining date and time replaced by a dummy (D), person names emptied, private tags removed;
- PatientIdentityRemoved = YES, DeidentificationMethod and its code sequence (DCM 113100,
  113104, 113105); LongitudinalTemporalInformationModified = REMOVED on the SEG and SR (whose
  run times are left out too), not on the PDF, whose report keeps the run's own times.

A scanner's file (``pacs store --file --deidentify``) is not one of our objects: its modules can
hold any identifier of PS3.15 Table E.1-1, so deidentify_file_copy keeps only what retain.py
lists instead, and says so in DeidentificationMethod (no option claimed).
"""
from __future__ import annotations

import secrets
from typing import Callable

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from app.study.volume import PatientInfo

from .retain import DATE_DUMMY, clean_file_meta, complete_equipment, embedded_overlay, retain_only

# LO is 64 characters: one value per profile / option (VM 1-n).
METHOD = ("DICOM PS3.15 Basic Application Confidentiality Profile", "Clean Structured Content Option",
          "Clean Descriptors Option")
METHOD_CODES = (codes.DCM.BasicApplicationConfidentialityProfile, codes.DCM.CleanStructuredContentOption,
                codes.DCM.CleanDescriptorsOption)

# Z: kept present but empty (type 2 in the objects' modules).
EMPTY = frozenset({
    "PatientBirthDate", "PatientSex", "AccessionNumber", "ReferringPhysicianName", "ContentCreatorName",
})
# Z/D with a dummy: an archive files studies by patient ID, and a DICOMDIR needs these; the
# patient ID is a random pseudonym per export (the same in all its objects), linked to nothing.
PSEUDONYM = ("PatientName", "PatientID", "StudyID", "DeviceSerialNumber")
# X: removed (PS3.15 Table E.1-1 entries that can reach our objects through the copied modules).
REMOVE = frozenset({
    "IssuerOfPatientID", "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthTime",
    "PatientAge", "PatientSize", "PatientWeight", "PatientAddress", "PatientMotherBirthName", "MilitaryRank",
    "BranchOfService", "MedicalRecordLocator", "EthnicGroup", "Occupation", "AdditionalPatientHistory",
    "PatientComments", "PatientTelephoneNumbers", "CountryOfResidence", "RegionOfResidence", "ResponsiblePerson",
    "ResponsibleOrganization", "PatientReligiousPreference", "PregnancyStatus", "InstitutionName",
    "InstitutionAddress", "InstitutionalDepartmentName", "InstitutionCodeSequence", "StationName",
    "OperatorsName", "OperatorIdentificationSequence", "PerformingPhysicianName", "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy", "RequestingPhysician", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "ReferringPhysicianIdentificationSequence", "StudyDescription",
    "RequestAttributesSequence", "ReferencedPatientSequence", "ReferencedStudySequence",
    "IssuerOfAccessionNumberSequence", "AdmittingDiagnosesDescription", "ImageComments", "ProtocolName",
    "PerformedProcedureStepDescription", "PerformedProcedureStepID", "RequestedProcedureDescription",
    "ScheduledProcedureStepDescription", "InstanceCreatorUID", "PersonName",
    "VerifyingObserverName", "VerifyingOrganization", "AuthorObserverSequence", "ParticipantSequence",
    "CustodialOrganizationSequence", "InstanceCreationDate", "InstanceCreationTime", "PatientInsurancePlanCodeSequence",
})
# Not identifying: what kind of object / encoding / code system a UID names.
KEEP_UID = frozenset({
    "SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID",
    "ImplementationClassUID", "CodingSchemeUID", "ContextUID", "MappingResourceUID",
    "ReferencedSOPClassUIDInFile", "ReferencedTransferSyntaxUIDInFile", "RelatedGeneralSOPClassUID",
    "OriginalSpecializedSOPClassUID", "SOPClassesInStudy", "CodingSchemeRegistry",
})
# Scanner files (--file): the Basic Profile by a retain list, said as it is. No option is
# claimed: nothing is cleaned (what is not listed is removed) and the pixels are as they were.
FILE_METHOD = ("DICOM PS3.15 Basic Application Confidentiality Profile",
               "Retain list: only attributes needed to view the image kept",
               "All names, IDs, free text, private tags, overlays removed",
               "Dates and times removed or dummy; UIDs replaced",
               "Pixel data not cleaned")
FILE_METHOD_CODES = (codes.DCM.BasicApplicationConfidentialityProfile,)
DUMMY = {"DA": "19000101", "TM": "000000", "DT": "19000101000000"}
_CODE_TEXT = frozenset({"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning",
                        "LongCodeValue", "URNCodeValue", "CodingSchemeName"})


def patient_of(ds: Dataset) -> PatientInfo:
    """The identifying header of a source instance (what the Scrubber removes from free text)."""
    return PatientInfo(name=str(ds.get("PatientName", "") or ""), patient_id=str(ds.get("PatientID", "") or ""),
                       birth_date=str(ds.get("PatientBirthDate", "") or ""), sex=str(ds.get("PatientSex", "") or ""),
                       study_date=str(ds.get("StudyDate", "") or ""),
                       accession=str(ds.get("AccessionNumber", "") or ""),
                       institution=str(ds.get("InstitutionName", "") or ""))


class UidMap:
    """Old UID -> new UID, one per export (random salt: deterministic inside, unlinkable across)."""

    def __init__(self) -> None:
        self._salt = secrets.token_hex(16)
        self._map: dict[str, str] = {}
        self._new: set[str] = set()
        tag = secrets.token_hex(4).upper()
        self.dummies = {"PatientName": f"ANONYMOUS^{tag}", "PatientID": f"DEID-{tag}", "StudyID": "DEID",
                        "DeviceSerialNumber": "none"}

    def __call__(self, uid: str) -> str:
        uid = str(uid)
        # A DICOM-defined UID names no one. A new UID is kept as it is: builders share one
        # element between two places of a tree, so a walk may meet it again (map it once).
        if not uid or uid.startswith("1.2.840.10008.") or uid in self._new:
            return uid
        if uid not in self._map:
            self._map[uid] = generate_uid(entropy_srcs=[self._salt, uid])
            self._new.add(self._map[uid])
        return self._map[uid]

    def __len__(self) -> int:
        return len(self._map)


def _clean(ds: Dataset, uids: UidMap, scrub: Callable[[str], str] | None) -> None:
    for elem in list(ds):
        if elem.tag.is_private:
            del ds[elem.tag]
            continue
        kw = elem.keyword
        if kw in REMOVE:
            del ds[elem.tag]
        elif kw in EMPTY:
            elem.value = None if elem.VR == "SQ" else ""
        elif kw in PSEUDONYM:
            elem.value = uids.dummies[kw]
        elif elem.VR == "SQ":
            for item in elem.value or []:
                _clean(item, uids, scrub)
        elif elem.VR == "UI" and kw not in KEEP_UID and elem.value:
            elem.value = [uids(u) for u in elem.value] if elem.VM > 1 else uids(elem.value)
        elif elem.VR in DUMMY and elem.value:
            elem.value = DUMMY[elem.VR]
        elif elem.VR == "PN":
            elem.value = ""
        elif scrub is not None and elem.VR in ("LO", "SH", "ST", "LT", "UT") and kw not in _CODE_TEXT and elem.value:
            if isinstance(elem.value, str):
                elem.value = scrub(elem.value)


def _mark(ds: Dataset, method: tuple[str, ...], method_codes: tuple) -> None:
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = list(method)
    seq = []
    for code in method_codes:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code.value, code.scheme_designator, code.meaning
        seq.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(seq)


def deidentify_dataset(ds: Dataset, uids: UidMap, scrub: Callable[[str], str] | None = None) -> None:
    _clean(ds, uids, scrub)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    _mark(ds, METHOD, METHOD_CODES)
    # The PDF inside keeps the run's own times (asked / finished / generated), as the report's
    # de-identified variant does: "REMOVED" would not be true of it, so it says nothing.
    if "EncapsulatedDocument" not in ds:
        ds.LongitudinalTemporalInformationModified = "REMOVED"


def deidentify_bundle(datasets: list[Dataset], scrub: Callable[[str], str] | None = None,
                      uids: UidMap | None = None) -> UidMap:
    """All objects of one export through one UID map (references between them stay consistent);
    ``uids`` continues a map other objects of the same store already went through."""
    if uids is None:  # not `uids or ...`: an unused map is empty, so falsy
        uids = UidMap()
    for ds in datasets:
        deidentify_dataset(ds, uids, scrub)
    return uids


SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"


def _sop_name(ds: Dataset) -> str:
    sop = ds.get("SOPClassUID")
    return sop.name if sop else "no SOP class"


def deidentify_file_copy(ds: Dataset, uids: UidMap) -> None:
    """A scanner's DICOM file read into memory (``ds``), de-identified through ``uids`` by the
    retain list of retain.py (only attributes needed to view the image are kept, UIDs remapped;
    every date, name, ID, free text, private tag, overlay and curve goes), then the Patient and
    General Study attributes as pseudonym / dummies. The file on disk is never written.

    Raises:
        ValueError: not an image (no pixel data, or a SEG), or the pixels may show identifiers
            (BurnedInAnnotation YES, or an overlay in the pixel data's unused bits), which
            de-identification of the header cannot remove.
    """
    if not any(kw in ds for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")) or \
            str(ds.get("SOPClassUID", "")) == SEGMENTATION:
        # The retain list keeps what an image needs: a report, document or SEG would lose its content.
        raise ValueError(f"not an image ({_sop_name(ds)}): --deidentify keeps only the attributes an image needs; "
                         "send a run's objects as RUN")
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise ValueError("BurnedInAnnotation is YES: its pixels may show identifiers, which de-identification "
                         "of the header cannot remove")
    if (group := embedded_overlay(ds)) is not None:
        raise ValueError(f"overlay {group:04X} lies in the pixel data's unused bits: it may show identifiers, "
                         "which de-identification of the header cannot remove")
    # Same study dates as the run's objects built from this file get (a dummy where it had one).
    dated = {kw: bool(ds.get(kw)) for kw in ("StudyDate", "StudyTime")}
    retain_only(ds, uids, KEEP_UID)
    complete_equipment(ds)
    clean_file_meta(ds)
    ds.PatientName, ds.PatientID = uids.dummies["PatientName"], uids.dummies["PatientID"]
    ds.PatientBirthDate = ds.PatientSex = ds.ReferringPhysicianName = ds.AccessionNumber = ""
    ds.StudyDate = DATE_DUMMY["DA"] if dated["StudyDate"] else ""
    ds.StudyTime = DATE_DUMMY["TM"] if dated["StudyTime"] else ""
    ds.StudyID = uids.dummies["StudyID"]
    _mark(ds, FILE_METHOD, FILE_METHOD_CODES)
    ds.LongitudinalTemporalInformationModified = "REMOVED"


__all__ = ["UidMap", "deidentify_bundle", "deidentify_dataset", "deidentify_file_copy", "patient_of"]
