"""Coordinator on a VLM the app already runs (by default the profile's VQA model, already
loaded): same prompts and schema as the remote coordinator, but the JSON is read out of the
generated text, since a local ``generate`` has no guided decoding.

Images are always allowed here when the VLM is local (nothing leaves the machine). When the
wrapped backend is itself remote (a thin-client profile without a coordinator role), its
endpoint's consent decides, exactly as for the VQA passes.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import numpy as np

from app.pipeline.types import Cancelled, ModelInfo, PipelineError, VLMRequest, WeightsMissingError

from .base import Attempt, CoordinatorFailure, StructuredReply
from .structured import Check, corrective_prompt, parse_reply

# The previous reply is quoted back on the retry, cut to this many characters: a random or
# rambling model must not double the prompt.
_QUOTE_CHARS = 600


class VLMCoordinatorBackend:
    def __init__(self, vlm: Any | Callable[[], Any], *, label: str = "vqa") -> None:
        """``vlm`` is a VLMBackend, or a callable returning it (resolved on first use so a
        coordinator can be created before the pipeline loads its models)."""
        self._vlm = vlm
        self.label = label

    @property
    def vlm(self) -> Any:
        if callable(self._vlm) and not hasattr(self._vlm, "generate"):
            self._vlm = self._vlm()
            if self._vlm is None:
                raise PipelineError("the profile has no VQA model to act as the coordinator")
        return self._vlm

    @property
    def info(self) -> ModelInfo:
        base = getattr(self.vlm, "info", None)
        if base is None:
            return ModelInfo(role="coordinator", backend="unknown", repo_id=self.label)
        return dataclasses.replace(base, role="coordinator")

    def images_allowed(self) -> tuple[bool, str]:
        client = getattr(self.vlm, "client", None)
        if client is not None and not client.consent.has_consent(client.url):
            return False, f"no consent to send images to {client.url}"
        return True, ""

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
        vlm = self.vlm
        attempts: list[Attempt] = []
        text = prompt
        prompt_text = ""
        started = time.perf_counter()
        for _ in (1, 2):
            request = VLMRequest(images=list(images), prompt=text, system=system)
            try:
                gen = vlm.generate([request], max_new_tokens=max_new_tokens)[0]
            except (Cancelled, WeightsMissingError):
                raise
            except Exception as exc:  # noqa: BLE001 - any model failure ends in the flow answer
                kind = getattr(exc, "kind", "model_error")
                raise CoordinatorFailure(kind, f"coordinator model failed: {exc}", attempts) from exc
            prompt_text = prompt_text or gen.prompt_text
            parsed = parse_reply(gen.text, schema, check)
            attempts.append(Attempt(gen.text, parsed.error, list(gen.tokens), list(gen.token_logprobs),
                                    float(gen.seconds)))
            if parsed.ok:
                return StructuredReply(parsed.value, attempts, prompt_text, len(images),
                                       time.perf_counter() - started)
            quoted = gen.text.strip()[:_QUOTE_CHARS]
            text = f"{prompt}\n\nYour previous reply was:\n{quoted}\n\n{corrective_prompt(parsed.error)}"
        raise CoordinatorFailure(
            "malformed",
            f"coordinator reply is not valid JSON for {name!r} after 2 tries ({attempts[-1].error})",
            attempts,
        )
