"""How often the coordinator changed the experts' majority-vote answer, and whether that
helped: the CARE paper's coordinator analysis (GPT-5 changed 7.89% of answers: 4.84%
corrections wrong->right, 3.05% erroneous right->wrong).

- correction: the vote answer was wrong, the coordinator's is right
- erroneous: the vote answer was right, the coordinator's is wrong
- neutral: changed without changing correctness (wrong -> a different wrong answer, or a
  right answer reworded into another right one)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

UNCHANGED, CORRECTION, ERRONEOUS, NEUTRAL = "unchanged", "correction", "erroneous", "neutral"

Scorer = Callable[[str], bool]  # prediction -> correct?


def classify_change(vote_answer: str, final_answer: str, correct: Scorer, normalize: Callable[[str], str]) -> str:
    if normalize(vote_answer or "") == normalize(final_answer or ""):
        return UNCHANGED
    before, after = correct(vote_answer), correct(final_answer)
    if not before and after:
        return CORRECTION
    if before and not after:
        return ERRONEOUS
    return NEUTRAL


@dataclass
class ChangeStats:
    n: int = 0  # items with a coordinator decision
    corrections: int = 0
    erroneous: int = 0
    neutral: int = 0
    fallbacks: int = 0  # items where the coordinator failed and the vote answer stood

    def add(self, kind: str, fallback: bool = False) -> None:
        self.n += 1
        self.fallbacks += int(fallback)
        if kind == CORRECTION:
            self.corrections += 1
        elif kind == ERRONEOUS:
            self.erroneous += 1
        elif kind == NEUTRAL:
            self.neutral += 1

    @property
    def changed(self) -> int:
        return self.corrections + self.erroneous + self.neutral

    def pct(self, count: int) -> float:
        return 100.0 * count / self.n if self.n else 0.0

    @property
    def net_gain_pct(self) -> float:
        """Accuracy points the coordinator added over the vote (corrections - erroneous)."""
        return self.pct(self.corrections) - self.pct(self.erroneous)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n, "changed": self.changed, "corrections": self.corrections, "erroneous": self.erroneous,
            "neutral": self.neutral, "fallbacks": self.fallbacks,
            "changed_pct": self.pct(self.changed), "corrections_pct": self.pct(self.corrections),
            "erroneous_pct": self.pct(self.erroneous), "neutral_pct": self.pct(self.neutral),
            "net_gain_pct": self.net_gain_pct,
        }

    def format(self) -> str:
        if not self.n:
            return "coordinator: no item reached a coordinator decision"
        lines = [
            f"coordinator changed {self.changed} of {self.n} vote answers ({self.pct(self.changed):.2f}%):",
            f"  corrections (wrong -> right)   {self.corrections:>4}  {self.pct(self.corrections):6.2f}%",
            f"  erroneous   (right -> wrong)   {self.erroneous:>4}  {self.pct(self.erroneous):6.2f}%",
            f"  neutral     (same correctness) {self.neutral:>4}  {self.pct(self.neutral):6.2f}%",
            f"  net accuracy change            {self.net_gain_pct:+.2f} points",
        ]
        if self.fallbacks:
            lines.append(f"  coordinator failed on {self.fallbacks} item(s); the CARE-Flow vote answer stood")
        return "\n".join(lines)
