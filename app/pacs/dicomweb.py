"""DICOMweb (QIDO-RS / WADO-RS / STOW-RS) with dicomweb-client; every failure becomes a PacsError."""
from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Iterator, Sequence

import requests
from pydicom.dataset import Dataset

from app.pacs.transfer import (CancelCheck, InstanceUnavailable, ProgressCallback, run_retrieve, sort_refs,
                             study_match)
from app.pacs.errors import PacsError, http_reason
from app.pacs.local_files import part10
from app.pacs.models import (EchoResult, InstanceRef, QueryFilter, RetrieveResult, SeriesMatch, StoreResult,
                             StudyMatch)
from app.pacs.nodes import PacsNode

TIMEOUT_S = (5.0, 60.0)  # connect, read
_STUDY_FIELDS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber",
                 "ModalitiesInStudy", "StudyDescription", "NumberOfStudyRelatedSeries",
                 "NumberOfStudyRelatedInstances")
_SERIES_FIELDS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                  "NumberOfSeriesRelatedInstances")


class _QidoSession(requests.Session):
    """Sends DICOM matching characters (* ? ,) in query strings unescaped. Orthanc 1.10's
    DICOMweb plugin (Debian) does not percent-decode QIDO-RS values, so ``LUNG%2A`` matches
    nothing there; the raw characters are valid in a query and every server reads them.
    (``^`` cannot be sent raw: urllib3 re-escapes it; see ``_qido_filters``.)"""

    _RAW = {"%2A": "*", "%3F": "?", "%2C": ","}

    def request(self, method: str, url: str, *args: object, **kwargs: object) -> requests.Response:
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own ``verify``;
        # a node's ca_file must win.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        if request.url and "?" in request.url:
            base, _, query = request.url.partition("?")
            for esc, raw in self._RAW.items():
                query = query.replace(esc, raw).replace(esc.lower(), raw)
            request.url = f"{base}?{query}"
        return super().send(request, **kwargs)


def _qido_filters(query: QueryFilter) -> tuple[dict[str, str], re.Pattern[str] | None]:
    """The QIDO-RS filters, and a name pattern to apply here when the server cannot be asked exactly.

    A PN component separator ``^`` reaches Orthanc escaped (``%5E``), which it does not decode;
    the server is asked with ``?`` in its place (a superset) and the exact, case-insensitive
    DICOM wildcard match (as Orthanc's C-FIND does it) is done on the answers.
    """
    keys = query.keys()
    name = keys.get("PatientName", "")
    if "^" not in name:
        return keys, None
    keys["PatientName"] = name.replace("^", "?")
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name)
    return keys, re.compile(regex, re.IGNORECASE | re.DOTALL)


def _text(ds: Dataset, keyword: str) -> str:
    v = ds.get(keyword, "")
    return "" if v is None else str(v)


