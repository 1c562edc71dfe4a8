"""Clinician overrides in plain words: one sentence per audit-store row, shared by the audit
panel and the PDF report ("you discarded mask 1 (right lung, C 0.78)", not ``mask_discard
masks[0]``).

The store's rows are never rewritten, so the wording is derived from what rows already hold
(``target``/``old``/``new``/``note`` as the viewer writes them); a row this version cannot
parse, or an unknown kind, still reads as its kind, target and change rather than vanishing.
"""
from __future__ import annotations

import json
import re
from typing import Any, Sequence

from app.pipeline.record import Override
from app.pipeline.vocab import OverrideKind

from .formatting import fmt_time
from .model import OverrideRow

# Backend names as a radiologist knows them (the record keeps the registry's lower-case names).
BACKEND_NAMES = {"litemedsam": "LiteMedSAM", "medsam": "MedSAM", "biomedparse": "BiomedParse"}

_MASK_TARGET = re.compile(r"^masks\[(\d+)\]$")
_DRAWN_TARGET = re.compile(r"^drawn box (\d+)$")
_NAME_CONF = re.compile(r"^(?P<name>.*?)\s*\(C=(?P<c>[0-9.]+)\)\s*$")
_BOX_NOTE = re.compile(r"^(?P<backend>\S+) mask on slice (?P<slice>\d+): C=(?P<c>[0-9.]+) \((?P<verdict>[^)]*)\)")
_REASK_NOTE = re.compile(r"re-asked with (?P<n>\d+) box")


def _mask_name(target: str) -> str:
    """``masks[0]`` -> ``mask 1``; ``drawn box 0`` -> ``drawn box 1`` (people count from one)."""
    m = _MASK_TARGET.match(target)
    if m:
        return f"mask {int(m.group(1)) + 1}"
    m = _DRAWN_TARGET.match(target)
    if m:
        return f"drawn box {int(m.group(1)) + 1}"
    return target or "a mask"


def _conf(text: str) -> str:
    try:
        return f"{float(text):.2f}"
    except ValueError:
        return text


def _box(o: Override) -> list[Any] | None:
    raw: Any = o.detail.get("new", o.new) if o.detail else o.new
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, list) and len(raw) == 4 else None


def _mask_sentence(verb: str, o: Override) -> str:
    m = _NAME_CONF.match(o.note or "")
    what = f" ({m.group('name')}, C {_conf(m.group('c'))})" if m else (f" ({o.note})" if o.note else "")
    return f"you {verb} {_mask_name(o.target)}{what}"


def _box_sentence(o: Override) -> str:
    box = _box(o)
    where = f" ({box[0]}, {box[1]})\u2013({box[2]}, {box[3]})" if box else ""
    m = _BOX_NOTE.match(o.note or "")
    if not m:
        return f"you drew a box{where} around {o.target}" + (f" ({o.note})" if o.note else "")
    backend = BACKEND_NAMES.get(m.group("backend").lower(), m.group("backend"))
    return (f"you drew a box{where} on slice {m.group('slice')} \u2192 {backend} mask C {_conf(m.group('c'))} "
            f"({m.group('verdict')}) for {o.target}")


def _reask_sentence(o: Override) -> str:
    m = _REASK_NOTE.search(o.note or "")
    n = int(m.group("n")) if m else None
    boxes = "" if n is None else f" with {n} box" + ("" if n == 1 else "es")
    rest = o.note.split(", ", 1)[1] if m and ", " in o.note else ""
    run = f" (new run {o.new})" if o.new else ""
    return f"you re-asked{boxes}{run}" + (f"; {rest}" if rest else "")


def override_sentence(o: Override) -> str:
    """What the clinician did, as a sentence starting with "you" (no trailing full stop)."""
    kind = o.kind or o.target
    if kind == OverrideKind.MASK_DISCARD:
        return _mask_sentence("discarded", o)
    if kind == OverrideKind.MASK_RESTORE:
        return _mask_sentence("restored", o)
    if kind == OverrideKind.MASK_ACCEPT:
        return _mask_sentence("accepted", o)
    if kind == OverrideKind.MASK_REJECT:
        return _mask_sentence("rejected", o)
    if kind == OverrideKind.BOX_ADDED:
        return _box_sentence(o)
    if kind == OverrideKind.REASK:
        return _reask_sentence(o)
    if kind == OverrideKind.FINAL_ANSWER or o.target == OverrideKind.FINAL_ANSWER:
        frm = f" from \u201c{o.old}\u201d" if o.old else ""
        return f"you changed the final answer{frm} to \u201c{o.new}\u201d"
    if kind == OverrideKind.NOTE:
        return f"you noted: {o.note or o.new}"
    if kind == OverrideKind.MEASUREMENT:
        return f"you measured {o.target}: {o.new}" + (f" ({o.note})" if o.note else "")
    if kind == OverrideKind.MEASUREMENT_REMOVED:
        return f"you removed the measurement {o.target}: {o.old}" + (f" ({o.note})" if o.note else "")
    change = f"{o.old} \u2192 {o.new}" if o.old or o.new else ""
    return " ".join(p for p in (str(kind), o.target if o.target != kind else "", change) if p)


def override_rows(overrides: Sequence[Override]) -> tuple[OverrideRow, ...]:
    """The rows the panel and the PDF show, oldest first (as given)."""
    out = []
    for o in overrides:
        out.append(OverrideRow(
            time=fmt_time(o.time), who=o.author, kind=str(o.kind or o.target), target=o.target, old=o.old,
            new=o.new, note=o.note, change=f"{o.old} \u2192 {o.new}" if o.old or o.new else "",
            final_answer=o.target == OverrideKind.FINAL_ANSWER, sentence=override_sentence(o),
        ))
    return tuple(out)
