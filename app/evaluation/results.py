"""One evaluated item, and the accuracy tables made from them (the paper's layout)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable

OVERALL = "OVERALL"


@dataclass
class VQAResult:
    index: int
    image: str
    question: str  # as the file words it (the run records the prompt the model was given)
    answer: str
    answer_type: str
    key: str = ""
    prediction: str = ""
    correct: bool = False
    status: str = ""
    run_id: str = ""
    seconds: float = 0.0
    error: str = ""
    # CARE-Coord: the experts' vote answer and what the coordinator did to it.
    vote_prediction: str = ""
    vote_correct: bool | None = None
    coord_change: str = ""  # "unchanged" | "correction" | "erroneous" | "neutral"
    coord_fallback: bool = False
    coord_proposed: str = ""  # the coordinator's different answer, not applied (may_revise off)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VQAResult":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class AccuracyRow:
    answer_type: str
    n: int = 0
    correct: int = 0
    errors: int = 0
    vote_correct: int = 0  # coord mode: the experts' vote within the same runs

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def vote_accuracy(self) -> float:
        return self.vote_correct / self.n if self.n else 0.0


def accuracy_table(results: Iterable[VQAResult]) -> list[AccuracyRow]:
    """One row per answer type (sorted) and OVERALL last. Errors count as wrong: an item that
    could not be answered is not left out of the denominator."""
    rows: dict[str, AccuracyRow] = {}
    for r in results:
        vote = r.correct if r.vote_correct is None else r.vote_correct
        for key in (r.answer_type, OVERALL):
            row = rows.setdefault(key, AccuracyRow(key))
            row.n += 1
            row.correct += int(r.correct)
            row.errors += int(bool(r.error))
            row.vote_correct += int(bool(vote))
    order = sorted(k for k in rows if k != OVERALL)
    return [rows[k] for k in order] + ([rows[OVERALL]] if OVERALL in rows else [])


def format_table(rows: list[AccuracyRow], title: str, *, coord: bool) -> str:
    """The paper's layout: accuracy per answer type, CARE-Flow beside CARE-Coord. In a CARE-Coord
    evaluation the CARE-Flow column is the experts' majority vote inside the same runs (what the
    coordinator received), so the two columns are measured on identical passes."""
    width = max([12] + [len(r.answer_type) for r in rows])
    head = f"{'answer type':<{width}} {'n':>5} {'CARE-Flow':>10}" + (f" {'CARE-Coord':>11}" if coord else "")
    head += f" {'errors':>7}"
    lines = [title, head, "-" * len(head)]
    for r in rows:
        if r.answer_type == OVERALL:
            lines.append("-" * len(head))
        flow = 100 * (r.vote_accuracy if coord else r.accuracy)
        line = f"{r.answer_type:<{width}} {r.n:>5} {flow:>9.2f}%"
        if coord:
            line += f" {100 * r.accuracy:>10.2f}%"
        lines.append(line + f" {r.errors:>7}")
    if coord:
        lines.append("CARE-Flow here = the experts' vote inside the CARE-Coord runs (the coordinator's input).")
    return "\n".join(lines)


def accuracy_dict(rows: list[AccuracyRow], *, coord: bool) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry: dict[str, Any] = {"n": r.n, "correct": r.correct, "accuracy": r.accuracy, "errors": r.errors}
        if coord:
            entry["flow_vote_correct"], entry["flow_vote_accuracy"] = r.vote_correct, r.vote_accuracy
        out[r.answer_type] = entry
    return out


def combined_table(summaries: list[dict[str, Any]]) -> str:
    """Several eval.json summaries (one per benchmark) as the paper lays its table out: a block of
    answer-type rows per benchmark, CARE-Flow beside CARE-Coord where the evaluation was CARE-Coord,
    and each CARE-Coord evaluation's change statistic (changed = wrong->right + right->wrong)."""
    head = f"{'benchmark':<14} {'answer type':<22} {'n':>5} {'CARE-Flow':>10} {'CARE-Coord':>11}"
    lines = [head, "=" * len(head)]
    notes = []
    for s in summaries:
        coord = s.get("mode") == "coord"
        name = str(s.get("benchmark") or s.get("format") or Path(str(s.get("dataset", "?"))).name)
        for i, (kind, acc) in enumerate(s.get("accuracy", {}).items()):
            flow = acc.get("flow_vote_accuracy", acc["accuracy"]) if coord else acc["accuracy"]
            coord_cell = f"{100 * acc['accuracy']:>10.2f}%" if coord else f"{'-':>11}"
            lines.append(f"{name if i == 0 else '':<14} {kind:<22} {acc['n']:>5} {100 * flow:>9.2f}% {coord_cell}")
        lines.append("-" * len(head))
        ch = s.get("coordinator_changes")
        if coord and ch:
            notes.append(f"{name}: coordinator changed {ch['changed_pct']:.2f}% of vote answers "
                         f"(corrections {ch['corrections_pct']:.2f}% + erroneous {ch['erroneous_pct']:.2f}%; "
                         f"neutral {ch['neutral_pct']:.2f}%, fallbacks {ch['fallbacks']})")
    if any(s.get("mode") == "coord" for s in summaries):
        notes.append("CARE-Flow in a CARE-Coord evaluation = the experts' vote inside the same runs.")
    return "\n".join(lines + notes)
