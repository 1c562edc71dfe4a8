"""``remote`` VLM backend: the entity-proposal and EG-VQA stages served by an
OpenAI-compatible endpoint (vLLM, SGLang, llama.cpp, TGI, a hosted API).

Only the prompt text, the question inside it and the images leave the machine: the
backend receives ``VLMRequest`` objects, which carry no DICOM header fields.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Sequence

from app.pipeline.cancellation import CancelFn, current_cancel
from app.pipeline.profile_options import RemoteOptions, typed_options
from app.pipeline.profiles import ModelSpec
from app.pipeline.remote.chat_schema import (
    ChatResult, Message, image_part, redact_images, system_message, text_part, user_message,
)
from app.pipeline.remote.consent import ConsentStore
from app.pipeline.remote.errors import RemoteCancelled, RemoteError
from app.pipeline.remote.images import png_data_url
from app.pipeline.remote.http_client import ChatClient, model_matches
from app.pipeline.remote.secrets import ApiKeyRef
from app.pipeline.types import Generation, ModelInfo, PipelineError, VLMRequest
from app.pipeline.vocab import BackendKind

log = logging.getLogger(__name__)


def request_messages(req: VLMRequest, image_urls: dict[int, str] | None = None) -> list[Message]:
    """A VLMRequest as chat messages: optional system turn, then one user turn ordered as the
    local InternVL template is: the slice (Image-1), ``lead`` (the question), the evidence
    image(s), then the text. The three CARE-Flow passes share the system prompt, the slice and the
    question, so a server with automatic prefix caching (vLLM) computes that prefix once.
    ``image_urls`` maps ``id(array)`` to an already encoded data URL."""
    urls = image_urls or {}
    messages: list[Message] = []
    if req.system:
        messages.append(system_message(req.system))
    messages.append(user_message([urls.get(id(im), im) for im in req.images], req.prompt, lead=req.lead))
    return messages


def _encode_distinct(requests: Sequence[VLMRequest], pool: ThreadPoolExecutor | None) -> dict[int, str]:
    """PNG-encode each distinct image once: the CARE-Flow passes share the full slice, and
    zlib releases the GIL, so encoding in the pool overlaps on several cores."""
    distinct = {id(im): im for r in requests for im in r.images}
    try:
        if pool is None or len(distinct) < 2:
            return {k: png_data_url(im) for k, im in distinct.items()}
        return dict(zip(distinct, pool.map(png_data_url, distinct.values())))
    except ValueError as exc:  # not (H, W, 3) uint8: a caller bug, reported without a traceback
        raise PipelineError(f"cannot send image to the remote model: {exc}") from None


def client_from_spec(spec: ModelSpec, consent: ConsentStore | None = None) -> ChatClient:
    """Build the shared chat client from a profile entry (also used by the CARE-Coord coordinator)."""
    opts = typed_options(spec.options, RemoteOptions)  # absent keys take RemoteOptions' defaults
    base_url = str(opts.endpoint or opts.base_url or "")
    if not base_url:
        raise PipelineError(f"profile role {spec.role.value!r}: the remote backend needs endpoint = \"https://host/v1\"")
    return ChatClient(
        base_url,
        # `served_model`, not `model`: in profiles.toml `model = "<key>"` names a catalog entry.
        str(opts.served_model or spec.repo_id),
        ApiKeyRef(env=str(opts.api_key_env), use_keyring=bool(opts.use_keyring)),
        timeout_s=float(opts.timeout_s),
        max_retries=int(opts.max_retries),
        backoff_s=float(opts.backoff_s),
        allow_insecure_http=bool(opts.allow_insecure_http),
        deadline_s=float(opts.deadline_s) if "deadline_s" in spec.options else None,
        consent=consent,
        ca_file=str(opts.ca_file) if opts.ca_file else None,
        check_model=bool(opts.check_model),
        max_response_bytes=int(opts.max_response_bytes),
    )


class RemoteVLMBackend:
    """``VLMBackend`` over chat completions; the requests of one ``generate`` call (the three
    CARE-Flow evidence passes) are sent concurrently so a batching server runs them together."""

    def __init__(self, spec: ModelSpec, *, consent: ConsentStore | None = None, client: ChatClient | None = None) -> None:
        opts = typed_options(spec.options, RemoteOptions)
        self.spec = spec
        self.client = client or client_from_spec(spec, consent)
        self.max_concurrency = max(1, int(opts.max_concurrency))
        self.temperature = float(opts.temperature)
        self.logprobs = bool(opts.logprobs)
        self.top_logprobs = int(opts.top_logprobs)
        self.keep_special_tokens = bool(opts.keep_special_tokens)
        self.info = ModelInfo(
            role=str(spec.role),
            backend=BackendKind.REMOTE.value,
            repo_id=self.client.model,
            revision=spec.revision,
            device="remote",
            dtype="",
            path=self.client.url,
        )
        # Per-call details the Generation contract has no slot for (finish_reason, attempts,
        # the served model name); the engine may copy them into the run record.
        self.last_results: list[ChatResult] = []
        self._models_checked = False
        self._check_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.client.url

    def needs_consent(self) -> bool:
        return not self.client.consent.has_consent(self.client.url)

    def verify_served_model(self, cancel: CancelFn | None = None) -> None:
        """Once per backend: does ``GET /models`` list the configured model? Servers without
        that route are checked per reply instead (the response's ``model`` field)."""
        if not self.client.check_model:
            return
        with self._check_lock:
            if self._models_checked:
                return
            try:
                served = self.client.list_models(cancel)
            except RemoteError as exc:
                if exc.kind not in ("http_error", "malformed_response"):
                    raise
                served = []
            if served and not any(model_matches(self.client.model, m) for m in served):
                raise RemoteError(
                    "model_mismatch",
                    f"remote endpoint {self.client.url}: serves {', '.join(served[:5])}, "
                    f"not the profile's model {self.client.model!r}",
                )
            self._models_checked = True

    def _one(self, messages: list[Message], max_new_tokens: int, cancel: CancelFn | None) -> tuple[ChatResult, float]:
        start = time.monotonic()
        result = self.client.chat(
            messages,
            max_tokens=max_new_tokens,
            temperature=self.temperature,
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs,
            cancel=cancel,
            skip_special_tokens=False if self.keep_special_tokens else None,
        )
        return result, time.monotonic() - start

    def generate(self, requests: Sequence[VLMRequest], max_new_tokens: int = 512) -> list[Generation]:
        """Raises RemoteError (RemoteCancelled when the run is cancelled meanwhile), PipelineError."""
        if not requests:
            return []
        if any(r.images for r in requests):
            self.client.consent.require(self.client.url)  # before any encoding or socket
        user_cancel = current_cancel()  # the run's flag (GUI Cancel, CLI Ctrl-C); read in this thread
        self.verify_served_model(user_cancel)
        # One failed pass ends the whole call, so its siblings in flight stop too, not at their deadline.
        sibling_failed = threading.Event()

        def cancel() -> bool:
            return sibling_failed.is_set() or (user_cancel is not None and bool(user_cancel()))

        def one(messages: list[Message]) -> tuple[ChatResult, float]:
            try:
                return self._one(messages, max_new_tokens, cancel)
            except BaseException:
                sibling_failed.set()
                raise

        workers = min(self.max_concurrency, len(requests))
        if workers == 1:
            urls = _encode_distinct(requests, None)
            all_messages = [request_messages(r, urls) for r in requests]
            outcomes = [self._one(m, max_new_tokens, user_cancel) for m in all_messages]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="care-remote") as pool:
                urls = _encode_distinct(requests, pool)
                all_messages = [request_messages(r, urls) for r in requests]
                futures = [pool.submit(one, m) for m in all_messages]
                done, pending = wait(futures, return_when=FIRST_EXCEPTION)
                for f in pending:  # after a failure, do not start requests still queued
                    f.cancel()
                wait(futures)  # the siblings in flight see sibling_failed and stop within ~0.1 s
                # The first real failure in request order; a sibling stopped because of it says less.
                errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
                if errors:
                    raise next((e for e in errors if not _stopped_by_sibling(e, user_cancel)), errors[0])
                outcomes = [f.result() for f in futures]
        self.last_results = [r for r, _ in outcomes]
        for r in self.last_results:  # the record then has no token list for this reply: say why
            if r.token_note and not r.tokens:
                log.warning("remote endpoint %s: %s", self.client.url, r.token_note)
        return [
            Generation(
                text=result.text,
                tokens=result.tokens,
                token_logprobs=result.token_logprobs,
                prompt_text=json.dumps(redact_images(messages), ensure_ascii=False),
                seconds=seconds,
                tokens_note=result.token_note,
            )
            for (result, seconds), messages in zip(outcomes, all_messages)
        ]


def _stopped_by_sibling(exc: BaseException, user_cancel: CancelFn | None) -> bool:
    """A pass cancelled only because another pass had failed (the user did not cancel)."""
    return isinstance(exc, RemoteCancelled) and not (user_cancel is not None and user_cancel())
