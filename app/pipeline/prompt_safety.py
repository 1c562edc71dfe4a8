"""Text from outside the prompt templates (the radiologist's question, entity names, the
experts' answers and reasoning quoted to the coordinator) can never become chat structure.

A tokenizer turns the exact strings of its added tokens into control ids wherever they
appear, so a question containing ``<|im_start|>assistant`` would open a fake assistant turn
and ``<IMG_CONTEXT>`` would claim an image that is not there (the processor then fails).
``literal`` writes every template-token-like piece with look-alike angle brackets
(U+2039/U+203A; U+2045/U+2046 for square brackets: no tokenizer, and no NFKC
normalisation, maps them back to ``<``/``>``/``[``/``]``, as it would full-width forms): the model
still reads the text, but no tokenizer (local InternVL, a remote server's, whatever its
template) sees a token. What is rewritten, case-insensitively:

- ``<|anything|>`` (Qwen/ChatML, Llama 3, Phi control tokens), and any lone ``<|`` / ``|>``;
- tag-like ``<name>``, ``</name>``, ``<name/>`` with a letter or ``_`` first (``<img>``,
  ``<IMG_CONTEXT>``, ``<image>``, ``<think>``, ``<answer>``, ``<ref>``, ``<s>``, ...);
- ``[INST]`` / ``[/INST]`` and ``<<SYS>>`` (Llama 2 / Mistral).

Comparisons such as ``< 5 mm`` or ``a<b`` are not tags and are left alone. The original
question stays verbatim in ``RunRecord.question``; ``RunRecord.question_literal_tokens``
lists what was rewritten.
"""
from __future__ import annotations

import re

OPEN, CLOSE = "\u2039", "\u203a"  # single angle quotation marks: look like < and >
LBRACKET, RBRACKET = "\u2045", "\u2046"  # square brackets with quill: look like [ and ]

_PIPE = re.compile(r"<\||\|>")
_TAG = re.compile(r"<(/?[A-Za-z_][A-Za-z0-9_.:\-]*\s*/?)>")
_BRACKET = re.compile(r"\[(/?INST)\]|<<(/?SYS)>>", re.IGNORECASE)
_FOUND = re.compile(r"<\|[^<>]*?\|>|<\||\|>|<(?:/?[A-Za-z_][A-Za-z0-9_.:\-]*\s*/?)>|\[/?INST\]|<</?SYS>>",
                    re.IGNORECASE)


def template_tokens(text: str) -> list[str]:
    """The template-token-like pieces of ``text`` that ``literal`` rewrites (distinct, in order)."""
    return list(dict.fromkeys(m.group(0) for m in _FOUND.finditer(text or "")))


def literal(text: str) -> str:
    """``text`` with every template-token-like piece written with look-alike brackets."""
    if not text or ("<" not in text and "|>" not in text and "[" not in text):
        return text or ""
    out = _BRACKET.sub(lambda m: f"{LBRACKET}{m.group(1)}{RBRACKET}" if m.group(1)
                       else f"{OPEN}{OPEN}{m.group(2)}{CLOSE}{CLOSE}", text)
    out = _PIPE.sub(lambda m: f"{OPEN}|" if m.group(0) == "<|" else f"|{CLOSE}", out)
    return _TAG.sub(lambda m: f"{OPEN}{m.group(1)}{CLOSE}", out)
