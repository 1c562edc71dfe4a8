"""The one interface the CLI and the study browser use, whatever the protocol."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

from pydicom.dataset import Dataset

from app.pacs.models import (EchoResult, InstanceRef, QueryFilter, RetrieveResult, SeriesMatch, StoreResult,
                             StudyMatch)
from app.pacs.nodes import PacsNode, PacsProtocol
from app.pacs.transfer import CancelCheck, InstanceUnavailable, ProgressCallback

__all__ = ["PacsClient", "client_for", "CancelCheck", "ProgressCallback", "InstanceUnavailable"]


class PacsClient(Protocol):
    node: PacsNode

    def echo(self) -> EchoResult: ...

    def find_studies(self, query: QueryFilter) -> list[StudyMatch]: ...

    def find_series(self, study_uid: str) -> list[SeriesMatch]: ...

    def find_instances(self, study_uid: str, series_uid: str | None = None) -> list[InstanceRef]: ...

    def retrieve(self, study_uid: str, series_uid: str | None = None, *, out_dir: Path,
                 progress: ProgressCallback | None = None, cancel: CancelCheck | None = None) -> RetrieveResult: ...

    def store(self, datasets: Sequence[Dataset]) -> StoreResult: ...

    def first_instance(self, study_uid: str, series_uid: str) -> Dataset | None: ...


def client_for(node: PacsNode) -> PacsClient:
    if node.protocol is PacsProtocol.DICOMWEB:
        from app.pacs.dicomweb import DicomWebClient

        return DicomWebClient(node)
    from app.pacs.dimse import DimseClient

    return DimseClient(node)
