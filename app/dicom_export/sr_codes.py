"""The concepts of a CARE structured report: DICOM/SNOMED codes where one exists, else the
local scheme 99CARE (private codes, declared in the SR's CodingSchemeIdentificationSequence)."""
from __future__ import annotations

from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset

SCHEME = "99CARE"
SCHEME_NAME = "CARE Viewer local concepts"


def _care(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value, SCHEME, meaning)


QUALITATIVE_EVALUATIONS = CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
RUN_ID = _care("RUN-ID", "CARE run identifier")
QUESTION = _care("QUESTION", "Question")
ANSWER = _care("ANSWER", "Final answer")
MODE = _care("MODE", "CARE mode")
CREATED = _care("CREATED", "Run started")
EVIDENCE = _care("EVIDENCE", "Evidence type chosen")
DECISION = _care("DECISION", "Coordinator decision")
MODEL = _care("MODEL", "Model provenance")
OVERRIDE = _care("OVERRIDE", "Clinician override")
LEFT_OUT = _care("LEFT-OUT", "Mask not exported")
WEIGHTS = _care("WEIGHTS", "Weights disclosure")
CONFIDENCE = _care("MASK-C", "Mask confidence C = 1 - H/log 2")
TAU = _care("TAU", "Mask acceptance threshold tau")
ACCEPTED = _care("ACCEPTED", "Mask accepted")
CLINICIAN_ACCEPTED = _care("CLIN-VERDICT", "Mask verdict set by a clinician override")
DISCARDED = _care("DISCARDED", "Mask discarded by a clinician")
RUN_GROUP = _care("RUN", "CARE run without masks")

TEXT_CONCEPTS = {c.value: c for c in (RUN_ID, QUESTION, ANSWER, MODE, CREATED, EVIDENCE, DECISION, MODEL, OVERRIDE,
                                      LEFT_OUT, WEIGHTS)}


def scheme_identification() -> Dataset:
    item = Dataset()
    item.CodingSchemeDesignator = SCHEME
    item.CodingSchemeName = SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = "CARE Viewer"
    return item
