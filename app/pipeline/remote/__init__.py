"""Thin-client side of CARE Viewer: OpenAI-compatible chat completions for the VLM stages
(and the CARE-Coord coordinator), endpoint consent and API keys.

Import the pieces from their modules; the names below are the public surface.
"""
from __future__ import annotations

from app.pipeline.remote.backend import RemoteVLMBackend, client_from_spec, request_messages
from app.pipeline.remote.chat_schema import ChatResult, json_schema_format, redact_images
from app.pipeline.remote.consent import ConsentStore, consent_statement, ensure_consent_cli
from app.pipeline.remote.endpoint import Endpoint, is_loopback_host, parse_endpoint
from app.pipeline.remote.errors import RemoteCancelled, RemoteError
from app.pipeline.remote.health import HealthResult, check_endpoint
from app.pipeline.remote.http_client import ChatClient, JsonReply
from app.pipeline.remote.secrets import ApiKeyRef, KeyStoreError, resolve_api_key, store_api_key

__all__ = [
    "ApiKeyRef", "ChatClient", "ChatResult", "ConsentStore", "Endpoint", "HealthResult", "JsonReply",
    "KeyStoreError", "RemoteCancelled", "RemoteError", "RemoteVLMBackend", "check_endpoint", "client_from_spec",
    "consent_statement", "ensure_consent_cli", "is_loopback_host", "json_schema_format",
    "parse_endpoint", "redact_images", "request_messages", "resolve_api_key", "store_api_key",
]
