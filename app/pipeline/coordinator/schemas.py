"""JSON schemas of the coordinator's two structured replies (plan, review) and their
semantic checks.

The schemas stay inside the subset every consumer understands: OpenAI strict structured
output (every property required, ``additionalProperties: false``), vLLM/llama.cpp guided
decoding, and :mod:`app.pipeline.remote.json_validate`. Every free-text string has a
``maxLength`` and every array a ``maxItems``: guided decoding follows the grammar, not the
model's judgement, so an unbounded string lets a weak model write until max_tokens and the
JSON is cut off; bounded, the grammar itself closes every string and array.
OpenAI's strict mode refuses string-length keywords, so the remote backend can send the
schema without them (:func:`without_length_bounds`, profile ``length_bounds = false``).

Candidate ids are *enums built per call*, so "the revised answer rests on an existing
candidate" is enforced by the schema itself (a guided-decoding server cannot even emit an
unknown id) and re-checked by the validator for servers that ignore ``response_format``.
What a schema cannot say (e.g. "accept must name a candidate that gave the vote answer")
is checked by :func:`review_problem` and gets the same one corrective retry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from app.pipeline.types import EvidenceType
from app.pipeline.vocab import ReviewAction

EVIDENCE_VALUES = [e.value for e in (EvidenceType.CROP, EvidenceType.MASK, EvidenceType.GLOBAL)]
ACTIONS = ("accept", "choose", "revise", "another_round")
MAX_NEXT_ENTITIES = 3
# Free-text bounds (characters): long enough for the paper's one- or two-sentence rationales.
MAX_RATIONALE = 400
MAX_NOTE = 200
MAX_ANSWER = 120
MAX_ENTITY = 60


def plan_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "evidence": {
                "type": "array",
                "items": {"type": "string", "enum": list(EVIDENCE_VALUES)},
                "minItems": 1,
                "maxItems": 3,
            },
            "rationale": {"type": "string", "maxLength": MAX_RATIONALE},
        },
        "required": ["evidence", "rationale"],
        "additionalProperties": False,
    }


def review_schema(candidate_ids: Sequence[str], allow_another_round: bool) -> dict[str, Any]:
    """The review reply for these candidates; ``another_round`` only while rounds are left."""
    ids = list(candidate_ids)
    actions = [a for a in ACTIONS if allow_another_round or a != "another_round"]
    return {
        "type": "object",
        "properties": {
            "judgements": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "candidate": {"type": "string", "enum": ids},
                        "cot_supports_answer": {"type": "boolean"},
                        "addresses_question": {"type": "boolean"},
                        "note": {"type": "string", "maxLength": MAX_NOTE},
                    },
                    "required": ["candidate", "cot_supports_answer", "addresses_question", "note"],
                    "additionalProperties": False,
                },
                "maxItems": len(ids),
            },
            "action": {"type": "string", "enum": actions},
            "candidate": {"type": "string", "enum": ids},
            "final_answer": {"type": "string", "maxLength": MAX_ANSWER},
            "rests_on": {"type": "array", "items": {"type": "string", "enum": ids}, "minItems": 1,
                         "maxItems": len(ids)},
            "rationale": {"type": "string", "maxLength": MAX_RATIONALE},
            "next_evidence": {"type": "array", "items": {"type": "string", "enum": list(EVIDENCE_VALUES)},
                              "maxItems": len(EVIDENCE_VALUES)},
            "next_entities": {"type": "array", "items": {"type": "string", "maxLength": MAX_ENTITY},
                              "maxItems": MAX_NEXT_ENTITIES},
        },
        "required": [
            "judgements", "action", "candidate", "final_answer", "rests_on", "rationale",
            "next_evidence", "next_entities",
        ],
        "additionalProperties": False,
    }


def without_length_bounds(schema: Any) -> Any:
    """A copy of ``schema`` without ``minLength``/``maxLength`` (for OpenAI strict mode)."""
    if isinstance(schema, dict):
        return {k: without_length_bounds(v) for k, v in schema.items() if k not in ("minLength", "maxLength")}
    if isinstance(schema, list):
        return [without_length_bounds(v) for v in schema]
    return schema


def unbounded_strings(schema: Any, where: str = "$") -> list[str]:
    """Paths of every string without ``enum``/``maxLength`` and every array without ``maxItems``:
    what a guided decoder could extend without end (empty for the schemas above)."""
    if not isinstance(schema, dict):
        return []
    out: list[str] = []
    if schema.get("type") == "string" and "enum" not in schema and "maxLength" not in schema:
        out.append(where)
    if schema.get("type") == "array":
        if "maxItems" not in schema:
            out.append(where)
        out += unbounded_strings(schema.get("items"), where + "[]")
    for key, sub in schema.get("properties", {}).items():
        out += unbounded_strings(sub, f"{where}.{key}")
    return out


# ----------------------------------------------------------------------------- parsed forms
@dataclass
class PlanReply:
    evidence: list[EvidenceType]
    rationale: str


@dataclass
class Judgement:
    candidate: str
    cot_supports_answer: bool
    addresses_question: bool
    note: str = ""


@dataclass
class ReviewReply:
    judgements: list[Judgement]
    action: ReviewAction
    candidate: str
    final_answer: str
    rests_on: list[str]
    rationale: str
    next_evidence: list[EvidenceType] = field(default_factory=list)
    next_entities: list[str] = field(default_factory=list)


def _unique(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def plan_from_json(value: dict[str, Any]) -> PlanReply:
    """A schema-valid plan value as a PlanReply (duplicates dropped, order kept)."""
    return PlanReply([EvidenceType(e) for e in _unique(value["evidence"])], str(value["rationale"]).strip())


def review_from_json(value: dict[str, Any]) -> ReviewReply:
    rests = _unique(str(c) for c in value["rests_on"])
    candidate = str(value["candidate"])
    if value["action"] in ("accept", "choose") and candidate not in rests:
        rests.insert(0, candidate)  # the chosen candidate is by definition what the answer rests on
    names = [" ".join(str(n).split()) for n in value["next_entities"]]
    return ReviewReply(
        judgements=[
            Judgement(str(j["candidate"]), bool(j["cot_supports_answer"]), bool(j["addresses_question"]),
                      str(j["note"]).strip())
            for j in value["judgements"]
        ],
        action=ReviewAction(str(value["action"])),  # the schema's enum: always a member
        candidate=candidate,
        final_answer=str(value["final_answer"]).strip(),
        rests_on=rests,
        rationale=str(value["rationale"]).strip(),
        next_evidence=[EvidenceType(e) for e in _unique(value["next_evidence"])],
        next_entities=[n for n in _unique(names) if n],
    )


def review_problem(
    value: dict[str, Any],
    answers: dict[str, str],
    vote_ids: Sequence[str],
) -> str | None:
    """What is wrong with a schema-valid review, or None.

    ``answers`` maps candidate id -> its normalised answer ("" when it gave none);
    ``vote_ids`` are the candidates that gave the experts' majority-vote answer.
    """
    action = value["action"]
    candidate = value["candidate"]
    if candidate not in answers:  # the schema enum already says so; kept for lenient validators
        return f"candidate {candidate!r} is not one of {', '.join(answers)}"
    unknown = [c for c in value["rests_on"] if c not in answers]
    if unknown:
        return f"rests_on names unknown candidate(s) {', '.join(unknown)}"
    if action == "accept" and vote_ids and candidate not in vote_ids:
        return (f"action 'accept' keeps the majority-vote answer, given by {', '.join(vote_ids)}; "
                f"{candidate} gave another answer (use 'choose' to pick it)")
    if action == "accept" and not vote_ids:
        return "there is no majority-vote answer to accept; use 'choose', 'revise' or 'another_round'"
    if action == "choose" and not answers[candidate]:
        return f"candidate {candidate} has no usable answer to choose"
    if action == "revise" and not str(value["final_answer"]).strip():
        return "action 'revise' needs a final_answer"
    if action == "another_round" and not (value["next_evidence"] or value["next_entities"]):
        return "action 'another_round' needs next_evidence or next_entities"
    return None
