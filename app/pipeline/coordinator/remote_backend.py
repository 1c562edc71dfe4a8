"""Coordinator on an OpenAI-compatible chat endpoint (GPT-5, or a hospital's vLLM server).

Text only by default: the question, entity names, mask statistics and the experts' chains
of thought. The slice goes along only when the profile enables it (``send_images = true``)
AND the user consented for this endpoint; otherwise the call is text only and the timeline
says why. Keys come from the environment or the OS keyring (app.pipeline.remote.secrets);
timeouts and bounded retries are the shared ChatClient's.

OpenAI's reasoning models (GPT-5, o-series) reject ``max_tokens`` and any temperature but the
default, so the profile can say ``token_param = "max_completion_tokens"`` and
``send_temperature = false``; ``extra_body`` (a table) is merged into every request (e.g.
``reasoning_effort = "low"``).
"""
from __future__ import annotations

import json
import time
from typing import Any, Sequence

import numpy as np

from app.pipeline.cancellation import current_cancel
from app.pipeline.profiles import ModelSpec
from app.pipeline.remote.chat_schema import (
    ChatResult,
    Message,
    json_schema_format,
    parse_chat_completion,
    redact_images,
    system_message,
    user_message,
)
from app.pipeline.remote.consent import ConsentStore
from app.pipeline.remote.errors import RemoteCancelled, RemoteError
from app.pipeline.remote.http_client import ChatClient, model_matches
from app.pipeline.remote.backend import client_from_spec
from app.pipeline.types import ModelInfo

from .base import Attempt, CoordinatorFailure, StructuredReply
from .schemas import without_length_bounds
from .structured import Check, corrective_prompt, parse_reply


class RemoteCoordinatorBackend:
    def __init__(self, spec: ModelSpec, *, consent: ConsentStore | None = None, client: ChatClient | None = None) -> None:
        opts = spec.options
        self.spec = spec
        self.client = client or client_from_spec(spec, consent)
        self.send_images = bool(opts.get("send_images", False))
        self.token_param = str(opts.get("token_param", "max_tokens"))
        self.send_temperature = bool(opts.get("send_temperature", True))
        self.temperature = float(opts.get("temperature", 0.0))
        self.use_response_format = bool(opts.get("response_format", True))
        self.length_bounds = bool(opts.get("length_bounds", True))
        self.extra_body: dict[str, Any] = dict(opts.get("extra_body", {}))
        self.info = ModelInfo(
            role="coordinator", backend="remote", repo_id=self.client.model, revision=spec.revision,
            device="remote", dtype="", path=self.client.url,
        )

    @property
    def endpoint(self) -> str:
        return self.client.url

    def images_allowed(self) -> tuple[bool, str]:
        if not self.send_images:
            return False, "the profile sends the coordinator text only (send_images = false)"
        if not self.client.consent.has_consent(self.client.url):
            return False, f"no consent to send images to {self.client.url}"
        return True, ""

    # ------------------------------------------------------------------ transport
    def _chat(self, messages: Sequence[Message], schema: dict[str, Any], name: str, max_new_tokens: int) -> ChatResult:
        """One chat call; like ChatClient.chat, but with the token/temperature parameters the
        endpoint accepts (see the module docstring). The run's cancel flag stops it in flight.
        Raises RemoteError (RemoteCancelled on cancel)."""
        client = self.client
        payload: dict[str, Any] = {"model": client.model, "messages": list(messages), "stream": False,
                                   self.token_param: int(max_new_tokens)}
        if self.send_temperature:
            payload["temperature"] = self.temperature
        if self.use_response_format:
            payload["response_format"] = json_schema_format(schema, name)
        payload.update(self.extra_body)
        start = time.monotonic()
        resp = client._call("POST", client.endpoint.path("chat/completions"), payload, current_cancel())
        parsed = parse_chat_completion(resp.body, client.url)
        if client.check_model and not model_matches(client.model, parsed.model):
            raise RemoteError("model_mismatch", f"remote endpoint {client.url}: answered with model "
                              f"{parsed.model!r}, but the profile expects {client.model!r}")
        return ChatResult(text=parsed.text, tokens=parsed.tokens, token_logprobs=parsed.token_logprobs,
                          model=parsed.model or client.model, finish_reason=parsed.finish_reason, raw=parsed.raw,
                          seconds=time.monotonic() - start, attempts=resp.attempts, waits=resp.waits,
                          refusal=parsed.refusal, token_note=parsed.token_note)

    def ask(
        self,
        system: str,
        prompt: str,
        images: Sequence[np.ndarray],
        schema: dict[str, Any],
        name: str,
        check: Check | None = None,
        max_new_tokens: int = 768,
    ) -> StructuredReply:
        if not self.length_bounds:  # sent and validated alike: the reply is checked against what was asked
            schema = without_length_bounds(schema)
        allowed, _ = self.images_allowed()
        images = list(images) if allowed else []
        if images:  # re-checked right before the socket: consent may have been revoked meanwhile
            self.client.consent.require(self.client.url)
        messages: list[Message] = [system_message(system), user_message(images, prompt)]
        prompt_text = json.dumps(redact_images(messages), ensure_ascii=False)
        attempts: list[Attempt] = []
        started = time.perf_counter()
        for _ in (1, 2):
            try:
                result = self._chat(messages, schema, name, max_new_tokens)
            except RemoteCancelled:
                raise  # the user's cancel ends the run, it is not a coordinator failure to fall back from
            except RemoteError as exc:
                raise CoordinatorFailure(exc.kind, str(exc), attempts) from exc
            if result.refusal:
                attempts.append(Attempt(result.text, "the model refused", seconds=result.seconds))
                raise CoordinatorFailure("refusal", f"coordinator at {self.client.url} refused: {result.text[:120]!r}",
                                         attempts)
            parsed = parse_reply(result.text, schema, check)
            attempts.append(Attempt(result.text, parsed.error, result.tokens, result.token_logprobs, result.seconds))
            if parsed.ok:
                return StructuredReply(parsed.value, attempts, prompt_text, len(images), time.perf_counter() - started)
            messages = [*messages, {"role": "assistant", "content": result.text},
                        {"role": "user", "content": corrective_prompt(parsed.error)}]
        raise CoordinatorFailure(
            "malformed",
            f"coordinator at {self.client.url}: reply is not valid JSON for {name!r} after 2 tries ({attempts[-1].error})",
            attempts,
        )
