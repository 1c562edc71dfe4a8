"""Which storage SOP classes and transfer syntaxes we offer when receiving (C-GET / C-MOVE),
and DIMSE status codes in words."""
from __future__ import annotations

from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         JPEG2000, JPEG2000Lossless, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1,
                         JPEGLSLossless, JPEGLSNearLossless, RLELossless)

# Uncompressed first: the archive then sends the pixels as stored when it can.
RETRIEVE_TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                              JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1, JPEGLSLossless,
                              JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, RLELossless]


def _storage_classes() -> list[str]:
    # The image, SEG, SR and PDF classes a reading workstation meets, then pynetdicom's list
    # (one association carries at most 128 presentation contexts; C-GET also needs its own).
    first = [
        "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1",  # CT, enhanced CT
        "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1",  # MR, enhanced MR
        "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.130",  # PET, enhanced PET
        "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1",  # CR, DX
        "1.2.840.10008.5.1.4.1.1.1.2", "1.2.840.10008.5.1.4.1.1.6.1",  # MG, US
        "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.20",  # US multiframe, NM
        "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.12.1",  # SC, XA
        "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.34",  # SEG, Comprehensive 3D SR
        "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.22",  # Comprehensive SR, Enhanced SR
        "1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.104.1",  # Basic Text SR, Encapsulated PDF
        "1.2.840.10008.5.1.4.1.1.481.3", "1.2.840.10008.5.1.4.1.1.11.1",  # RT Structure Set, GSPS
    ]
    try:
        from pynetdicom import StoragePresentationContexts

        more = [str(cx.abstract_syntax) for cx in StoragePresentationContexts]
    except ImportError:  # pragma: no cover - pynetdicom is a dependency
        more = []
    return list(dict.fromkeys(first + more))


STORAGE_CLASSES = _storage_classes()

_STATUS = {
    0x0000: "success",
    0x0001: "success with warnings",
    0x0122: "SOP class not supported",
    0x0124: "not authorised",
    0x0211: "unrecognised operation",
    0xA700: "out of resources",
    0xA701: "out of resources (cannot calculate the number of matches)",
    0xA702: "out of resources (cannot perform sub-operations)",
    0xA801: "move destination unknown",
    0xA900: "identifier does not match SOP class",
    0xB000: "sub-operations complete, one or more failures or warnings",
    0xC000: "unable to process",
    0xFE00: "cancelled",
}


def status_text(code: int) -> str:
    word = _STATUS.get(code)
    if word is None:
        word = "failure" if 0xA000 <= code <= 0xCFFF else "warning" if 0xB000 <= code <= 0xBFFF else "status"
    return f"status 0x{code:04X} ({word})"
