"""present/absent/none count as yes/no only for yes/no questions: the rules on real question
wordings (VQA-RAD / SLAKE style), the vote, and the engine's answer and aggregate stages on the
real CT recording which normalisation applied."""
from __future__ import annotations

import pytest

from app.pipeline.engine import CarePipeline
from app.pipeline.flow import vote
from app.pipeline.parsing import normalize_answer, question_kind
from app.pipeline.profiles import load_profile
from app.pipeline.record import Answer, EvidenceItem, RunRecord
from app.pipeline.types import EvidenceType, Generation
from app.pipeline.vocab import AnswerKind

YES_NO = [
    "Is there a nodule in the left lung?",
    "Are there any pleural effusions?",
    "Does the liver contain a lesion?",
    "Can a pneumothorax be seen?",
    "Was contrast given?",
    "Has the mass invaded the mediastinum?",
    "Is there evidence of a fracture or dislocation?",  # existence: "or" does not make it a choice
    "Any consolidation in the right lower lobe?",
    "Isn't the heart enlarged?",
    "  is the trachea midline ",  # lower case, no question mark
]
OPEN = [
    "What is present in the left lung?",
    "Which organ is abnormal?",
    "Where is the lesion?",
    "How many nodules are there?",
    "What abnormality is seen in the right lung?",
    "Is the nodule in the left or the right lung?",  # a choice: the answer names one
    "Is this a CT or an MRI?",
    "Can you tell me which lobe is affected?",
    "Describe the lesion.",
]


@pytest.mark.parametrize("q", YES_NO)
def test_yes_no_questions_map_presence_words(q):
    assert question_kind(q) is AnswerKind.YES_NO
    for answer, expected in [("Yes, there is.", "yes"), ("Present.", "yes"), ("positive", "yes"),
                             ("No evidence of it", "no"), ("absent", "no"), ("None.", "no"),
                             ("There is no nodule.", "no"), ("Not seen", "no"), ("NO", "no")]:
        assert normalize_answer(answer, question=q) == expected, (q, answer)


@pytest.mark.parametrize("q", OPEN)
def test_open_questions_keep_the_words(q):
    assert question_kind(q) is AnswerKind.OPEN
    assert normalize_answer("none", question=q) == "none"
    assert normalize_answer("Absent.", question=q) == "absent"
    assert normalize_answer("No nodule", question=q) == "no nodule"
    assert normalize_answer("Present", question=q) == "present"
    assert normalize_answer("The Left Lung.", question=q) == "left lung"
    assert normalize_answer("<answer>Two</answer>", question=q) == "2"


def test_without_a_question_the_old_mapping_stays():
    assert [normalize_answer(a) for a in ("none", "present", "No evidence of X", "The Left Lung.")] == \
        ["no", "yes", "no", "left lung"]


def _answers(*texts: str) -> list[Answer]:
    kinds = (EvidenceType.CROP, EvidenceType.MASK, EvidenceType.GLOBAL)
    return [Answer(evidence=k, call_index=i, answer=t) for i, (k, t) in enumerate(zip(kinds, texts))]


def test_vote_records_the_normalisation_and_does_not_merge_none_into_no():
    open_q, yes_no_q = "What is present in the left lung?", "Is anything present in the left lung?"
    r = vote(_answers("none", "no", "none"), question=open_q)
    assert (r.normalisation, r.counts, r.winner) == (AnswerKind.OPEN, {"none": 2, "no": 1}, "none")
    r = vote(_answers("none", "no", "absent"), question=yes_no_q)
    assert (r.normalisation, r.counts, r.winner) == (AnswerKind.YES_NO, {"no": 3}, "no")
    assert vote(_answers("none", "no", "absent")).normalisation is None  # not said, not recorded
    back = RunRecord.from_dict(RunRecord(question=open_q, vote=vote(_answers("none"), question=open_q)).to_dict())
    assert back.vote is not None and back.vote.normalisation is AnswerKind.OPEN


class _ScriptedVLM:
    """Replies per evidence pass; stands in for the VQA model so the engine's own parsing runs."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies

    def generate(self, requests, max_new_tokens=512):  # type: ignore[no-untyped-def]
        return [Generation(text=t, tokens=[t], token_logprobs=[-0.1], prompt_text=r.prompt)
                for r, t in zip(requests, self.replies)]


@pytest.mark.parametrize(("question", "winner", "kind"), [
    ("What is present in the left lung?", "none", AnswerKind.OPEN),
    ("Is there a mass in the left lung?", "no", AnswerKind.YES_NO),
])
def test_engine_answer_and_aggregate_use_the_question(ct_volume, ct_tumour, question, winner, kind, monkeypatch):
    pipeline = CarePipeline(load_profile("tiny"))
    replies = [f"<think>looked</think><answer>{a}</answer>" for a in ("None", "none", "Absent")]
    monkeypatch.setattr(pipeline, "backend", lambda role: _ScriptedVLM(replies))
    monkeypatch.setattr(pipeline, "note_model", lambda *a: None)
    ctx = pipeline.prepare(ct_volume, ct_tumour.slice_index, question)
    items = [EvidenceItem(type=t, images=[ctx.image_rgb]) for t in (EvidenceType.CROP, EvidenceType.MASK, EvidenceType.GLOBAL)]
    answers = pipeline.answer(ctx, items)
    expected = ["none", "none", "absent"] if kind is AnswerKind.OPEN else ["no", "no", "no"]
    assert [a.normalized for a in answers] == expected
    result = pipeline.aggregate(ctx)
    assert (result.winner, result.normalisation) == (winner, kind)
    assert ctx.record.vote is result and ctx.record.final_answer in ("None", "none", "Absent")
