"""DIMSE (C-ECHO / C-FIND / C-GET / C-MOVE / C-STORE) with pynetdicom; failures are PacsErrors.

Retrieval asks for one instance at a time (IMAGE level) on one association, so it is
resumable, each file is verified before it is written, and a cancel takes effect between
instances. C-GET receives the instances on that association; C-MOVE (``node.move_port``)
has the archive send them to our own Storage SCP, which the archive must know as
``node.calling_ae`` at this host and that port.
"""
from __future__ import annotations

import contextlib
import logging
import re
import ssl
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

from pydicom.dataset import Dataset

from app.pacs.dimse_contexts import RETRIEVE_TRANSFER_SYNTAXES, STORAGE_CLASSES, status_text
from app.pacs.errors import PacsError
from app.pacs.local_files import part10
from app.pacs.models import (EchoResult, InstanceRef, QueryFilter, RetrieveResult, SeriesMatch, StoreResult,
                             StudyMatch)
from app.pacs.nodes import PacsNode
from app.pacs.transfer import (CancelCheck, InstanceUnavailable, ProgressCallback, run_retrieve, sort_refs,
                              study_match)

_PENDING = (0xFF00, 0xFF01)
_LOG = logging.getLogger("pynetdicom")


class _LogCapture(logging.Handler):
    """pynetdicom logs why an association failed (rejection source and reason, socket error)
    but keeps it nowhere else; this collects those lines for the one-line PacsError."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _association_failure(assoc: object, lines: list[str], ae_title: str) -> str:
    text = " ".join(lines)
    reason = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Reason:")), "")
    if getattr(assoc, "is_rejected", False):
        if "called ae title" in reason.lower():
            return f"association rejected: called AE title {ae_title!r} not recognised (check the AE title)"
        if "calling ae title" in reason.lower():
            return "association rejected: our calling AE title is not known to the node (add it on the node)"
        return f"association rejected{': ' + reason.lower() if reason else ''}"
    ssl_reason = re.search(r"\[SSL[^\]]*\] ([^(]+)", text)
    if ssl_reason:
        return f"TLS failed: {ssl_reason.group(1).strip()} (trust the node's CA with ca_file)"
    if "connection reset" in text.lower() and "Association Aborted" in text:
        return "the node dropped the association at once (does it require TLS, or our IP address?)"
    if "refused" in text.lower() or "unable to connect" in text.lower() or "TCP Initialisation" in text:
        return "cannot connect (connection refused or host unreachable): is the node running?"
    if "timeout" in text.lower() or "timed out" in text.lower():
        return "no answer in time (association request timed out)"
    if "presentation context" in text.lower():
        return "association aborted: the node accepted none of the proposed services"
    return "association failed" + (f" ({lines[-1]})" if lines else "")


def _id(ds: Dataset | None, keyword: str) -> str:
    v = ds.get(keyword, "") if ds is not None else ""
    return "" if v is None else str(v)


class DimseClient:
    def __init__(self, node: PacsNode) -> None:
        self.node = node

    # --- associations -------------------------------------------------------------
    def _new_ae(self):
        from pynetdicom import AE

        ae = AE(ae_title=self.node.calling_ae)
        ae.acse_timeout = 10
        ae.dimse_timeout = 60
        ae.network_timeout = 60
        ae.connection_timeout = 5
        return ae

    def _tls_args(self) -> tuple[ssl.SSLContext, str] | None:
        if not self.node.tls.enabled:
            return None
        ctx = ssl.create_default_context(cafile=self.node.tls.ca_file or None)
        if self.node.tls.cert_file:
            ctx.load_cert_chain(self.node.tls.cert_file, self.node.tls.key_file or None)
        return ctx, str(self.node.host)

    @contextlib.contextmanager
    def _association(self, ae, evt_handlers: list | None = None, ext_neg: list | None = None) -> Iterator[object]:
        capture = _LogCapture()
        _LOG.addHandler(capture)
        try:
            assoc = ae.associate(str(self.node.host), int(self.node.port), ae_title=str(self.node.ae_title),
                                 tls_args=self._tls_args(), evt_handlers=evt_handlers or [], ext_neg=ext_neg)
        except (OSError, ssl.SSLError) as exc:
            raise self.node.error(f"cannot connect ({exc.__class__.__name__}: {exc})") from None
        finally:
            _LOG.removeHandler(capture)
        if not assoc.is_established:
            raise self.node.error(_association_failure(assoc, capture.lines, str(self.node.ae_title)))
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _lost(self, assoc: object, what: str) -> None:
        if getattr(assoc, "is_aborted", False) or not getattr(assoc, "is_established", True):
            raise self.node.error(f"the association was aborted during {what}")

    # --- services -----------------------------------------------------------------
    def echo(self) -> EchoResult:
        from pynetdicom.sop_class import Verification

        t0 = time.monotonic()
        ae = self._new_ae()
        ae.add_requested_context(Verification)
        try:
            with self._association(ae) as assoc:
                status = assoc.send_c_echo()
        except PacsError as exc:
            return EchoResult(False, str(exc), time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 - an echo reports, it does not raise
            return EchoResult(False, str(self.node.error(f"C-ECHO failed: {exc}")), time.monotonic() - t0)
        seconds = time.monotonic() - t0
        code = int(status.get("Status", -1)) if status else -1
        if code != 0:
            msg = "no C-ECHO response" if code < 0 else f"C-ECHO answered {status_text(code)}"
            return EchoResult(False, str(self.node.error(msg)), seconds)
        return EchoResult(True, f"PACS node {self.node.label}: C-ECHO succeeded in {seconds:.2f} s", seconds)

    def _find(self, identifier: Dataset, what: str) -> list[Dataset]:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FindModel

        ae = self._new_ae()
        ae.add_requested_context(FindModel)
        out: list[Dataset] = []
        with self._association(ae) as assoc:
            for status, found in assoc.send_c_find(identifier, FindModel):
                if not status:
                    self._lost(assoc, what)
                    raise self.node.error(f"no answer in time to {what}")
                code = int(status.Status)
                if code in _PENDING:
                    if found is not None:
                        out.append(found)
                elif code != 0:
                    raise self.node.error(f"{what} failed: {status_text(code)}")
        return out

    def find_studies(self, query: QueryFilter) -> list[StudyMatch]:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        keys = query.keys()
        for kw in ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber",
                   "ModalitiesInStudy", "StudyDescription", "NumberOfStudyRelatedSeries",
                   "NumberOfStudyRelatedInstances"):
            setattr(ds, kw, keys.get(kw, ""))
        found = self._find(ds, "the study query (C-FIND)")
        return [study_match(_id(d, "StudyInstanceUID"), _id(d, "PatientID"), _id(d, "PatientName"),
                            _id(d, "StudyDate"), _id(d, "AccessionNumber"), d.get("ModalitiesInStudy"),
                            _id(d, "StudyDescription"), d.get("NumberOfStudyRelatedSeries"),
                            d.get("NumberOfStudyRelatedInstances")) for d in found]

    def find_series(self, study_uid: str) -> list[SeriesMatch]:
        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES"
        ds.StudyInstanceUID = study_uid
        for kw in ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                   "NumberOfSeriesRelatedInstances"):
            setattr(ds, kw, "")
        found = self._find(ds, f"the series query of study {study_uid} (C-FIND)")
        out = [SeriesMatch(study_uid=study_uid, series_uid=_id(d, "SeriesInstanceUID"), modality=_id(d, "Modality"),
                           number=_int(d.get("SeriesNumber")), description=_id(d, "SeriesDescription"),
                           n_instances=_int(d.get("NumberOfSeriesRelatedInstances"))) for d in found]
        return sorted(out, key=lambda s: (s.number if s.number is not None else 1 << 31, s.series_uid))

    def find_instances(self, study_uid: str, series_uid: str | None = None) -> list[InstanceRef]:
        series = [series_uid] if series_uid else [s.series_uid for s in self.find_series(study_uid)]
        refs: list[InstanceRef] = []
        for se in series:  # Study Root IMAGE level needs one series UID per query
            ds = Dataset()
            ds.QueryRetrieveLevel = "IMAGE"
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = se
            ds.SOPInstanceUID = ""
            ds.InstanceNumber = ""
            for d in self._find(ds, f"the instance list of series {se} (C-FIND)"):
                refs.append(InstanceRef(study_uid, se, _id(d, "SOPInstanceUID"), _int(d.get("InstanceNumber"))))
        return sort_refs(refs)

    def _image_identifier(self, ref: InstanceRef) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID = ref.study_uid
        ds.SeriesInstanceUID = ref.series_uid
        ds.SOPInstanceUID = ref.sop_uid
        return ds

    def _sub_operations(self, assoc: object, responses, ref: InstanceRef, received: dict[str, Dataset],
                        lock: threading.Lock, verb: str) -> Dataset:
        final_code, failures, sub_ops = None, "", 0
        for status, identifier in responses:
            if not status:
                self._lost(assoc, f"the {verb} of instance {ref.sop_uid}")
                raise self.node.error(f"no answer in time to the {verb} of instance {ref.sop_uid}")
            code = int(status.Status)
            if code not in _PENDING:
                final_code = code
                failures = _id(identifier, "FailedSOPInstanceUIDList")
                sub_ops = sum(int(status.get(k, 0) or 0) for k in (
                    "NumberOfCompletedSuboperations", "NumberOfFailedSuboperations", "NumberOfWarningSuboperations"))
        with lock:
            ds = received.pop(ref.sop_uid, None)
        if ds is not None:
            return ds
        if final_code in (0xA701, 0xA702, 0xA801):
            raise self.node.error(f"{verb} of instance {ref.sop_uid} refused: {status_text(final_code)}")
        why = status_text(final_code) if final_code is not None else "no final response"
        gone = " (it may have been deleted from the node)" if final_code in (0, 0xB000, 0xC000, None) or failures else ""
        if verb == "C-MOVE" and final_code is not None and final_code >= 0xA000 and sub_ops == 0:
            # Orthanc answers an unknown move destination and a missing instance alike.
            gone = (" (it may have been deleted from the node, or the node does not know our AE title "
                    f"{self.node.calling_ae!r} as a move destination at this host and port {self.node.move_port})")
        raise InstanceUnavailable(f"{verb} sent no instance {ref.sop_uid}: {why}{gone}")

    def retrieve(self, study_uid: str, series_uid: str | None = None, *, out_dir: Path,
                 progress: ProgressCallback | None = None, cancel: CancelCheck | None = None) -> RetrieveResult:
        refs = self.find_instances(study_uid, series_uid)
        if not refs:
            raise self.node.error(f"no instances of study {study_uid}" + (f" series {series_uid}" if series_uid else ""))
        with self._retriever() as fetch:
            return run_retrieve(self.node, refs, study_uid, series_uid, Path(out_dir), fetch, progress, cancel)

    @contextlib.contextmanager
    def _retriever(self) -> Iterator:
        """A ``fetch(ref) -> Dataset`` over one open association (C-GET or C-MOVE)."""
        from pynetdicom import build_role, evt

        received: dict[str, Dataset] = {}
        lock = threading.Lock()

        def on_store(event) -> int:
            ds = event.dataset
            ds.file_meta = event.file_meta
            with lock:
                received[str(ds.get("SOPInstanceUID", ""))] = ds
            return 0x0000

        ae = self._new_ae()
        if self.node.move_port:
            from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MoveModel

            scp_ae = self._new_ae()
            for uid in STORAGE_CLASSES:
                scp_ae.add_supported_context(uid, RETRIEVE_TRANSFER_SYNTAXES)
            local = self.node.host in ("127.0.0.1", "localhost", "::1")
            try:
                server = scp_ae.start_server(("127.0.0.1" if local else "", int(self.node.move_port)), block=False,
                                             evt_handlers=[(evt.EVT_C_STORE, on_store)])
            except OSError as exc:
                raise self.node.error(f"cannot listen for C-MOVE on port {self.node.move_port} ({exc.strerror})") from None
            ae.add_requested_context(MoveModel)
            try:
                with self._association(ae) as assoc:
                    def fetch_move(ref: InstanceRef) -> Dataset:
                        responses = assoc.send_c_move(self._image_identifier(ref), self.node.calling_ae, MoveModel)
                        return self._sub_operations(assoc, responses, ref, received, lock, "C-MOVE")
                    yield fetch_move
            finally:
                server.shutdown()
            return
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GetModel

        ae.add_requested_context(GetModel)
        roles = []
        for uid in STORAGE_CLASSES[:120]:  # 128 contexts at most in one association
            ae.add_requested_context(uid, RETRIEVE_TRANSFER_SYNTAXES)
            roles.append(build_role(uid, scp_role=True))
        with self._association(ae, evt_handlers=[(evt.EVT_C_STORE, on_store)], ext_neg=roles) as assoc:
            def fetch_get(ref: InstanceRef) -> Dataset:
                responses = assoc.send_c_get(self._image_identifier(ref), GetModel)
                return self._sub_operations(assoc, responses, ref, received, lock, "C-GET")
            yield fetch_get

    def first_instance(self, study_uid: str, series_uid: str) -> Dataset | None:
        refs = self.find_instances(study_uid, series_uid)
        if not refs:
            return None
        with self._retriever() as fetch:
            try:
                return fetch(refs[0])
            except InstanceUnavailable:
                return None

    def store(self, datasets: Sequence[Dataset]) -> StoreResult:
        result = StoreResult()
        if not datasets:
            return result
        ready = [part10(ds) for ds in datasets]  # pynetdicom encodes by file_meta.TransferSyntaxUID
        contexts = sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in ready})
        if len(contexts) > 128:
            raise self.node.error(f"{len(contexts)} kinds of object in one store: at most 128 per association")
        ae = self._new_ae()
        for sop_class, ts in contexts:
            ae.add_requested_context(sop_class, [ts])
        with self._association(ae) as assoc:
            for ds in ready:
                uid = str(ds.SOPInstanceUID)
                try:
                    status = assoc.send_c_store(ds)
                except ValueError as exc:  # no accepted presentation context for this SOP class
                    result.failed.append((uid, f"the node does not accept this object ({exc})"))
                    continue
                if not status:
                    self._lost(assoc, f"the C-STORE of {uid}")
                    result.failed.append((uid, "no C-STORE response in time"))
                    continue
                code = int(status.Status)
                if code == 0 or 0xB000 <= code <= 0xBFFF:  # success, or stored with a warning
                    result.stored.append(uid)
                else:
                    result.failed.append((uid, f"C-STORE {status_text(code)}"))
        return result


def _int(v: object) -> int | None:
    try:
        return int(str(v)) if v not in (None, "") else None
    except ValueError:
        return None

