"""Reachability check for a remote endpoint (``models list`` / settings dialog)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.pipeline.remote.errors import RemoteError
from app.pipeline.remote.secrets import ApiKeyRef, ResolvedKey


@dataclass
class HealthResult:
    reachable: bool
    served_models: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str = ""  # one line, names the endpoint; empty when reachable
    error_kind: str = ""

    def serves(self, model: str) -> bool:
        from app.pipeline.remote.http_client import model_matches

        return any(model_matches(model, m) for m in self.served_models)


def check_endpoint(
    base_url: str,
    api_key: str | ApiKeyRef | None = None,
    *,
    timeout_s: float = 5.0,
    allow_insecure_http: bool = False,
) -> HealthResult:
    """One ``GET /v1/models`` without retries. ``api_key`` is the key itself (str) or where
    to find it (ApiKeyRef). Never raises for endpoint problems: they go in ``error``."""
    from app.pipeline.remote.http_client import ChatClient

    start = time.monotonic()
    try:
        client = ChatClient(
            base_url,
            model="(health-check)",
            api_key_ref=ResolvedKey(api_key, "argument") if isinstance(api_key, str) and api_key else api_key or None,
            timeout_s=timeout_s,
            max_retries=0,
            allow_insecure_http=allow_insecure_http,
        )
        models = client.list_models()
    except RemoteError as exc:
        return HealthResult(False, [], (time.monotonic() - start) * 1000.0, str(exc), exc.kind)
    return HealthResult(True, models, (time.monotonic() - start) * 1000.0)

