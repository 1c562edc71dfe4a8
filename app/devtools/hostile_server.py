"""A misbehaving chat-completions server on 127.0.0.1: the department server at its worst.

The remote client must stay within its deadline, its memory cap and the user's cancel
whatever the server does, so this server does each bad thing on purpose, on a real socket
(raw, not http.server, so it can stop half-way through a header or a body):

- ``drip``: a valid reply whose body arrives one byte every ``interval_s``;
- ``drip_headers``: the status line and headers themselves one byte every ``interval_s``;
- ``flood_length``: announces ``Content-Length: flood_bytes`` and streams that much;
- ``flood_chunked``: ``Transfer-Encoding: chunked``, ``flood_bytes`` in 64 kB chunks;
- ``hang_after_headers``: headers (with a Content-Length), then silence;
- ``hang_before_headers``: reads the request, then silence;
- ``reset``: reads the request, then resets the connection (TCP RST);
- ``ok``: a valid reply at once (a baseline).

Floods are generated lazily from one 64 kB block, so a 600 MB flood costs this process no
memory. ``GET /v1/models`` answers normally unless ``hostile_get`` is set, so a backend's
model check passes and the chat request meets the misbehaviour. ``bytes_sent`` tells a test
how far the client let a flood go before hanging up.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

MODES = ("drip", "drip_headers", "flood_length", "flood_chunked", "hang_after_headers",
         "hang_before_headers", "reset", "ok")
_BLOCK = b"x" * 65536


def chat_reply(model: str, text: str = "<think>t</think><answer>yes</answer>") -> bytes:
    """A minimal valid chat.completion body."""
    return json.dumps({
        "id": "chatcmpl-hostile", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }).encode()


@dataclass
class _Stats:
    connections: int = 0
    bytes_sent: int = 0
    paths: list[str] = field(default_factory=list)


class HostileChatServer:
    """Context manager: ``with HostileChatServer("drip") as srv: ChatClient(srv.base_url, srv.model)``."""

    def __init__(self, mode: str, *, model: str = "care-test-vlm", interval_s: float = 0.5,
                 flood_bytes: int = 600 * 1024 * 1024, hostile_get: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        self.mode, self.model, self.interval_s = mode, model, interval_s
        self.flood_bytes, self.hostile_get = flood_bytes, hostile_get
        self.stats = _Stats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="hostile-server", daemon=True)

    # lifecycle
    def __enter__(self) -> "HostileChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return self.stats.bytes_sent

    # serving
    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                self.stats.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        with self._lock:
            self.stats.bytes_sent += len(data)

    def _handle(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(5.0)
                method, path = self._read_request(conn)
                with self._lock:
                    self.stats.paths.append(f"{method} {path}")
                if method == "GET" and not self.hostile_get:
                    models = json.dumps({"object": "list", "data": [{"id": self.model, "object": "model"}]}).encode()
                    self._send(conn, _head(200, {"Content-Length": str(len(models))}) + models)
                    return
                self._misbehave(conn)
        except OSError:
            pass  # the client hung up: what the tests want

    @staticmethod
    def _read_request(conn: socket.socket) -> tuple[str, str]:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionResetError("client closed before a full request")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path = (lines[0].split(" ") + ["", ""])[:2]
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip() or 0)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        return method, path

    def _wait(self, seconds: float) -> bool:
        """Sleep; True when the server is stopping."""
        return self._stop.wait(seconds)

    def _misbehave(self, conn: socket.socket) -> None:
        mode, body = self.mode, chat_reply(self.model)
        if mode == "ok":
            self._send(conn, _head(200, {"Content-Length": str(len(body))}) + body)
        elif mode == "drip":
            self._send(conn, _head(200, {"Content-Length": str(len(body))}))
            for i in range(len(body)):
                if self._wait(self.interval_s):
                    return
                self._send(conn, body[i:i + 1])
        elif mode == "drip_headers":
            data = _head(200, {"Content-Length": str(len(body))}) + body
            for i in range(len(data)):
                if self._wait(self.interval_s):
                    return
                self._send(conn, data[i:i + 1])
        elif mode == "flood_length":
            self._send(conn, _head(200, {"Content-Length": str(self.flood_bytes)}))
            self._flood(conn, chunked=False)
        elif mode == "flood_chunked":
            self._send(conn, _head(200, {"Transfer-Encoding": "chunked"}))
            self._flood(conn, chunked=True)
        elif mode == "hang_after_headers":
            self._send(conn, _head(200, {"Content-Length": str(len(body))}))
            self._stop.wait()
        elif mode == "hang_before_headers":
            self._stop.wait()
        elif mode == "reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _flood(self, conn: socket.socket, *, chunked: bool) -> None:
        left = self.flood_bytes
        frame = b"%x\r\n" % len(_BLOCK) + _BLOCK + b"\r\n" if chunked else _BLOCK
        while left > 0 and not self._stop.is_set():
            self._send(conn, frame if left >= len(_BLOCK) else (
                b"%x\r\n" % left + _BLOCK[:left] + b"\r\n" if chunked else _BLOCK[:left]))
            left -= len(_BLOCK)
        if chunked:
            self._send(conn, b"0\r\n\r\n")


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}", "Content-Type: application/json",
             "Connection: close", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def main() -> None:
    """``python -m app.devtools.hostile_server MODE``: serve until Ctrl-C (manual checks)."""
    import sys

    with HostileChatServer(sys.argv[1] if len(sys.argv) > 1 else "drip") as srv:
        print(srv.base_url, flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
