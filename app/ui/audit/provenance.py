"""The provenance section: models and revisions, the input slice, versions, timings, and
the run's warnings and errors."""
from __future__ import annotations

from app.audit.present import RunPresentation, breakable

from .widgets import DIM, ERROR, WARN, Section, esc, label, span


def fill_provenance(sec: Section, p: RunPresentation) -> None:
    rows = [f"<b>Weights</b>: {esc(p.weights_text)}"]
    for m in p.models:
        sha = f" \u00b7 sha256 {m.sha_short}" if m.sha_short else ""
        rows.append(f"<b>{esc(m.role)}</b>: {esc(m.repo_id)} @ {esc(m.revision_short)} "
                    f"({esc(m.backend)}, {esc(m.device)}/{esc(m.dtype)}){sha}")
    if not p.models:
        rows.append(span("No model was loaded.", DIM))
    rows.append(f"<b>Input</b>: {esc(p.input_text)}")
    rows.append(f"<b>Versions</b>: {esc(p.versions_text)}")
    if p.timings_text:
        rows.append(f"<b>Timings</b>: {p.timings_text}")
    lab = label("<br>".join(rows), rich=True)
    # The hashes are shown short; the tooltip has them whole, to compare with a model card or file.
    full = [f"{m.role} weights sha256 {m.sha256}" for m in p.models if m.sha256]
    full += [f"input pixels sha256 {p.pixel_sha256}"] if p.pixel_sha256 else []
    lab.setToolTip("\n".join(full))
    sec.add(lab)
    if p.warnings:
        sec.add(label("<b>Warnings</b><br>" + "<br>".join(f"\u2022 {esc(breakable(w))}" for w in p.warnings),
                      rich=True, color=WARN))
    if p.errors:
        sec.add(label("<b>Errors</b><br>" + "<br>".join(f"\u2022 {esc(breakable(e))}" for e in p.errors),
                      rich=True, color=ERROR))
    n_warn = len(p.warnings) + len(p.errors)
    sec.set_title("Provenance" + (f" ({n_warn} warnings)" if n_warn else ""))
    if p.errors:
        sec.set_expanded(True)
