"""How often the coordinator changed the experts' majority-vote answer, and whether that
helped: the CARE paper's coordinator analysis (GPT-5 changed 7.89% of answers: 4.84%
corrections wrong->right, 3.05% erroneous right->wrong; 7.89 = 4.84 + 3.05).

Per question, correct before (the CARE-Flow vote) vs after (the coordinator's final answer):

- correction: the vote answer was wrong, the coordinator's is right
- erroneous: the vote answer was right, the coordinator's is wrong
- neutral: a different answer with the same correctness (wrong -> another wrong answer, or
  a right answer reworded into another right one); reported apart, *not* counted as changed

``changed`` = corrections + erroneous, the paper's definition, so the percentage is
comparable to its 7.89%.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

UNCHANGED, CORRECTION, ERRONEOUS, NEUTRAL = "unchanged", "correction", "erroneous", "neutral"

Scorer = Callable[[str], bool]  # prediction -> correct?

DEFINITION = (
    "per question, correct before (CARE-Flow vote) vs after (coordinator final answer): changed = "
    "wrong->right (corrections) + right->wrong (erroneous), as in the CARE paper (GPT-5: 7.89% = 4.84% + 3.05%); "
    "neutral = a different answer with the same correctness (right->right, wrong->wrong), reported apart"
)


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
    withheld: int = 0  # items where it proposed another answer but may not revise (a finding only)

    def add(self, kind: str, fallback: bool = False, withheld: bool = False) -> None:
        self.n += 1
        self.fallbacks += int(fallback)
        self.withheld += int(withheld)
        if kind == CORRECTION:
            self.corrections += 1
        elif kind == ERRONEOUS:
            self.erroneous += 1
        elif kind == NEUTRAL:
            self.neutral += 1

    @property
    def changed(self) -> int:
        """The paper's definition: the answers whose correctness the coordinator flipped."""
        return self.corrections + self.erroneous

    def pct(self, count: int) -> float:
        return 100.0 * count / self.n if self.n else 0.0

    @property
    def net_gain_pct(self) -> float:
        """Accuracy points the coordinator added over the vote (corrections - erroneous)."""
        return self.pct(self.corrections) - self.pct(self.erroneous)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n, "changed": self.changed, "corrections": self.corrections, "erroneous": self.erroneous,
            "neutral": self.neutral, "fallbacks": self.fallbacks, "withheld": self.withheld,
            "changed_pct": self.pct(self.changed), "corrections_pct": self.pct(self.corrections),
            "erroneous_pct": self.pct(self.erroneous), "neutral_pct": self.pct(self.neutral),
            "net_gain_pct": self.net_gain_pct, "definition": DEFINITION,
        }

    def format(self) -> str:
        if not self.n:
            return "coordinator: no item reached a coordinator decision"
        lines = [
            f"coordinator changed {self.changed} of {self.n} vote answers ({self.pct(self.changed):.2f}%; "
            "changed = wrong -> right + right -> wrong, as in the CARE paper's 7.89%):",
            f"  corrections (wrong -> right)   {self.corrections:>4}  {self.pct(self.corrections):6.2f}%",
            f"  erroneous   (right -> wrong)   {self.erroneous:>4}  {self.pct(self.erroneous):6.2f}%",
            f"  net accuracy change            {self.net_gain_pct:+.2f} points",
            f"  neutral, not counted as changed (a different answer, same correctness) "
            f"{self.neutral:>4}  {self.pct(self.neutral):6.2f}%",
        ]
        if self.withheld:
            lines.append(f"  the coordinator proposed another answer on {self.withheld} item(s) but may not revise "
                         "(may_revise = false): recorded as findings, the vote answer stood")
        if self.fallbacks:
            lines.append(f"  coordinator failed on {self.fallbacks} item(s); the CARE-Flow vote answer stood")
        return "\n".join(lines)
