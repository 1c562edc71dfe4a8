"""Fonts for the report: a Unicode TrueType face when the system has one, else Helvetica.

reportlab's 14 base fonts only encode Latin-1, and model output (random or real) can hold
any character. We register the first TrueType family found (DejaVu on Linux, Arial on
Windows/macOS, the Bitstream Vera reportlab ships as a last TrueType resort) and pass all
text through :meth:`FontSet.clean`, which replaces what the face cannot draw, so no input
text can make the report fail.
"""
from __future__ import annotations

import os
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

# (regular, bold, mono) candidates per family, first hit wins.
_FAMILIES: list[tuple[str, list[str], list[str], list[str]]] = [
    ("DejaVuSans",
     ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf",
      "/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/local/share/fonts/DejaVuSans.ttf"],
     ["/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
      "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf", "/usr/local/share/fonts/DejaVuSans-Bold.ttf"],
     ["/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
      "/usr/share/fonts/TTF/DejaVuSansMono.ttf"]),
    ("Arial",
     [os.path.expandvars(r"%WINDIR%\Fonts\arial.ttf"), "/Library/Fonts/Arial.ttf",
      "/System/Library/Fonts/Supplemental/Arial.ttf"],
     [os.path.expandvars(r"%WINDIR%\Fonts\arialbd.ttf"), "/Library/Fonts/Arial Bold.ttf",
      "/System/Library/Fonts/Supplemental/Arial Bold.ttf"],
     [os.path.expandvars(r"%WINDIR%\Fonts\consola.ttf"), "/System/Library/Fonts/Supplemental/Courier New.ttf"]),
]


@dataclass
class FontSet:
    regular: str
    bold: str
    mono: str
    # Code points the regular face can draw; None = Latin-1 only (a base font).
    coverage: frozenset[int] | None = field(default=None, repr=False)

    def clean(self, text: object) -> str:
        """``text`` with control characters dropped and undrawable characters replaced."""
        s = unicodedata.normalize("NFC", str(text if text is not None else ""))
        out = []
        for ch in s:
            cp = ord(ch)
            if ch in "\n\t":
                out.append(ch)
            elif cp < 32 or 0x7F <= cp < 0xA0 or unicodedata.category(ch) in ("Cs", "Co", "Cn"):
                continue
            elif self.coverage is None:
                out.append(ch if cp < 256 else "?")
            else:
                out.append(ch if cp in self.coverage else ("\ufffd" if 0xFFFD in self.coverage else "?"))
        return "".join(out)


_LOCK = threading.Lock()
_CACHE: FontSet | None = None


def _first(paths: list[str]) -> str | None:
    return next((p for p in paths if p and Path(p).is_file()), None)


def _register(name: str, path: str) -> frozenset[int]:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    font = TTFont(name, path)
    pdfmetrics.registerFont(font)
    return frozenset(font.face.charToGlyph.keys())


def fonts() -> FontSet:
    """Register (once per process) and return the report's fonts."""
    global _CACHE
    with _LOCK:
        if _CACHE is not None:
            return _CACHE
        from reportlab.lib.fonts import addMapping

        import reportlab

        vera = Path(reportlab.__file__).parent / "fonts"
        families = _FAMILIES + [("Vera", [str(vera / "Vera.ttf")], [str(vera / "VeraBd.ttf")], [])]
        for family, regs, bolds, monos in families:
            reg, bold = _first(regs), _first(bolds)
            if not reg:
                continue
            try:
                coverage = _register(f"CARE-{family}", reg)
                bold_name = f"CARE-{family}-Bold"
                _register(bold_name, bold) if bold else None
                mono = _first(monos)
                mono_name = f"CARE-{family}-Mono"
                if mono:
                    _register(mono_name, mono)
                else:
                    mono_name = "Courier"  # hashes and ids only: ASCII
            except Exception:  # a damaged font file: try the next family
                continue
            regular = f"CARE-{family}"
            bold_name = bold_name if bold else regular
            # <b> in paragraphs must find the bold face of the family.
            addMapping(regular, 0, 0, regular)
            addMapping(regular, 1, 0, bold_name)
            addMapping(regular, 0, 1, regular)
            addMapping(regular, 1, 1, bold_name)
            _CACHE = FontSet(regular, bold_name, mono_name, coverage)
            return _CACHE
        _CACHE = FontSet("Helvetica", "Helvetica-Bold", "Courier", None)
        return _CACHE
