"""A reply's text and its per-token log-probs, made to agree: ``"".join(tokens) == text``.

The audit shows both, and every figure from the log-probs (answer-span mean, confidence, the
coordinator's uncertainty) maps tokens to characters of the text, so a token that is not in the
text shifts every span after it. The local InternVL backend builds its pieces from the token ids
and leaves out :data:`CONTROL_TOKENS` from both. A remote server's text and its ``logprobs``
list are separate answers that need not agree: vLLM's default ``skip_special_tokens=true``
drops every added token (``<ref>``, ``<box>`` too) from the text but not from the log-probs, the
stop token (``<|im_end|>``) is never in the text but is in the log-probs, and a token holding
part of a character's bytes comes back as "" (vLLM) or U+FFFD, while the text has the character
(or U+FFFD where it was never completed). :func:`align_tokens` reconciles the
two the local way, and where they cannot be reconciled returns no tokens rather than figures
over tokens the text does not contain.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

# Tokens that carry no answer content: chat control, padding and image placeholders. Grounding
# tokens (<ref>, <box>, <quad>) are special in the tokenizer too but ARE content: keep them.
# Qwen2.5's vision/FIM placeholders are never content either (InternVL does not use them; a
# poorly trained checkpoint can still emit them, and they must not reach the vote or a report).
CONTROL_TOKENS: tuple[str, ...] = (
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)  # fmt: skip
_CONTROL = frozenset(CONTROL_TOKENS)
_CONTROL_RE = re.compile("|".join(re.escape(t) for t in sorted(CONTROL_TOKENS, key=len, reverse=True)))
# How a tokenizer's added tokens are written (<|im_end|>, <ref>, </s>, <end_of_turn>): only such a
# token may be missing from the text (a server skipping special tokens); any other must be there.
_ADDED_TOKEN = re.compile(r"<[^<>\s]+>")
_REPLACEMENT = "\ufffd"
_MAX_STEPS = 200_000  # search budget: a reply that needs more is not reconcilable in any useful sense


@dataclass(frozen=True)
class TokenText:
    text: str
    tokens: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # non-control tokens the text does not contain
    problem: str = ""  # why the tokens were dropped (they could not be matched to the text)


def strip_control(text: str) -> str:
    """``text`` without the control tokens the local backend strips (they are never content)."""
    return _CONTROL_RE.sub("", text) if "<" in text else text


def _ends(piece: str, text: str, pos: int) -> list[int]:
    """Where ``piece`` can end when it starts at ``text[pos]``, each U+FFFD standing for zero or
    one character (a partial UTF-8 sequence: the character goes to the token that completes it,
    as the local backend's pieces do). Shortest first."""
    ends = {pos}
    for ch in piece:
        nxt: set[int] = set()
        for e in ends:
            if ch == _REPLACEMENT:
                nxt.add(e)
                if e < len(text):
                    nxt.add(e + 1)
            elif text.startswith(ch, e):
                nxt.add(e + 1)
        ends = nxt
        if not ends:
            break
    return sorted(ends)


def _options(piece: str, text: str, pos: int) -> list[tuple[int, bool]]:
    """(end, kept) choices for one token at ``pos``; kept False: the token is not in the text."""
    if piece in _CONTROL:
        return [(pos, False)]
    if _REPLACEMENT in piece or not piece:
        # vLLM reports a token holding part of a character as "" (bytes []), others as U+FFFD:
        # either way it stands for nothing, or the character (U+FFFD in the text if never completed).
        opts = [(e, True) for e in _ends(piece or _REPLACEMENT, text, pos)]
    else:
        opts = [(pos + len(piece), True)] if text.startswith(piece, pos) else []
    if _ADDED_TOKEN.fullmatch(piece):
        opts.append((pos, False))  # a special token the server left out of the text
    return opts


def align_tokens(text: str, tokens: Sequence[str], logprobs: Sequence[float]) -> TokenText:
    """The reply with control tokens stripped from the text, and the tokens that make up exactly
    that text (pieces joined == text), with their log-probs.

    Tokens missing from the text are left out (control tokens always; other added tokens when
    the server skipped them: listed in ``left_out``). A U+FFFD piece takes the characters it
    stands for. When no such reading exists (a server whose text is not the decoded tokens),
    the tokens are dropped and ``problem`` says where they diverge.
    """
    text = strip_control(text)
    n = len(tokens)
    if not n:
        return TokenText(text)
    if len(logprobs) != n:
        return TokenText(text, problem=f"{n} tokens but {len(logprobs)} log-probs")
    # Depth-first over tokens; dead (token, position) states are remembered, so the search is
    # linear when each token has one reading (the usual case) and bounded otherwise.
    dead: set[tuple[int, int]] = set()
    stack = [(0, 0, iter(_options(tokens[0], text, 0)))]
    chosen: list[tuple[int, bool]] = []
    furthest = (0, 0)
    steps = 0
    while stack:
        steps += 1
        if steps > _MAX_STEPS:
            break
        i, pos, opts = stack[-1]
        nxt = next(opts, None)
        if nxt is None:
            dead.add((i, pos))
            stack.pop()
            if chosen:
                chosen.pop()
            continue
        end, kept = nxt
        if i + 1 == n:
            if end == len(text):
                chosen.append(nxt)
                return _assemble(text, tokens, logprobs, chosen)
            continue
        if (i + 1, end) in dead:
            continue
        furthest = max(furthest, (i + 1, end))
        chosen.append(nxt)
        stack.append((i + 1, end, iter(_options(tokens[i + 1], text, end))))
    i, pos = furthest
    return TokenText(text, problem=f"the reply's tokens do not make up its text (token {i} "
                                   f"{tokens[min(i, n - 1)]!r} does not continue it at character {pos} of {len(text)})")


def _assemble(text: str, tokens: Sequence[str], logprobs: Sequence[float], chosen: list[tuple[int, bool]]) -> TokenText:
    pieces: list[str] = []
    lps: list[float] = []
    left_out: list[str] = []
    pos = 0
    for piece, lp, (end, kept) in zip(tokens, logprobs, chosen):
        if kept:
            pieces.append(text[pos:end])
            lps.append(float(lp))
        elif piece not in _CONTROL:
            left_out.append(piece)
        pos = end
    return TokenText(text, pieces, lps, left_out)
