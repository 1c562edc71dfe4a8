"""De-identification of arbitrary scanner images (``pacs store --file ... --deidentify``) by a
retain list: what is not listed here is dropped.

Why not the REMOVE/EMPTY lists of deidentify.py: those cover the modules CARE writes into its
own SEG/SR/PDF. A CT/MR/CR/US file from any vendor can carry any of the ~500 identifying
attributes of PS3.15 Table E.1-1 (and free text in any sequence, overlays, curves, private
tags), so a list of what to remove is never complete; a list of what to keep is.

Kept: what the app's loader (app/study/dicom/) and a viewer need to show the image as the
original (pixels, geometry, rescale, windows, palette, US calibration, multi-frame functional
groups) and the SOP/study/series/frame-of-reference UIDs and references, remapped through the
call's one UidMap. Everything else goes: every date and time, every name, ID and free-text
value, private tags, overlays (60xx), curves (50xx). The type-1/2 attributes the IODs need
come back as dummies (type 1: a fixed value; type 2: empty), only where the source had them.
"""
from __future__ import annotations

from typing import Callable

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

# Non-identifying and needed to view the image (or to name it: SOP common, references).
RETAIN = frozenset({
    # SOP common, identity (UIDs remapped) and references
    "SOPClassUID", "SOPInstanceUID", "SpecificCharacterSet", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID", "SynchronizationFrameOfReferenceUID", "ConcatenationUID",
    "SOPInstanceUIDOfConcatenationSource", "InConcatenationNumber", "InConcatenationTotalNumber",
    "ConcatenationFrameOffsetNumber", "ReferencedImageSequence", "SourceImageSequence", "DerivationImageSequence",
    "ReferencedInstanceSequence", "ReferencedSeriesSequence", "ReferencedSOPClassUID", "ReferencedSOPInstanceUID",
    "ReferencedFrameNumber", "ReferencedSegmentNumber", "PurposeOfReferenceCodeSequence", "DerivationCodeSequence",
    "SpatialLocationsPreserved", "IrradiationEventIdentificationSequence", "IrradiationEventUID",
    # series / image identification without identifiers
    "Modality", "SeriesNumber", "InstanceNumber", "AcquisitionNumber", "ImageType", "BodyPartExamined",
    "PatientPosition", "Laterality", "ImageLaterality", "FrameLaterality", "ViewPosition", "ConversionType",
    "PresentationIntentType", "ScanningSequence", "SequenceVariant", "AnatomicRegionSequence",
    "FrameAnatomySequence",
    # Image Pixel module
    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
    "PixelRepresentation", "PlanarConfiguration", "PixelData", "FloatPixelData", "DoubleFloatPixelData",
    "NumberOfFrames", "PixelAspectRatio", "SmallestImagePixelValue", "LargestImagePixelValue",
    "PixelPaddingValue", "PixelPaddingRangeLimit", "ExtendedOffsetTable", "ExtendedOffsetTableLengths",
    "ICCProfile", "ColorSpace",
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData", "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData", "SegmentedBluePaletteColorLookupTableData",
    "PaletteColorLookupTableUID",
    # geometry and frame timing
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "ImagerPixelSpacing",
    "NominalScannedPixelSpacing", "PixelSpacingCalibrationType", "SliceThickness", "SpacingBetweenSlices",
    "SliceLocation", "PatientOrientation", "FrameIncrementPointer", "FrameTime", "FrameTimeVector", "CineRate",
    "RecommendedDisplayFrameRate", "GridFrameOffsetVector", "DoseGridScaling", "DoseUnits", "DoseType",
    "DoseSummationType",
    # what the loader splits stacks by (relative times, not dates)
    "EchoNumbers", "EchoTime", "TriggerTime", "TemporalPositionIdentifier", "NumberOfTemporalPositions",
    # multi-frame functional groups (the same list applies inside)
    "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence", "PixelMeasuresSequence",
    "PlanePositionSequence", "PlaneOrientationSequence", "FrameContentSequence", "PixelValueTransformationSequence",
    "FrameVOILUTSequence", "MREchoSequence", "EffectiveEchoTime", "MRImageFrameTypeSequence",
    "CTImageFrameTypeSequence", "FrameType", "PixelPresentation", "VolumetricProperties",
    "VolumeBasedCalculationTechnique", "ComplexImageComponent", "AcquisitionContrast", "FrameAcquisitionNumber",
    "StackID", "InStackPositionNumber", "TemporalPositionIndex", "DimensionIndexValues",
    "FrameAcquisitionDuration", "DimensionOrganizationSequence", "DimensionOrganizationUID",
    "DimensionIndexSequence", "DimensionIndexPointer", "FunctionalGroupPointer", "DimensionOrganizationType",
    # NM frame index vectors (what FrameIncrementPointer may point at)
    "EnergyWindowVector", "DetectorVector", "PhaseVector", "RotationVector", "RRIntervalVector", "TimeSlotVector",
    "SliceVector", "AngularViewVector", "TimeSliceVector",
    # Enhanced MR: the type-1C enumerated / numeric values of the MR Image and Spectroscopy
    # Instance macro and the MR Pulse Sequence module (no text, no date)
    "AcquisitionDuration", "ContentQualification", "KSpaceFiltering", "MagneticFieldStrength", "ResonantNucleus",
    "ApplicableSafetyStandardAgency", "MRAcquisitionType", "EchoPlanarPulseSequence", "EchoPulseSequence",
    "GeometryOfKSpaceTraversal", "MultiPlanarExcitation", "MultipleSpinEcho", "NumberOfKSpaceTrajectories",
    "OversamplingPhase", "PhaseContrast", "SaturationRecovery", "SegmentedKSpaceTraversal",
    "SpectrallySelectedSuppression", "SteadyStatePulseSequence", "TimeOfFlightContrast", "CoverageOfKSpace",
    "RectilinearPhaseEncodeReordering",
    # rescale, LUTs, windows
    "RescaleIntercept", "RescaleSlope", "RescaleType", "WindowCenter", "WindowWidth", "VOILUTFunction",
    "ModalityLUTSequence", "VOILUTSequence", "LUTDescriptor", "LUTData", "ModalityLUTType", "PresentationLUTShape",
    "PresentationLUTSequence",
    # compression and pixel-content flags
    "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod", "BurnedInAnnotation",
    "RecognizableVisualFeatures",
    # ultrasound calibration regions
    "SequenceOfUltrasoundRegions", "RegionSpatialFormat", "RegionDataType", "RegionFlags", "RegionLocationMinX0",
    "RegionLocationMinY0", "RegionLocationMaxX1", "RegionLocationMaxY1", "ReferencePixelX0", "ReferencePixelY0",
    "PhysicalUnitsXDirection", "PhysicalUnitsYDirection", "ReferencePixelPhysicalValueX",
    "ReferencePixelPhysicalValueY", "PhysicalDeltaX", "PhysicalDeltaY", "TransducerFrequency",
    "PulseRepetitionFrequency", "DopplerCorrectionAngle", "SteeringAngle", "DopplerSampleVolumeXPosition",
    "DopplerSampleVolumeYPosition", "TMLinePositionX0", "TMLinePositionY0", "TMLinePositionX1", "TMLinePositionY1",
    "PixelComponentOrganization", "PixelComponentMask", "PixelComponentRangeStart", "PixelComponentRangeStop",
    "PixelComponentPhysicalUnits", "PixelComponentDataType", "NumberOfTableBreakPoints", "TableOfXBreakPoints",
    "TableOfYBreakPoints", "NumberOfTableEntries", "TableOfPixelValues", "TableOfParameterValues",
    "UltrasoundColorDataPresent",
})
# Code items are kept inside the kept code sequences, and only from published coding schemes:
# a private scheme's ("99" prefix, PS3.16 8.1) CodeMeaning is free text like any other.
CODE = frozenset({"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning", "LongCodeValue",
                  "URNCodeValue"})

