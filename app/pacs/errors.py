"""One error type for everything a PACS node can do wrong: its message is one line that names
the node (name and address) and the reason, ready for the CLI and the study browser."""
from __future__ import annotations


class PacsError(RuntimeError):
    """``str(err)`` is ``PACS node NAME (ADDRESS): REASON``; ``reason`` is the bare reason."""

    def __init__(self, node_label: str, reason: str) -> None:
        self.node_label = node_label
        self.reason = " ".join(reason.split())  # one line, whatever the server sent
        super().__init__(f"PACS node {node_label}: {self.reason}")


def http_reason(status: int, what: str) -> str:
    """The user-facing reason for an HTTP error status from a DICOMweb server."""
    if status == 401:
        return f"authentication failed (HTTP 401) for {what}: check the username and password"
    if status == 403:
        return f"access denied (HTTP 403) for {what}: this user may not do that on this node"
    if status == 404:
        return f"not found (HTTP 404): {what} (wrong DICOMweb root URL, or the object is not on the node)"
    if 500 <= status < 600:
        return f"server error (HTTP {status}) for {what}"
    return f"unexpected HTTP status {status} for {what}"