class DicomWebClient:
    def __init__(self, node: PacsNode) -> None:
        from dicomweb_client.api import DICOMwebClient

        self.node = node
        session = _QidoSession()
        if node.auth is not None:
            session.auth = (node.auth.username, node.auth.password(node.name) or "")
        if node.tls.ca_file:
            session.verify = node.tls.ca_file
        if node.tls.cert_file:
            session.cert = (node.tls.cert_file, node.tls.key_file) if node.tls.key_file else node.tls.cert_file
        self._web = DICOMwebClient(str(node.url), session=session, timeout=TIMEOUT_S)
        # Its default retries a refused connection for about a minute; a node that is down is
        # reported at once instead (a retrieve resumes when run again).
        self._web.set_http_retry_params(retry=False)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn what requests / dicomweb-client raise into one-line PacsErrors naming the node."""
        try:
            yield
        except requests.exceptions.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            raise self.node.error(http_reason(status, what)) from None
        except requests.exceptions.SSLError as exc:
            raise self.node.error(f"TLS failed for {what}: {_tls_reason(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else _short(exc)
            raise self.node.error(f"cannot connect for {what} ({reason}): is the node running?") from None
        except requests.exceptions.Timeout:
            raise self.node.error(f"no answer in time for {what}") from None
        except requests.exceptions.RequestException as exc:
            raise self.node.error(f"{what} failed: {_short(exc)}") from None
        except (ValueError, KeyError, TypeError) as exc:  # a reply that is not DICOM JSON / multipart
            raise self.node.error(f"unreadable reply to {what}: {_short(exc)}") from None

    def echo(self) -> EchoResult:
        t0 = time.monotonic()
        try:
            with self._errors("a QIDO-RS ping (/studies?limit=1)"):
                self._web.search_for_studies(limit=1)
        except PacsError as exc:
            return EchoResult(False, str(exc), time.monotonic() - t0)
        seconds = time.monotonic() - t0
        return EchoResult(True, f"PACS node {self.node.label}: DICOMweb answers (QIDO-RS in {seconds:.2f} s)", seconds)

    def find_studies(self, query: QueryFilter) -> list[StudyMatch]:
        with self._errors("the study query (QIDO-RS)"):
            filters, name_re = _qido_filters(query)
            rows = self._web.search_for_studies(search_filters=filters or None, fields=list(_STUDY_FIELDS))
            found = [Dataset.from_json(r) for r in rows]
        if name_re is not None:
            found = [d for d in found if name_re.fullmatch(_text(d, "PatientName"))]
        return [study_match(_text(d, "StudyInstanceUID"), _text(d, "PatientID"), _text(d, "PatientName"),
                            _text(d, "StudyDate"), _text(d, "AccessionNumber"), d.get("ModalitiesInStudy"),
                            _text(d, "StudyDescription"), d.get("NumberOfStudyRelatedSeries"),
                            d.get("NumberOfStudyRelatedInstances")) for d in found]

    def find_series(self, study_uid: str) -> list[SeriesMatch]:
        with self._errors(f"the series query of study {study_uid}"):
            rows = self._web.search_for_series(study_instance_uid=study_uid, fields=list(_SERIES_FIELDS))
            found = [Dataset.from_json(r) for r in rows]
        out = [SeriesMatch(study_uid=study_uid, series_uid=_text(d, "SeriesInstanceUID"), modality=_text(d, "Modality"),
                           number=_int(d.get("SeriesNumber")), description=_text(d, "SeriesDescription"),
                           n_instances=_int(d.get("NumberOfSeriesRelatedInstances"))) for d in found]
        return sorted(out, key=lambda s: (s.number if s.number is not None else 1 << 31, s.series_uid))

    def find_instances(self, study_uid: str, series_uid: str | None = None) -> list[InstanceRef]:
        what = f"the instance list of study {study_uid}" + (f" series {series_uid}" if series_uid else "")
        with self._errors(what):
            rows = self._web.search_for_instances(study_instance_uid=study_uid, series_instance_uid=series_uid,
                                                  fields=["SeriesInstanceUID", "SOPInstanceUID", "InstanceNumber"])
            found = [Dataset.from_json(r) for r in rows]
        return sort_refs([InstanceRef(study_uid, _text(d, "SeriesInstanceUID") or (series_uid or ""),
                                      _text(d, "SOPInstanceUID"), _int(d.get("InstanceNumber"))) for d in found])

    def _fetch(self, ref: InstanceRef) -> Dataset:
        what = f"instance {ref.sop_uid}"
        try:
            with self._errors(what):
                return self._web.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid)
        except PacsError as exc:
            if "HTTP 404" in exc.reason:  # this one instance is gone; the node itself answers
                raise InstanceUnavailable(exc.reason) from None
            raise

    def retrieve(self, study_uid: str, series_uid: str | None = None, *, out_dir: Path,
                 progress: ProgressCallback | None = None, cancel: CancelCheck | None = None) -> RetrieveResult:
        refs = self.find_instances(study_uid, series_uid)
        if not refs:
            raise self.node.error(f"no instances of study {study_uid}" + (f" series {series_uid}" if series_uid else ""))
        return run_retrieve(self.node, refs, study_uid, series_uid, Path(out_dir), self._fetch, progress, cancel)

    def first_instance(self, study_uid: str, series_uid: str) -> Dataset | None:
        refs = self.find_instances(study_uid, series_uid)
        if not refs:
            return None
        try:
            return self._fetch(refs[0])
        except InstanceUnavailable:
            return None

    def store(self, datasets: Sequence[Dataset]) -> StoreResult:
        result = StoreResult()
        if not datasets:
            return result
        sent = [str(ds.SOPInstanceUID) for ds in datasets]
        try:
            with self._errors(f"storing {len(datasets)} instance(s) (STOW-RS)"):
                reply = self._web.store_instances([part10(ds) for ds in datasets])
        except PacsError as exc:
            result.failed = [(uid, exc.reason) for uid in sent]
            return result
        failed = {str(item.get("ReferencedSOPInstanceUID", "")): _failure(item)
                  for item in reply.get("FailedSOPSequence", [])}
        accepted = {str(item.get("ReferencedSOPInstanceUID", "")) for item in reply.get("ReferencedSOPSequence", [])}
        for uid in sent:
            if uid in failed:
                result.failed.append((uid, failed[uid]))
            elif uid in accepted:
                result.stored.append(uid)
            else:
                result.failed.append((uid, "not listed as stored in the STOW-RS reply"))
        return result


def _failure(item: Dataset) -> str:
    code = item.get("FailureReason")
    return f"refused by the node (failure reason 0x{int(code):04X})" if code is not None else "refused by the node"


def _int(v: object) -> int | None:
    try:
        return int(str(v)) if v not in (None, "") else None
    except ValueError:
        return None


def _tls_reason(exc: BaseException) -> str:
    """The innermost SSL reason (e.g. "certificate verify failed: self-signed certificate"),
    not urllib3's retry wrapper around it."""
    m = re.search(r"\[SSL[^\]]*\] ([^(']+)", str(exc))
    return (m.group(1).strip() + " (trust the node's CA with ca_file)") if m else _short(exc)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("..." if len(text) > 200 else "")
