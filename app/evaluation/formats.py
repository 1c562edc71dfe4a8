"""The benchmarks' own files, read into one item type.

Each reader takes the file as the benchmark ships it and names the benchmark's own fields; an
item says how it is scored (``closed``: exact match after normalisation; otherwise the open
recall rule; ``options``: multiple choice; ``accepted``: every ground-truth string the benchmark
accepts). Nothing is guessed: a missing field is a :class:`FormatError` naming the file, the item
and the field.

- ``generic``: a JSON list of ``{"image", "question", "answer", "answer_type"}`` (CARE Viewer's
  own layout; ``image_name``/``img_name`` accepted for ``image``).
- ``vqa-rad``: VQA-RAD's JSON (``qid, image_name, question, answer, answer_type`` CLOSED/OPEN,
  ``question_type``, ``image_organ``…); images in ``--images`` (VQA-RAD Image Folder).
- ``slake``: SLAKE's JSON (``qid, img_name, question, answer, answer_type, q_lang, content_type,
  modality``…); English items only unless ``lang`` says otherwise; images in ``--images``
  (SLAKE's ``imgs/``).
- ``omnimedvqa``: OmniMedVQA's multiple choice (``question_id, question, gt_answer,
  option_A``…``option_D, image_path, question_type, modality_type``); ``image_path`` is relative
  to the OmniMedVQA folder given as ``--images``; the table groups by ``question_type``.
- ``vqa-med-2019``: ImageCLEF VQA-Med 2019's pipe-delimited text, ``image|question|answer`` or
  ``image|category|question|answer``; the image is ``<image>.jpg`` in ``--images``; ``#`` separates
  alternative answers and ``(...)`` marks optional words; the table groups by category.
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 512 * 1024 * 1024  # the largest benchmark JSON (OmniMedVQA's) is well under this
YES_NO = frozenset({"yes", "no"})
_OPTION_LETTERS = ("A", "B", "C", "D", "E", "F")


class BenchmarkFormat(str, Enum):
    GENERIC = "generic"
    VQA_RAD = "vqa-rad"
    SLAKE = "slake"
    OMNIMEDVQA = "omnimedvqa"
    VQA_MED_2019 = "vqa-med-2019"

    @property
    def title(self) -> str:
        return _TITLES[self]


_TITLES = {BenchmarkFormat.GENERIC: "dataset", BenchmarkFormat.VQA_RAD: "VQA-RAD", BenchmarkFormat.SLAKE: "SLAKE",
           BenchmarkFormat.OMNIMEDVQA: "OmniMedVQA", BenchmarkFormat.VQA_MED_2019: "VQA-Med-2019"}


class FormatError(ValueError):
    """The file is not in the format it was read as (one line: file, item, reason)."""


@dataclass(frozen=True)
class EvalItem:
    index: int  # position among the items read (after language filtering)
    key: str  # the benchmark's own id (qid, question_id) or the line number: what resuming matches on
    image: str  # as the file names it
    question: str  # as the file words it
    answer: str  # the ground truth as the file writes it
    answer_type: str  # the table's row: CLOSED/OPEN, OmniMedVQA's question_type, VQA-Med's category
    closed: bool  # scored by exact match after normalisation (else the open recall rule)
    options: tuple[tuple[str, str], ...] = ()  # multiple choice: (letter, text)
    accepted: tuple[str, ...] = ()  # every ground truth the benchmark accepts (default: answer)
    meta: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def prompt(self) -> str:
        """What the model is asked: the question, and for multiple choice the options in the
        benchmark's order (recorded as the run's question, so the audit shows exactly this)."""
        if not self.options:
            return self.question
        lines = [self.question, "Options:"] + [f"{letter}. {text}" for letter, text in self.options]
        return "\n".join(lines + ["Answer with the text of one option."])

    @property
    def truths(self) -> tuple[str, ...]:
        return self.accepted or (self.answer,)


def read_benchmark(path: Path, fmt: BenchmarkFormat | str, *, lang: str = "en") -> list[EvalItem]:
    """The items of ``path`` read as ``fmt``.

    Raises:
        OSError: the file cannot be read.
        FormatError: it is not in that format (or holds no item).
    """
    fmt = BenchmarkFormat(fmt)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise FormatError(f"{path}: {size / 1e6:.0f} MB is larger than any benchmark file ({MAX_FILE_BYTES >> 20} MiB)")
    if fmt is BenchmarkFormat.VQA_MED_2019:
        items = _vqa_med(path)
    else:
        rows = _json_rows(path)
        reader = {BenchmarkFormat.GENERIC: _generic, BenchmarkFormat.VQA_RAD: _vqa_rad,
                  BenchmarkFormat.SLAKE: _slake, BenchmarkFormat.OMNIMEDVQA: _omnimedvqa}[fmt]
        items = reader(path, rows, lang) if fmt is BenchmarkFormat.SLAKE else reader(path, rows)
    if not items:
        raise FormatError(f"{path}: no {fmt.title} items" + (f" in language {lang!r}" if fmt is BenchmarkFormat.SLAKE else ""))
    return [EvalItem(**{**_fields(it), "index": i}) for i, it in enumerate(items)]


def _fields(item: EvalItem) -> dict[str, Any]:
    return {k: getattr(item, k) for k in item.__dataclass_fields__}


# ------------------------------------------------------------------------------ JSON formats
def _json_rows(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if isinstance(data, dict):
        data = data.get("items") or data.get("data") or []
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise FormatError(f"{path}: expected a JSON list of objects")
    return data


def _need(path: Path, n: int, row: dict[str, Any], *names: str) -> str:
    """The first of ``names`` present in ``row`` as text (numbers are answers too: VQA-RAD has 2, 3…)."""
    for name in names:
        value = row.get(name)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    raise FormatError(f"{path}: item {n + 1} has no {' / '.join(names)}")


def _closed_open(path: Path, n: int, row: dict[str, Any]) -> str:
    kind = _need(path, n, row, "answer_type").upper()
    if kind not in ("CLOSED", "OPEN"):
        raise FormatError(f"{path}: item {n + 1} answer_type {kind!r} is neither CLOSED nor OPEN")
    return kind


def _generic(path: Path, rows: list[dict[str, Any]]) -> list[EvalItem]:
    items = []
    for n, row in enumerate(rows):
        kind = str(row.get("answer_type") or "OPEN").strip().upper()
        items.append(EvalItem(n, str(row.get("qid", n)), _need(path, n, row, "image", "image_name", "img_name"),
                              _need(path, n, row, "question"), _need(path, n, row, "answer"), kind,
                              closed=kind == "CLOSED"))
    return items


def _vqa_rad(path: Path, rows: list[dict[str, Any]]) -> list[EvalItem]:
    items = []
    for n, row in enumerate(rows):
        kind = _closed_open(path, n, row)
        meta = {k: str(row[k]) for k in ("question_type", "image_organ", "phrase_type") if k in row}
        items.append(EvalItem(n, _need(path, n, row, "qid"), _need(path, n, row, "image_name"),
                              _need(path, n, row, "question"), _need(path, n, row, "answer"), kind,
                              closed=kind == "CLOSED", meta=meta))
    return items


def _slake(path: Path, rows: list[dict[str, Any]], lang: str) -> list[EvalItem]:
    items = []
    for n, row in enumerate(rows):
        q_lang = str(row.get("q_lang", "en")).strip().lower()
        if lang != "all" and q_lang != lang:
            continue
        kind = _closed_open(path, n, row)
        meta = {k: str(row[k]) for k in ("q_lang", "content_type", "modality", "location") if k in row}
        items.append(EvalItem(n, _need(path, n, row, "qid"), _need(path, n, row, "img_name"),
                              _need(path, n, row, "question"), _need(path, n, row, "answer"), kind,
                              closed=kind == "CLOSED", meta=meta))
    return items


def _omnimedvqa(path: Path, rows: list[dict[str, Any]]) -> list[EvalItem]:
    items = []
    for n, row in enumerate(rows):
        options = tuple((letter, str(row[f"option_{letter}"]).strip()) for letter in _OPTION_LETTERS
                        if str(row.get(f"option_{letter}") or "").strip())
        if len(options) < 2:
            raise FormatError(f"{path}: item {n + 1} has fewer than two options (option_A, option_B, …)")
        truth = _need(path, n, row, "gt_answer")
        if truth not in (text for _, text in options):
            raise FormatError(f"{path}: item {n + 1} gt_answer {truth!r} is not one of its options")
        meta = {k: str(row[k]) for k in ("modality_type", "dataset") if k in row}
        items.append(EvalItem(n, _need(path, n, row, "question_id"), _need(path, n, row, "image_path"),
                              _need(path, n, row, "question"), truth, _need(path, n, row, "question_type"),
                              closed=True, options=options, meta=meta))
    return items


# ------------------------------------------------------------------------------ VQA-Med 2019
def _vqa_med(path: Path) -> list[EvalItem]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    items = []
    for n, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3:
            image, question, answer = parts
            category = ""
        elif len(parts) == 4:
            image, category, question, answer = parts
        else:
            raise FormatError(f"{path}: line {n + 1} has {len(parts)} '|' fields (expected image|question|answer "
                              "or image|category|question|answer)")
        if not (image and question and answer):
            raise FormatError(f"{path}: line {n + 1} has an empty field")
        accepted = expand_answer(answer)
        closed = set(accepted) <= YES_NO
        kind = category.lower() if category else ("CLOSED" if closed else "OPEN")
        name = image if Path(image).suffix else f"{image}.jpg"
        items.append(EvalItem(n, f"line{n + 1}", name, question, answer, kind, closed=closed, accepted=accepted))
    return items


_OPTIONAL = re.compile(r"\(([^()]*)\)")
MAX_VARIANTS = 64  # 2^6 optional groups: more is not an answer key, it is an attack


def expand_answer(answer: str) -> tuple[str, ...]:
    """VQA-Med's answer key: ``#`` separates alternatives, ``(words)`` are optional.
    "axial#transverse" -> ("axial", "transverse"); "ct (with contrast)" -> ("ct with contrast", "ct")."""
    out: list[str] = []
    for alternative in answer.split("#"):
        groups = _OPTIONAL.findall(alternative)
        if 2 ** len(groups) > MAX_VARIANTS:
            raise FormatError(f"answer {answer[:60]!r} has {len(groups)} optional groups (at most 6)")
        pieces = _OPTIONAL.split(alternative)  # text, group, text, group, ..., text
        for keep in itertools.product((True, False), repeat=len(groups)):
            words = [pieces[0]]
            for i, kept in enumerate(keep):
                words += [pieces[2 * i + 1] if kept else "", pieces[2 * i + 2]]
            variant = " ".join("".join(words).split())
            if variant and variant not in out:
                out.append(variant)
    return tuple(out)
