"""Study loading: DICOM, NIfTI, NRRD/MHA and 2D images into one :class:`Volume` model.

No Qt here: the CLI, the pipeline and the tests use it headless.
"""
from .volume import LoadError, LoadResult, PatientInfo, SourceFormat, Volume, Window

__all__ = ["LoadError", "LoadResult", "PatientInfo", "SourceFormat", "Volume", "Window", "load", "sample_study_path"]


def __getattr__(name: str):  # lazy: importing app.study must not pull in pydicom/SimpleITK
    if name == "load":
        from .loader import load

        return load
    if name == "sample_study_path":
        from .sample import sample_study_path

        return sample_study_path
    raise AttributeError(name)
