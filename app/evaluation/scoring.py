"""How an answer is scored (the rules ``eval`` documents and writes into eval.json).

Every comparison is after ``normalize_answer`` with the item's question (case, punctuation,
articles and number words; yes/no synonyms only for a yes/no question).
- closed: exact match with a ground truth;
- open: exact match, or every word of a ground truth present in the answer (the recall rule
  commonly used for VQA-RAD/SLAKE open questions);
- multiple choice (OmniMedVQA): the answer is the option's letter ("B", "B.", "(B)", "Option B",
  "B. <text>") or exactly an option's text; it is correct when that option is the ground truth.
  An answer that is neither scores wrong; nothing is matched by similarity.
- several accepted ground truths (VQA-Med's ``#`` alternatives and optional words): correct
  when any of them is.
"""
from __future__ import annotations

import re
from typing import Callable

from .formats import EvalItem

Normalize = Callable[[str], str]

RULES = {
    "normalisation": "normalize_answer with the item's question (case, punctuation, articles, number words; "
                     "yes/no synonyms only for yes/no questions)",
    "closed": "exact match with a ground truth after normalisation",
    "open": "exact match, or every word of a ground truth present in the answer (recall rule)",
    "multiple_choice": "the option letter or exactly an option's text; correct when it is the ground-truth option",
    "alternatives": "correct when any accepted ground truth is (VQA-Med '#' alternatives, '()' optional words)",
}

_LETTER = re.compile(r"^\s*(?:option\s+)?\(?([A-F])\)?(?:[.:)]\s*(.*))?\s*$", re.S | re.I)


def is_correct(prediction: str, truth: str, answer_type: str, normalize: Normalize) -> bool:
    """One answer against one ground truth; ``answer_type`` CLOSED is exact, anything else open."""
    p, t = normalize(prediction or ""), normalize(str(truth))
    if not p:
        return False
    if p == t:
        return True
    if answer_type.upper() == "CLOSED":
        return False
    return bool(t) and set(t.split()) <= set(p.split())


def chosen_option(prediction: str, item: EvalItem, normalize: Normalize) -> str | None:
    """The letter of the option the answer names, or None when it names none (or several)."""
    letters = {letter.upper() for letter, _ in item.options}
    m = _LETTER.match(prediction or "")
    if m and m.group(1).upper() in letters:
        letter = m.group(1).upper()
        rest = normalize(m.group(2) or "")
        text = normalize(dict(item.options)[letter])
        # "B. Glaucoma" must agree with option B's text; a bare "B" stands alone.
        if not rest or rest == text:
            return letter
        return None
    p = normalize(prediction or "")
    named = [letter for letter, text in item.options if p and normalize(text) == p]
    return named[0] if len(named) == 1 else None


def score_item(item: EvalItem, prediction: str, normalize: Normalize) -> bool:
    if item.options:
        letter = chosen_option(prediction, item, normalize)
        return letter is not None and normalize(dict(item.options)[letter]) == normalize(item.answer)
    kind = "CLOSED" if item.closed else "OPEN"
    return any(is_correct(prediction, truth, kind, normalize) for truth in item.truths)
