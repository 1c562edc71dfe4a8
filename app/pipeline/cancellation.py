"""The cancel flag of the run in progress, for code that has no RunContext to ask.

The stages check ``RunContext.check_cancel`` between steps, but a remote request can block
inside one step for its whole deadline. :func:`execute_run` opens a :func:`cancel_scope` with
the caller's flag (the GUI's Cancel button, the CLI's Ctrl-C), and the remote backends read it
with :func:`current_cancel` so an in-flight request stops within a fraction of a second.
A ContextVar rather than a global: two runs on two GUI worker threads keep their own flags.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator

CancelFn = Callable[[], bool]

_ACTIVE: contextvars.ContextVar[CancelFn | None] = contextvars.ContextVar("care_cancel", default=None)


@contextlib.contextmanager
def cancel_scope(cancel: CancelFn | None) -> Iterator[None]:
    """Make ``cancel`` the flag :func:`current_cancel` returns in this thread until the block ends."""
    token = _ACTIVE.set(cancel)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def current_cancel() -> CancelFn | None:
    """The cancel flag of the run executing in this thread, or None outside a run."""
    return _ACTIVE.get()
