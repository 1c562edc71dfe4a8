"""OpenAI-compatible chat-completions client (stdlib only: http.client + ssl + json).

Stdlib rather than requests/httpx: one fewer dependency in the installer bundle, and the
few things we need (per-attempt and overall deadlines, typed failure kinds, no connection
pooling surprises across threads) are easier to guarantee with http.client directly.

Every failure ends in ``RemoteError(kind, message)``; ``chat`` never runs past its overall
deadline: an AttemptGuard (watchdog.py) shuts the socket down at the deadline, so a server
dripping one byte at a time cannot stretch a read that socket timeouts would restart on every
byte. A reply over ``max_response_bytes`` is refused (Content-Length up front, counted bytes for
chunked bodies) without reading the rest, and a ``cancel`` flag stops a request in flight
within ~0.1 s (``RemoteCancelled``).
"""
from __future__ import annotations

import email.utils
import http.client
import json
import random
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from app.pipeline.remote.chat_schema import (
    ChatResult,
    Message,
    extract_json_text,
    has_images,
    json_schema_format,
    parse_chat_completion,
    parse_model_list,
)
from app.pipeline.remote.consent import ConsentStore
from app.pipeline.remote.endpoint import Endpoint, check_transport_policy, parse_endpoint
from app.pipeline.remote.errors import RemoteCancelled, RemoteError
from app.pipeline.remote.json_validate import validation_error
from app.pipeline.remote.secrets import ApiKeyRef, ResolvedKey, resolve_api_key
from app.pipeline.remote.watchdog import POLL_S, AttemptGuard, GuardTripped, guarded_connect

USER_AGENT = "care-viewer/0.1 (+chat-completions)"
_READ_CHUNK = 64 * 1024
# A chat-completions reply with per-token logprobs is some hundred kB; 8 MiB leaves ample room
# while a misbehaving proxy streaming a file at us costs at most that much memory.
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
CancelFn = Callable[[], bool]
_DATED_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


def model_matches(configured: str, served: str) -> bool:
    """Exact name, or a dated snapshot of it (OpenAI answers ``gpt-4o`` as ``gpt-4o-2024-08-06``)."""
    if not served or served == configured:
        return True
    return served.startswith(configured) and bool(_DATED_SNAPSHOT.fullmatch(served[len(configured):]))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


@dataclass(eq=False)
class _Failure(Exception):
    """One failed attempt: the error to raise if it is the last, and whether to retry."""

    error: RemoteError
    retryable: bool
    retry_after: float | None = None


@dataclass
class _Response:
    status: int
    body: bytes
    attempts: int
    waits: list[float] = field(default_factory=list)


@dataclass
class JsonReply:
    """A schema-valid structured reply and the call that produced it."""

    value: Any
    result: ChatResult
    tries: int  # 1, or 2 when the first reply was not valid JSON for the schema


