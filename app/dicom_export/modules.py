"""The source's Patient and General Study modules, copied onto objects pydicom builds itself
(highdicom copies the same modules for the SEG and the SR)."""
from __future__ import annotations

from datetime import datetime

from pydicom.dataset import Dataset

# Patient module (C.7.1.1) and General Study module (C.7.2.1) attributes, as present in the source.
PATIENT = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
           "OtherPatientIDsSequence", "PatientComments", "PatientIdentityRemoved", "DeidentificationMethod",
           "DeidentificationMethodCodeSequence")
STUDY = ("StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
         "StudyDescription", "IssuerOfAccessionNumberSequence")
TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
         "ReferringPhysicianName", "StudyID", "AccessionNumber")


def copy_patient_study(source: Dataset, target: Dataset) -> None:
    for keyword in PATIENT + STUDY:
        if keyword in source:
            target[keyword] = source[keyword]
    for keyword in TYPE2:  # type 2: present, empty when the source has no value
        if keyword not in target:
            setattr(target, keyword, "")


def now_da_tm() -> tuple[str, str]:
    t = datetime.now()
    return t.strftime("%Y%m%d"), t.strftime("%H%M%S")
