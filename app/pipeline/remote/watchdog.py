"""Bounds one HTTP attempt by wall clock and by the user's cancel flag, whatever the server does.

Socket timeouts cannot do that: they restart on every byte, so a server dripping one byte
every 0.5 s keeps a 60 s timeout from ever firing, and a blocked ``recv`` does not look at a
cancel flag. The :class:`AttemptGuard` runs one small thread per attempt that, at the deadline
or within ``POLL_S`` of a cancel, shuts the attempt's socket down; the blocked read then
returns at once and the client reports ``reason`` ("timeout" or "cancelled") instead of
whatever the broken connection looked like.

Name resolution (getaddrinfo) cannot be interrupted this way; endpoints are usually IP
addresses or names the resolver answers at once.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from typing import Callable, Literal

POLL_S = 0.1  # how often the guard looks at the cancel flag: cancel latency

StopReason = Literal["", "timeout", "cancelled"]


class GuardTripped(Exception):
    """Raised in the attempt's own thread when the guard stopped it (see ``AttemptGuard.reason``)."""


class AttemptGuard:
    """Context manager around one attempt: ``with AttemptGuard(deadline, cancel) as g: ...``."""

    def __init__(self, deadline: float, cancel: Callable[[], bool] | None) -> None:
        self.deadline = deadline  # time.monotonic() value
        self.cancel = cancel
        self.reason: StopReason = ""
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="care-remote-guard", daemon=True)

    def __enter__(self) -> "AttemptGuard":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:  # after this no shutdown can hit a socket (or a reused fd) we no longer own
            self._done.set()
            self._sock = None
        self._thread.join(timeout=1.0)

    def watch(self, sock: socket.socket) -> None:
        """The socket to shut down when the guard trips (the raw one, then the TLS one)."""
        with self._lock:
            self._sock = sock
            tripped = bool(self.reason)
        if tripped:
            self._shutdown(sock)

    def check(self) -> None:
        """Raise GuardTripped if the deadline passed or the run was cancelled."""
        if self.reason:
            raise GuardTripped(self.reason)
        if self.cancel is not None and self.cancel():
            self.reason = "cancelled"
        elif time.monotonic() >= self.deadline:
            self.reason = "timeout"
        if self.reason:
            raise GuardTripped(self.reason)

    def left(self) -> float:
        """Seconds to the deadline (for socket timeouts); raises GuardTripped when none are left."""
        self.check()
        return max(0.001, self.deadline - time.monotonic())

    def _watch(self) -> None:
        while not self._done.wait(min(POLL_S, max(0.0, self.deadline - time.monotonic()))):
            if self.cancel is not None and self.cancel():
                reason: StopReason = "cancelled"
            elif time.monotonic() >= self.deadline:
                reason = "timeout"
            else:
                continue
            with self._lock:
                if self._done.is_set():
                    return
                self.reason = reason
                sock = self._sock
                if sock is not None:
                    self._shutdown(sock)
            return

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        # socket.socket.shutdown, not SSLSocket.shutdown: the reader thread still uses the
        # TLS object; shutting the fd down makes its pending read return at once.
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def guarded_connect(guard: AttemptGuard, address: tuple[str, int], source_address: object = None) -> socket.socket:
    """``socket.create_connection`` whose connect phase also stops at the guard's deadline or
    cancel (a non-blocking connect polled every ``POLL_S``). Raises OSError like the original,
    GuardTripped when the guard stopped it."""
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            guard.watch(sock)
            sock.setblocking(False)
            code = sock.connect_ex(sockaddr)
            while code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
                guard.check()
                _, writable, _ = select.select([], [sock], [], min(POLL_S, guard.left()))
                if writable:
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code not in (0, errno.EISCONN):
                raise OSError(code, os.strerror(code))  # ECONNREFUSED becomes ConnectionRefusedError
            sock.settimeout(guard.left())
            return sock
        except GuardTripped:
            sock.close()
            raise
        except OSError as exc:
            error = exc
            sock.close()
    raise error if error is not None else OSError(f"cannot resolve {host!r}")
