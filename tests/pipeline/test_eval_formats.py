"""The benchmarks' own files (VQA-RAD, SLAKE, OmniMedVQA, VQA-Med-2019) read and scored as those
benchmarks do; no model needed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.evaluation.formats import BenchmarkFormat, FormatError, expand_answer, read_benchmark
from app.evaluation.progress import ProgressError, ProgressLog
from app.evaluation.results import VQAResult, accuracy_table, format_table
from app.evaluation.scoring import chosen_option, score_item
from app.pipeline.parsing import normalize_answer


def _json(path: Path, rows) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


VQA_RAD = [  # VQA-RAD's own field names; answers can be numbers
    {"qid": 1, "image_name": "synpic54610.jpg", "image_organ": "HEAD", "answer": "Yes", "answer_type": "CLOSED",
     "question_type": "PRES", "question": "Is there evidence of an aortic aneurysm?", "phrase_type": "freeform"},
    {"qid": 2, "image_name": "synpic29265.jpg", "image_organ": "CHEST", "answer": 2, "answer_type": "OPEN",
     "question_type": "COUNT", "question": "How many lesions are there?", "phrase_type": "para"},
    {"qid": 3, "image_name": "synpic42202.jpg", "image_organ": "CHEST", "answer": "right upper lobe",
     "answer_type": "OPEN ", "question_type": "POS", "question": "Where is the mass?", "phrase_type": "freeform"},
]
SLAKE = [
    {"img_id": 102, "img_name": "xmlab102/source.jpg", "question": "Which organ is abnormal?", "answer": "Lung",
     "q_lang": "en", "location": "Lung", "modality": "CT", "answer_type": "OPEN", "base_type": "vqa",
     "content_type": "Abnormality", "triple": ["vhead", "_", "_"], "qid": 11934},
    {"img_id": 102, "img_name": "xmlab102/source.jpg", "question": "哪个器官异常？", "answer": "肺",
     "q_lang": "zh", "location": "Lung", "modality": "CT", "answer_type": "OPEN", "base_type": "vqa",
     "content_type": "Abnormality", "triple": ["vhead", "_", "_"], "qid": 11935},
    {"img_id": 102, "img_name": "xmlab102/source.jpg", "question": "Is this a CT?", "answer": "Yes",
     "q_lang": "en", "location": "Abdomen", "modality": "CT", "answer_type": "CLOSED", "base_type": "vqa",
     "content_type": "Modality", "triple": ["vhead", "_", "_"], "qid": 11936},
]
OMNI = [
    {"dataset": "ACRIMA", "question_id": "ACRIMA_0000", "question_type": "Disease Diagnosis",
     "question": "What is the diagnosis?", "gt_answer": "Glaucoma", "image_path": "Images/ACRIMA/Im553_g_ACRIMA.png",
     "option_A": "Normal", "option_B": "Glaucoma", "option_C": "Cataract", "option_D": "Retinopathy",
     "modality_type": "Fundus Photography"},
    {"dataset": "MosMedData", "question_id": "MosMed_0001", "question_type": "Modality Recognition",
     "question": "What imaging modality is this?", "gt_answer": "CT", "image_path": "Images/MosMed/s1.png",
     "option_A": "MRI", "option_B": "CT", "modality_type": "CT"},
]
VQA_MED = """synpic54082|modality|what modality was used?|ct w/contrast (iv)
synpic41148|plane|in what plane was this image taken?|axial#transverse
synpic43984|abnormality|is this image abnormal?|yes
"""


def test_vqa_rad_reads_its_own_fields(tmp_path):
    items = read_benchmark(_json(tmp_path / "VQA_RAD.json", VQA_RAD), "vqa-rad")
    assert [(i.key, i.image, i.answer, i.answer_type, i.closed) for i in items] == [
        ("1", "synpic54610.jpg", "Yes", "CLOSED", True), ("2", "synpic29265.jpg", "2", "OPEN", False),
        ("3", "synpic42202.jpg", "right upper lobe", "OPEN", False)]
    assert items[1].meta["question_type"] == "COUNT" and items[0].prompt == VQA_RAD[0]["question"]


def test_slake_keeps_english_unless_asked(tmp_path):
    path = _json(tmp_path / "test.json", SLAKE)
    assert [i.key for i in read_benchmark(path, "slake")] == ["11934", "11936"]
    assert [i.key for i in read_benchmark(path, "slake", lang="zh")] == ["11935"]
    every = read_benchmark(path, "slake", lang="all")
    assert [i.index for i in every] == [0, 1, 2] and every[0].meta["content_type"] == "Abnormality"


def test_omnimedvqa_is_multiple_choice_grouped_by_question_type(tmp_path):
    items = read_benchmark(_json(tmp_path / "ACRIMA.json", OMNI), "omnimedvqa")
    assert [i.answer_type for i in items] == ["Disease Diagnosis", "Modality Recognition"]
    assert items[1].options == (("A", "MRI"), ("B", "CT"))
    assert items[0].prompt.splitlines() == ["What is the diagnosis?", "Options:", "A. Normal", "B. Glaucoma",
                                            "C. Cataract", "D. Retinopathy", "Answer with the text of one option."]
    n = normalize_answer
    for said, right in [("B", True), ("(B)", True), ("B.", True), ("Option B", True), ("B. Glaucoma", True),
                        ("glaucoma", True), ("Glaucoma.", True), ("A", False), ("B. Cataract", False),
                        ("glaucoma or cataract", False), ("", False), ("E", False)]:
        assert score_item(items[0], said, n) is right, said
    assert chosen_option("C", items[1], n) is None  # item 2 has no option C


def test_vqa_med_alternatives_and_optional_words(tmp_path):
    path = tmp_path / "VQAMed2019_Test_Questions_w_Ref_Answers.txt"
    path.write_text(VQA_MED, encoding="utf-8")
    items = read_benchmark(path, "vqa-med-2019")
    assert [(i.image, i.answer_type, i.closed) for i in items] == [
        ("synpic54082.jpg", "modality", False), ("synpic41148.jpg", "plane", False),
        ("synpic43984.jpg", "abnormality", True)]
    assert items[0].accepted == ("ct w/contrast iv", "ct w/contrast")
    n = normalize_answer
    assert score_item(items[1], "Transverse", n) and score_item(items[1], "axial", n)
    assert not score_item(items[1], "sagittal", n)
    assert score_item(items[0], "CT w/contrast", n)
    assert score_item(items[2], "Yes.", n) and not score_item(items[2], "no", n)
    three = tmp_path / "C1_Modality_train.txt"
    three.write_text("synpic1|is this an mri?|no\nsynpic2|what modality is shown?|mr - flair\n", encoding="utf-8")
    assert [(i.answer_type, i.closed) for i in read_benchmark(three, "vqa-med-2019")] == [
        ("CLOSED", True), ("OPEN", False)]


def test_expand_answer_bounds_the_variants():
    assert expand_answer("a (b) c (d)") == ("a b c d", "a b c", "a c d", "a c")
    with pytest.raises(FormatError, match="optional groups"):
        expand_answer(" ".join(["(x)"] * 7))


@pytest.mark.parametrize("fmt, content, reason", [
    ("vqa-rad", [{"qid": 1, "image_name": "a.jpg", "question": "q?", "answer_type": "CLOSED"}], "no answer"),
    ("vqa-rad", [{"qid": 1, "image_name": "a.jpg", "question": "q?", "answer": "y", "answer_type": "MAYBE"}],
     "neither CLOSED nor OPEN"),
    ("omnimedvqa", [{**OMNI[0], "gt_answer": "Tumour"}], "is not one of its options"),
    ("omnimedvqa", [{**OMNI[1], "option_B": ""}], "fewer than two options"),
    ("slake", {"not": "a list"}, "no SLAKE items"),
    ("vqa-rad", "{broken", "not JSON"),
    ("vqa-med-2019", "synpic1|only two\n", "line 1 has 2 '|' fields"),
    ("vqa-med-2019", "synpic1|modality||a\n", "line 1 has an empty field"),
])
def test_a_file_in_another_shape_is_named_with_the_reason(tmp_path, fmt, content, reason):
    path = tmp_path / "bench.data"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    with pytest.raises(FormatError, match=reason) as info:
        read_benchmark(path, fmt)
    assert str(path) in str(info.value) or "optional" in str(info.value)


def test_binary_junk_is_a_format_error(tmp_path):
    path = tmp_path / "junk.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FormatError, match="not UTF-8"):
        read_benchmark(path, BenchmarkFormat.VQA_RAD)


def test_table_puts_flow_beside_coord_and_counts_errors():
    results = [VQAResult(0, "a", "q", "yes", "CLOSED", correct=True, vote_correct=False),
               VQAResult(1, "a", "q", "no", "CLOSED", correct=False, vote_correct=False),
               VQAResult(2, "a", "q", "lung", "OPEN", correct=False, error="server down")]
    rows = accuracy_table(results)
    assert [(r.answer_type, r.n, r.correct, r.vote_correct, r.errors) for r in rows] == [
        ("CLOSED", 2, 1, 0, 0), ("OPEN", 1, 0, 0, 1), ("OVERALL", 3, 1, 0, 1)]
    text = format_table(rows, "VQA-RAD", coord=True)
    assert "CARE-Flow" in text and "CARE-Coord" in text
    closed = next(line for line in text.splitlines() if line.startswith("CLOSED"))
    assert closed.split() == ["CLOSED", "2", "0.00%", "50.00%", "0"]


def test_progress_log_resumes_only_its_own_evaluation(tmp_path):
    header = {"fingerprint": "abc", "items": 3}
    log = ProgressLog.open(tmp_path / "ev", header, resume=False)
    log.append("1", {"index": 0, "run_id": "r1", "error": ""})
    log.append("2", {"index": 1, "run_id": "", "error": "server down"})
    with pytest.raises(ProgressError, match="already holds an evaluation .2 item"):
        ProgressLog.open(tmp_path / "ev", header, resume=False)
    with pytest.raises(ProgressError, match="something else"):
        ProgressLog.open(tmp_path / "ev", {"fingerprint": "other"}, resume=True)
    with pytest.raises(ProgressError, match="no evaluation to resume"):
        ProgressLog.open(tmp_path / "none", header, resume=True)
    with open(log.path, "ab") as fh:  # a crash mid-line
        fh.write(b'{"key": "3", "resu')
    again = ProgressLog.open(tmp_path / "ev", header, resume=True)
    assert again.finished("1") and not again.finished("2") and not again.finished("3")
    assert log.path.read_bytes().endswith(b"}\n")  # only the cut-off line went
    lines = log.path.read_bytes().splitlines(keepends=True)
    log.path.write_bytes(lines[0] + b"garbage\n" + b"".join(lines[1:]))  # damage in the middle: left alone
    before = log.path.read_bytes()
    with pytest.raises(ProgressError, match="damaged"):
        ProgressLog.open(tmp_path / "ev", header, resume=True)
    assert log.path.read_bytes() == before


def test_the_paper_table_from_several_evaluations(tmp_path, capsys):
    from app.cli.main import main

    rad = {"benchmark": "VQA-RAD", "mode": "coord",
           "accuracy": {"CLOSED": {"n": 2, "accuracy": 1.0, "flow_vote_accuracy": 0.5},
                        "OVERALL": {"n": 2, "accuracy": 1.0, "flow_vote_accuracy": 0.5}},
           "coordinator_changes": {"changed_pct": 50.0, "corrections_pct": 50.0, "erroneous_pct": 0.0,
                                   "neutral_pct": 0.0, "fallbacks": 0}}
    slake = {"benchmark": "SLAKE", "mode": "flow", "accuracy": {"OPEN": {"n": 4, "accuracy": 0.25}}}
    (tmp_path / "rad").mkdir()
    _json(tmp_path / "rad" / "eval.json", rad)
    assert main(["eval", "--table", str(tmp_path / "rad"), str(_json(tmp_path / "slake.json", slake))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert next(x for x in lines if x.startswith("VQA-RAD")).split() == ["VQA-RAD", "CLOSED", "2", "50.00%", "100.00%"]
    assert next(x for x in lines if x.startswith("SLAKE")).split() == ["SLAKE", "OPEN", "4", "25.00%", "-"]
    assert any("VQA-RAD: coordinator changed 50.00%" in x for x in lines)
    assert main(["eval", "--table", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot read" in capsys.readouterr().err
