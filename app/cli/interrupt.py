"""Ctrl-C during a CLI run: the first one cancels the run, the second one quits at once.

Without this, SIGINT raises KeyboardInterrupt in the main thread while the remote requests
block in worker threads (the CARE-Flow passes run concurrently), and the interpreter then
waits for them at exit - up to their deadline. Turning the first Ctrl-C into the run's cancel
flag lets the remote client abort its requests within ~0.1 s and the run end as *cancelled*,
with its record written like any other; a local model stops at the next stage boundary.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator


@contextlib.contextmanager
def cancel_on_sigint() -> Iterator[threading.Event]:
    """Yield an Event that the first SIGINT sets; a second SIGINT raises KeyboardInterrupt.

    Outside the main thread (signals cannot be handled there) the Event is simply never set.
    """
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def on_sigint(signum: int, frame: object) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        print("cancelling the run (press Ctrl-C again to quit at once)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)