# Where the source had them, the IOD needs them: type 2 (kept empty) ...
EMPTY_IF_PRESENT = frozenset({
    "PositionReferenceIndicator", "KVP", "ScanOptions", "RepetitionTime", "EchoTrainLength",
    "InversionTime", "ContrastBolusAgent", "AcquisitionContextSequence", "DetectorType", "SequenceName",
    "ReferencedPerformedProcedureStepSequence",
})
# ... and type 1 in some IOD (Enhanced General Equipment, Enhanced image modules, Frame Content),
# given a dummy.
TEXT_DUMMY = "DEIDENTIFIED"
DUMMY_IF_PRESENT = frozenset({
    "Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions", "ContentDate", "ContentTime",
    "AcquisitionDateTime", "FrameAcquisitionDateTime", "FrameReferenceDateTime", "PulseSequenceName",
})
DATE_DUMMY = {"DA": "19000101", "TM": "000000", "DT": "19000101000000"}
# Always present (Patient and General Study modules, type 2), given by the de-identifier.
STUDY_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
              "ReferringPhysicianName", "StudyID", "AccessionNumber")
# File meta: what a file needs; the AE titles and private information of the sender go.
META_KEEP = frozenset({"FileMetaInformationVersion", "MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID",
                       "TransferSyntaxUID"})


