"""The shared text formatters: every renderer (audit panel, PDF, CLI) formats times,
probabilities and long text through these, so a run reads the same everywhere."""
from __future__ import annotations

import re
from datetime import datetime


def fmt_time(iso: str) -> str:
    """'2026-01-02T10:11:12.345+00:00' -> '2026-01-02 10:11:12 UTC' (unparseable: as is)."""
    if not iso:
        return "-"
    try:
        t = datetime.fromisoformat(iso)
    except (ValueError, TypeError):
        return iso
    zone = "UTC" if t.utcoffset() is not None and t.utcoffset().total_seconds() == 0 else (t.strftime("%z") or "")
    return f"{t:%Y-%m-%d %H:%M:%S} {zone}".strip()


def fmt_local_minute(iso: str) -> str:
    """'2026-12-02T06:40:12.345+00:00' -> '2026-12-02 07:40' on a UTC+01:00 computer: the same
    instant on this computer's clock, to the minute, for rows of runs (what the reader's own clock
    said then). A naive time names no zone: it is shown as written, never shifted by a zone
    guessed for it. Empty: '-'; unparseable: as is."""
    if not iso:
        return "-"
    try:
        t = datetime.fromisoformat(iso)
    except (ValueError, TypeError):
        return iso
    return f"{(t.astimezone() if t.utcoffset() is not None else t):%Y-%m-%d %H:%M}"


# A sha256 (64 hex) or git revision (40 hex) in running text: shown short, never in full on screen.
_HEX_RUN = re.compile(r"\b[0-9a-fA-F]{32,}\b")
HASH_CHARS = 12


def short_hash(value: str, n: int = HASH_CHARS) -> str:
    """A hash cut to its first ``n`` characters and an ellipsis ('' stays '', a short value as is):
    enough to compare by eye; the full value belongs in a tooltip or the report."""
    v = (value or "").strip()
    return v if len(v) <= n else v[:n] + "\u2026"


def short_hashes(text: str) -> str:
    """``text`` with every run of 32 or more hex digits (a sha256, a revision) shortened by :func:`short_hash`."""
    return _HEX_RUN.sub(lambda m: short_hash(m.group(0)), text or "")


def fmt_prob(p: float | None) -> str:
    """Two decimals for a report; a tiny non-zero probability is '<0.01', not '0.00'."""
    if p is None:
        return "n/a"
    return "<0.01" if 0 < p < 0.005 else f"{p:.2f}"


def fmt_prob3(p: float | None) -> str:
    """Three decimals, where answers are compared side by side (vote table, terminal)."""
    return "n/a" if p is None else f"{p:.3f}"


def fmt_dicom_date(value: str) -> str:
    v = (value or "").strip()
    if re.fullmatch(r"\d{8}", v):
        return f"{v[:4]}-{v[4:6]}-{v[6:]}"
    return v


def fmt_person_name(value: str) -> str:
    """DICOM PN 'Family^Given^Middle' -> 'Family, Given Middle'."""
    parts = [p.strip() for p in (value or "").split("=")[0].split("^")]
    family, rest = (parts[0], [p for p in parts[1:] if p]) if parts else ("", [])
    return f"{family}, {' '.join(rest)}" if family and rest else (family or " ".join(rest))


def elide(text: str, n: int, *, trim: bool = True) -> str:
    """Whitespace collapsed, cut to ``n`` characters with an ellipsis. ``trim=False`` keeps a
    space before the ellipsis (the terminal output has always done so)."""
    text = " ".join((text or "").split())
    if len(text) <= n:
        return text
    head = text[: n - 1]
    return (head.rstrip() if trim else head) + "\u2026"


def elide_name(name: str, n: int) -> str:
    """A name cut to ``n`` characters as typed (no whitespace folding), for row labels."""
    return name if len(name) <= n else name[: n - 1] + "\u2026"


def tail(uid: str, limit: int = 14) -> str:
    """UIDs differ at the end: keep that part."""
    return uid if len(uid) <= limit else "\u2026" + uid[-(limit - 1):]


def breakable(text: str, every: int = 24) -> str:
    """Zero-width spaces inside very long tokens so a label can wrap them: model output
    (and a runaway generation in particular) must never widen the panel off screen."""
    return re.sub(r"\S{%d,}" % (every + 1),
                  lambda m: "\u200b".join(m.group(0)[i:i + every] for i in range(0, len(m.group(0)), every)), text)


def sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def names(items) -> str:
    """Evidence types (or any enum values) as 'crop, mask'."""
    return ", ".join(getattr(e, "value", str(e)) for e in items)


# C0 controls except tab/newline, DEL, and C1 controls (0x80-0x9f: a lone 0x9b is a CSI on
# many terminals). Text from files and users may carry them to recolour, retitle or rewrite
# the terminal, so every print of such text shows them escaped instead.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_BUT_CR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def printable(text: object, keep_cr: bool = False) -> str:
    """``text`` with terminal control characters (ESC, CSI, OSC, BEL, CR, ...) shown as
    ``\\uXXXX``; newline and tab are kept. The escape is also a valid JSON string escape, so
    it can be applied to JSON output without breaking it. ``keep_cr`` keeps carriage returns
    (for the stream-level safety net, so library progress bars still redraw in place)."""
    pattern = _CONTROLS_BUT_CR if keep_cr else _CONTROLS
    return pattern.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))