class ChatClient:
    """One endpoint + one served model. Thread-safe: each attempt uses its own connection."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_ref: ApiKeyRef | ResolvedKey | str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        allow_insecure_http: bool = False,
        *,
        deadline_s: float | None = None,
        backoff_cap_s: float = 8.0,
        retry_after_cap_s: float = 30.0,
        consent: ConsentStore | None = None,
        ca_file: str | None = None,
        check_model: bool = True,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Raises RemoteError for an unusable URL/transport or no model name, ValueError for
        non-positive timeouts or size caps."""
        self.endpoint: Endpoint = parse_endpoint(base_url)
        # Decided from the URL alone, before anything could open a socket.
        check_transport_policy(self.endpoint, allow_insecure_http)
        if not model:
            raise RemoteError("http_error", f"remote endpoint {self.endpoint}: no served model name configured")
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise ValueError("timeout_s must be > 0, max_retries and backoff_s >= 0")
        if max_response_bytes <= 0:
            raise ValueError("max_response_bytes must be > 0")
        self.max_response_bytes = int(max_response_bytes)
        self.model = model
        self.api_key_ref = api_key_ref
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.backoff_cap_s = float(backoff_cap_s)
        self.retry_after_cap_s = float(retry_after_cap_s)
        self.deadline_s = float(deadline_s) if deadline_s else self.timeout_s * (self.max_retries + 1) + min(
            self.backoff_cap_s * self.max_retries, 30.0
        )
        self.consent = consent if consent is not None else ConsentStore()
        self.check_model = check_model
        self._sleep = sleep
        self._ssl = ssl.create_default_context(cafile=ca_file) if self.endpoint.scheme == "https" else None
        self._key: ResolvedKey | None = None
        self._key_lock = threading.Lock()
        self._rng = random.Random()

    # ------------------------------------------------------------------ public API

    @property
    def url(self) -> str:
        return self.endpoint.url

    def api_key(self) -> ResolvedKey:
        with self._key_lock:
            if self._key is None:
                self._key = resolve_api_key(self.api_key_ref, self.endpoint.url)
            return self._key

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        logprobs: bool = False,
        top_logprobs: int = 0,
        response_format: dict[str, Any] | None = None,
        cancel: CancelFn | None = None,
        skip_special_tokens: bool | None = None,
    ) -> ChatResult:
        """One chat completion. Raises RemoteError (RemoteCancelled when ``cancel`` turned true).

        ``skip_special_tokens``: vLLM's and SGLang's request field (their default: true, which
        drops InternVL's <ref>/<box> from the text); None: not sent, for an API that refuses
        unknown fields. Whatever the server does with it, the reply's tokens are matched to its
        text (token_text.align_tokens)."""
        if has_images(messages):
            self.consent.require(self.endpoint.url)  # before any socket is opened
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": int(max_tokens),
            "temperature": float(temperature),
            "stream": False,
        }
        if logprobs:
            payload["logprobs"] = True
            if top_logprobs:
                payload["top_logprobs"] = int(top_logprobs)
        if response_format is not None:
            payload["response_format"] = response_format
        if skip_special_tokens is not None:
            payload["skip_special_tokens"] = bool(skip_special_tokens)
        start = time.monotonic()
        resp = self._call("POST", self.endpoint.path("chat/completions"), payload, cancel)
        parsed = parse_chat_completion(resp.body, self.endpoint.url)
        if self.check_model and not model_matches(self.model, parsed.model):
            raise RemoteError(
                "model_mismatch",
                f"remote endpoint {self.endpoint}: answered with model {parsed.model!r}, "
                f"but the profile expects {self.model!r}",
            )
        return ChatResult(
            text=parsed.text,
            tokens=parsed.tokens,
            token_logprobs=parsed.token_logprobs,
            model=parsed.model or self.model,
            finish_reason=parsed.finish_reason,
            raw=parsed.raw,
            seconds=time.monotonic() - start,
            attempts=resp.attempts,
            waits=resp.waits,
            refusal=parsed.refusal,
            token_note=parsed.token_note,
        )

    def chat_json(
        self,
        messages: Sequence[Message],
        schema: dict[str, Any],
        *,
        max_tokens: int,
        name: str = "care_output",
        temperature: float = 0.0,
        use_response_format: bool = True,
        cancel: CancelFn | None = None,
    ) -> JsonReply:
        """Structured output: ask for ``schema`` and validate the reply; one corrective
        retry on invalid JSON, then ``RemoteError(malformed_response)``."""
        fmt = json_schema_format(schema, name) if use_response_format else None
        msgs = list(messages)
        error = ""
        for attempt in (1, 2):
            result = self.chat(msgs, max_tokens=max_tokens, temperature=temperature, response_format=fmt,
                               cancel=cancel)
            if result.refusal:
                raise RemoteError(
                    "malformed_response", f"remote endpoint {self.endpoint}: model refused ({result.text[:120]!r})"
                )
            try:
                value = json.loads(extract_json_text(result.text))
                error = validation_error(value, schema) or ""
            except json.JSONDecodeError as exc:
                error = f"not JSON ({exc.msg} at char {exc.pos})"
            if not error:
                return JsonReply(value, result, attempt)
            msgs = [
                *messages,
                {"role": "assistant", "content": result.text},
                {"role": "user", "content": f"Your reply was invalid: {error}. Reply again with only a JSON object that matches the schema."},
            ]
        raise RemoteError(
            "malformed_response",
            f"remote endpoint {self.endpoint}: reply is not valid JSON for schema {name!r} after 2 tries ({error})",
        )

    def list_models(self, cancel: CancelFn | None = None) -> list[str]:
        """Model ids from ``GET /v1/models``."""
        resp = self._call("GET", self.endpoint.path("models"), None, cancel)
        try:
            return parse_model_list(resp.body)
        except (ValueError, UnicodeDecodeError, KeyError):
            raise RemoteError(
                "malformed_response", f"remote endpoint {self.endpoint}: /models reply is not a model list"
            ) from None

    # ------------------------------------------------------------------ transport

    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if has_body:
            headers["Content-Type"] = "application/json"
        key = self.api_key().value
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _backoff(self, attempt: int) -> float:
        """Exponential back-off with 'equal jitter': half fixed, half random."""
        base = min(self.backoff_cap_s, self.backoff_s * (2 ** (attempt - 1)))
        return base * (0.5 + 0.5 * self._rng.random())

    def _call(
        self, method: str, path: str, payload: dict[str, Any] | None, cancel: CancelFn | None = None
    ) -> _Response:
        """Attempts with retries until a 2xx reply or the overall deadline. Raises RemoteError."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8") if payload is not None else None
        headers = self._headers(body is not None)
        deadline = time.monotonic() + self.deadline_s
        waits: list[float] = []
        attempt = 0
        while True:
            attempt += 1
            try:
                status, data = self._attempt(method, path, body, headers, deadline, cancel)
                return _Response(status, data, attempt, waits)
            except _Failure as failure:
                last = failure
            if last.retryable and time.monotonic() >= deadline:
                raise self._final(last.error, attempt, deadline_hit=True)
            if not last.retryable or attempt > self.max_retries:
                raise self._final(last.error, attempt)
            if last.retry_after is not None:
                wait = min(last.retry_after, self.retry_after_cap_s)
            else:
                wait = self._backoff(attempt)
            remaining = deadline - time.monotonic()
            if wait >= remaining:
                raise self._final(last.error, attempt, deadline_hit=True)
            waits.append(wait)
            self._wait(wait, cancel)

    def _wait(self, seconds: float, cancel: CancelFn | None) -> None:
        """Back-off between attempts, cut short by a cancel."""
        if cancel is None:
            self._sleep(seconds)
            return
        end = time.monotonic() + seconds
        while True:
            if cancel():
                raise RemoteCancelled(f"remote endpoint {self.endpoint}: request cancelled by the user")
            rem = end - time.monotonic()
            if rem <= 0:
                return
            self._sleep(min(rem, POLL_S))

    def _final(self, error: RemoteError, attempts: int, deadline_hit: bool = False) -> RemoteError:
        if attempts > 1 or deadline_hit:
            extra = f" (after {attempts} attempt{'s' if attempts > 1 else ''}"
            extra += ", overall deadline reached)" if deadline_hit else ")"
            return RemoteError(error.kind, error.message + extra, status=error.status)
        return error

    def _attempt(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], deadline: float,
        cancel: CancelFn | None = None,
    ) -> tuple[int, bytes]:
        ep = self.endpoint
        cap = self.max_response_bytes

        def fail(kind: str, why: str, retryable: bool, status: int | None = None, retry_after: float | None = None):
            return _Failure(RemoteError(kind, f"remote endpoint {ep}: {why}", status=status), retryable, retry_after)

        started = time.monotonic()
        guard = AttemptGuard(min(deadline, started + self.timeout_s), cancel)
        conn: http.client.HTTPConnection
        if ep.scheme == "https":
            conn = _GuardedHTTPSConnection(ep.host, ep.port, timeout=self.timeout_s, context=self._ssl)
            conn.guard = guard
        else:
            conn = http.client.HTTPConnection(ep.host, ep.port, timeout=self.timeout_s)
        # The connect phase, too, answers to the guard (a host that never completes the handshake).
        conn._create_connection = lambda address, timeout=None, source=None: guarded_connect(guard, address, source)  # type: ignore[attr-defined]
        try:
            with guard:
                conn.connect()
                sock = conn.sock  # kept: http.client drops conn.sock when the response owns it
                guard.watch(sock)  # the TLS socket once wrapped
                sock.settimeout(guard.left())
                conn.request(method, path, body=body, headers=headers)
                sock.settimeout(guard.left())
                resp = conn.getresponse()
                if resp.length is not None and resp.length > cap:  # refuse before reading a byte of it
                    raise fail("too_large", f"reply of {resp.length} bytes is over the {cap}-byte limit "
                               "(max_response_bytes in the profile)", False)
                data = bytearray()
                while not resp.isclosed():  # http.client closes the socket once the body is complete
                    sock.settimeout(guard.left())
                    chunk = resp.read(min(_READ_CHUNK, cap + 1 - len(data)))
                    if not chunk:
                        break
                    data += chunk
                    if len(data) > cap:  # chunked or close-delimited: counted as it arrives
                        raise fail("too_large", f"reply is over the {cap}-byte limit after {len(data)} bytes "
                                   "(max_response_bytes in the profile); the rest was not read", False)
                guard.check()
                if resp.length:  # Content-Length announced more than arrived
                    raise fail("truncated", f"response body truncated ({len(data)} bytes received, {resp.length} missing)", True)
                data = bytes(data)
        except _Failure:
            raise
        except Exception as exc:
            if guard.reason or isinstance(exc, GuardTripped):  # our own shutdown, whatever it looked like
                raise self._stopped(guard.reason or str(exc), guard.deadline - started, fail) from None
            raise self._transport_failure(exc, fail) from None
        finally:
            conn.close()

        status = resp.status
        if 200 <= status < 300:
            return status, data
        detail = _error_detail(data)
        if status == 429:
            ra = parse_retry_after(resp.getheader("Retry-After"))
            raise fail("rate_limited", f"rate limited (HTTP 429){detail}", True, status, ra)
        if status == 408:
            raise fail("timeout", f"server timed out the request (HTTP 408){detail}", True, status)
        if status >= 500:
            raise fail("server_error", f"server error (HTTP {status} {resp.reason}){detail}", True, status)
        hint = ""
        if status in (401, 403):
            hint = " - check the API key (profile api_key_env or the OS keyring)"
        elif status == 404:
            hint = " - check the endpoint URL and model name"
        raise fail("http_error", f"HTTP {status} {resp.reason}{detail}{hint}", False, status)

    def _stopped(self, reason: str, seconds: float, fail: Callable[..., _Failure]) -> Exception:
        """The error for an attempt the guard stopped: cancelled, or out of time."""
        if reason == "cancelled":
            return RemoteCancelled(f"remote endpoint {self.endpoint}: request cancelled by the user")
        return fail("timeout", f"no complete reply within {round(max(seconds, 0.0), 1):g} s", True)

    def _transport_failure(self, exc: Exception, fail: Callable[..., _Failure]) -> _Failure:
        """A failed connect/send/read as a typed, one-line failure (and whether to retry)."""
        if isinstance(exc, http.client.IncompleteRead):
            return fail("truncated", f"response body truncated ({len(exc.partial)} bytes received)", True)
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return fail("timeout", f"no complete reply within {self.timeout_s:g} s", True)
        if isinstance(exc, ConnectionRefusedError):
            return fail("connection_refused", "connection refused (is the server running?)", True)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return fail("connection_refused", f"TLS certificate not trusted ({exc.verify_message}); "
                        "set ca_file for a department CA", False)
        if isinstance(exc, socket.gaierror):
            return fail("connection_refused", f"cannot resolve host name {self.endpoint.host!r}", True)
        if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                            ConnectionAbortedError)):
            return fail("connection_refused", "connection closed by the server before a complete reply", True)
        if isinstance(exc, (http.client.HTTPException, ssl.SSLError, OSError)):
            return fail("connection_refused", f"connection failed ({exc.__class__.__name__}: {exc})", True)
        raise exc


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPSConnection whose TLS handshake the guard can stop too: wrapping detaches the raw
    socket the guard held, so the TLS socket is handed to the guard before the handshake."""

    guard: AttemptGuard

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP, through the guarded _create_connection
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=self.host, do_handshake_on_connect=False)
        self.guard.watch(self.sock)
        self.sock.do_handshake()


def _error_detail(body: bytes) -> str:
    """A short server-provided reason (OpenAI ``{"error": {"message": ...}}``) for messages."""
    try:
        data = json.loads(body.decode("utf-8"))
        err = data.get("error") if isinstance(data, dict) else None
        msg = err.get("message") if isinstance(err, dict) else (err if isinstance(err, str) else data.get("detail"))
    except (ValueError, UnicodeDecodeError, AttributeError):
        msg = body[:120].decode("utf-8", "replace") if body else ""
    msg = " ".join(str(msg or "").split())[:160]
    return f": {msg}" if msg else ""