def _keep_code_item(item: Dataset) -> bool:
    scheme = str(item.get("CodingSchemeDesignator", "") or "").strip().upper()
    return bool(scheme) and not scheme.startswith("99")


def retain_only(ds: Dataset, uids: Callable[[str], str], keep_uid: frozenset[str],
                in_code_sequence: bool = False) -> None:
    """Drop, in place and in every nested item, each element outside RETAIN (code items only in
    code sequences of published schemes); UIDs kept are remapped through ``uids`` (the UidMap),
    except those ``keep_uid`` names (SOP classes and the like); the type-1/2 attributes of
    EMPTY_IF_PRESENT / DUMMY_IF_PRESENT are emptied / replaced instead."""
    for elem in list(ds):
        kw = elem.keyword
        if elem.tag.is_private or not kw:
            del ds[elem.tag]
        elif kw in RETAIN or (in_code_sequence and kw in CODE):
            if elem.VR == "SQ":
                code_seq = kw.endswith("CodeSequence") or kw == "AnatomicRegionSequence"
                items = [i for i in (elem.value or []) if not code_seq or _keep_code_item(i)]
                for item in items:
                    retain_only(item, uids, keep_uid, code_seq)
                elem.value = Sequence(items)
            elif elem.VR == "UI" and kw not in keep_uid and elem.value:
                elem.value = [uids(u) for u in elem.value] if elem.VM > 1 else uids(elem.value)
        elif kw in EMPTY_IF_PRESENT:
            elem.value = Sequence() if elem.VR == "SQ" else None
        elif kw in DUMMY_IF_PRESENT:
            elem.value = DATE_DUMMY.get(elem.VR, TEXT_DUMMY)
        else:
            del ds[elem.tag]


def complete_equipment(ds: Dataset) -> None:
    """A dummied equipment attribute keeps the General Equipment module present, whose
    Manufacturer is type 2 (type 1 in Enhanced General Equipment): it gets the dummy too."""
    if "Manufacturer" not in ds and any(kw in ds for kw in ("ManufacturerModelName", "DeviceSerialNumber",
                                                             "SoftwareVersions")):
        ds.Manufacturer = TEXT_DUMMY


def clean_file_meta(ds: Dataset) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    for elem in list(meta):
        if elem.keyword not in META_KEEP:
            del meta[elem.tag]
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def embedded_overlay(ds: Dataset) -> int | None:
    """The group of an overlay stored in the pixel data's unused high bits (retired, PS3.5
    2004), which dropping the 60xx group would not remove; None when there is none."""
    for group in range(0x6000, 0x6020, 2):
        if (group, 0x0010) in ds and (group, 0x3000) not in ds:
            return group
    return None


__all__ = ["DATE_DUMMY", "EMPTY_IF_PRESENT", "DUMMY_IF_PRESENT", "RETAIN", "STUDY_KEYS", "TEXT_DUMMY",
           "clean_file_meta", "complete_equipment", "embedded_overlay", "retain_only"]
