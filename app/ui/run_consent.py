"""Consent before images leave the machine: every remote server a profile's models contact
must have been allowed once (the statement shown verbatim, an explicit button).

The consent file is a few hundred bytes of JSON read and written on the GUI thread: that is
far below anything a user could notice, and the question has to be asked there anyway."""
from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from app.pipeline.vocab import BackendKind

from .run_worker import current_user

Prompt = Callable[[str, str], bool]  # (url, statement) -> allowed


def consent_prompt(parent: QWidget | None, url: str, statement: str) -> bool:
    """Ask before images leave the machine (the statement verbatim, explicit button)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Send images to a remote server?")
    box.setText(statement)
    send = box.addButton("Send images to this server", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(QMessageBox.StandardButton.NoButton)
    box.exec()
    return box.clickedButton() is send


def ensure_consent(profile_name: str, prompt: Prompt) -> str:
    """'' when every remote endpoint of the profile may receive images, else why not."""
    from app.pipeline.profiles import load_profile

    try:
        prof = load_profile(profile_name)
    except (KeyError, OSError, ValueError) as exc:
        return str(exc)
    urls = sorted({str(s.options.get("endpoint") or s.options.get("base_url") or "")
                   for s in prof.models.values() if s.backend == BackendKind.REMOTE} - {""})
    if not urls:
        return ""
    from app.pipeline.remote.consent import ConsentStore, consent_statement

    store = ConsentStore()
    for url in urls:
        try:
            if store.has_consent(url):
                continue
        except Exception as exc:  # noqa: BLE001 - a malformed endpoint in the manifest
            return f"Remote endpoint {url}: {exc}"
        if not prompt(url, consent_statement(url)):
            return f"No images were sent: sending to {url} was not allowed."
        store.grant(url, who=current_user() or None, via="gui")
    return ""
