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

# Study scope (a study-scope run's ``study`` section): one group for the 3-D lesion, one per evidence slice.
LESION_3D = _care("LESION-3D", "3-D lesion propagated through the series")
EVIDENCE_SLICE = _care("EVIDENCE-SLICE", "Evidence slice of a study-scope answer")
VOXELS = _care("VOXELS", "Voxels in the 3-D mask")
EXTENT_SLICES = _care("EXTENT-SLICES", "Lesion extent in slices")
EXTENT_MM = _care("EXTENT-MM", "Lesion extent across slices")
DIAMETER_PX = _care("DIAMETER-PX", "Largest axial diameter in pixels")
FIRST_SLICE = _care("FIRST-SLICE", "First slice of the lesion (1-based)")
LAST_SLICE = _care("LAST-SLICE", "Last slice of the lesion (1-based)")
SEED_SLICE = _care("SEED-SLICE", "Slice the prompt was given on (1-based)")
SLICE_C_MIN = _care("SLICE-C-MIN", "Lowest per-slice mask confidence C")
SLICE_C_MEDIAN = _care("SLICE-C-MEDIAN", "Median per-slice mask confidence C")
SLICE_C_MAX = _care("SLICE-C-MAX", "Highest per-slice mask confidence C")
SLICE_NUMBER = _care("SLICE-NUMBER", "Slice number in the series (1-based)")
SLICE_AREA = _care("SLICE-AREA", "Confident cross-section area")
SLICE_C = _care("SLICE-C", "Mask confidence C of the slice's cross-section")
COUNTED = _care("COUNTED", "Slice answer counted by the aggregation")
GAVE_ANSWER = _care("GAVE-ANSWER", "Slice gave the study's answer")
STUDY_SCOPE = _care("STUDY-SCOPE", "Study scope of the answer")
STUDY_RULE = _care("STUDY-RULE", "Aggregation rule over the evidence slices")
STUDY_RESULT = _care("STUDY-RESULT", "Aggregation result")
STUDY_SLICE_ANSWER = _care("SLICE-ANSWER", "Answer on an evidence slice")
LESION_STOPS = _care("LESION-STOPS", "Why the propagation stopped at each end")
