"""Answering benchmark items through the pipeline, one at a time or N at once.

Concurrency is for a department server: the items' model calls go to the server together (it
batches them), while this machine only loads images and runs LiteMedSAM (serialised per backend
in the segmentation service). With a local VQA model concurrency would only make runs contend
for one model, so it is refused (:func:`local_generators`).
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .formats import EvalItem
from .results import VQAResult
from .scoring import is_correct, score_item


def resolve_image(base: Path, name: str) -> Path:
    """``name`` under ``base`` (or SLAKE's ``imgs/`` / an ``images/`` folder there)."""
    p = Path(name)
    if p.is_absolute():
        return p
    for candidate in (base / p, base / "imgs" / p, base / "images" / p):
        if candidate.exists():
            return candidate
    return base / p


def first_volume(path: Path):
    """The first image volume at ``path``.

    Raises:
        ValueError: nothing readable there (the loader's reasons joined).
    """
    from app.study.loader import load

    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    result = load([path])
    if not result.volumes:
        raise ValueError("; ".join(str(e) for e in result.errors) or f"{path}: no readable image")
    return result.volumes[0]


def local_generators(profile: Any, mode: str) -> list[str]:
    """The generating roles a run of ``mode`` would run on this machine."""
    roles = ("entity", "vqa", "coordinator") if mode == "coord" else ("entity", "vqa")
    return [r for r in roles if (spec := profile.get(r)) is not None and spec.backend != "remote"]


@dataclass
class Answered:
    result: VQAResult
    record: Any  # the RunRecord, None when the item failed before a run existed


def answer_item(pipeline: Any, strategy: Any, item: EvalItem, images: Path,
                cancel: Callable[[], bool] | None = None) -> Answered:
    """One item through one run, scored. Item-level problems (unreadable image, a pipeline
    error) become the result's ``error``; WeightsMissingError propagates (nothing can run)."""
    from app.pipeline.coordinator import classify_change
    from app.pipeline.parsing import normalize_answer
    from app.pipeline.types import PipelineError

    r = VQAResult(item.index, item.image, item.question, item.answer, item.answer_type, key=item.key)
    norm = functools.partial(normalize_answer, question=item.question)  # yes/no mapping only for yes/no questions
    t0 = time.perf_counter()
    try:
        volume = first_volume(resolve_image(images, item.image))
        record = pipeline.run(volume, volume.num_slices // 2, item.prompt, strategy=strategy, cancel=cancel)
    except (ValueError, PipelineError) as exc:
        r.error, r.status = str(exc), "error"
        return Answered(r, None)
    finally:
        r.seconds = time.perf_counter() - t0
    r.prediction, r.status, r.run_id = record.final_answer, record.status, record.run_id
    r.correct = score_item(item, r.prediction, norm)
    decision = record.coordinator_decision
    if decision is not None:
        def scorer(text: str) -> bool:
            return score_item(item, text, norm)

        r.vote_prediction, r.vote_correct = decision.vote_answer, scorer(decision.vote_answer)
        r.coord_fallback = decision.source != "review"
        r.coord_change = classify_change(decision.vote_answer, decision.final_answer, scorer, norm)
        r.coord_proposed = decision.proposed_answer
    if record.errors:
        r.error = "; ".join(record.errors)
    return Answered(r, record)


def evaluate(items: Iterable[EvalItem], answer: Callable[[EvalItem, Callable[[], bool]], Answered],
             on_answered: Callable[[EvalItem, Answered], None], *, concurrency: int = 1) -> None:
    """Answer every item, ``concurrency`` at a time, calling ``on_answered`` on this thread as each
    finishes (so the progress log and run folders are written by one thread, in finishing order).

    Ctrl-C (KeyboardInterrupt) cancels the runs in flight at their next cancellation point,
    waits for them and re-raises; items not started stay unstarted. Cancelled runs are not
    reported (they resume from the start). An exception from ``answer`` stops everything too.
    """
    stop = threading.Event()
    if concurrency <= 1:
        for item in items:
            done = answer(item, stop.is_set)
            if done.result.status != "cancelled":
                on_answered(item, done)
        return
    pending = iter(items)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="eval") as pool:
        running: dict[Future, EvalItem] = {}

        def top_up() -> None:
            while len(running) < concurrency and not stop.is_set():
                item = next(pending, None)
                if item is None:
                    return
                running[pool.submit(answer, item, stop.is_set)] = item

        try:
            top_up()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    item = running.pop(fut)
                    done = fut.result()  # re-raises WeightsMissingError etc.
                    if done.result.status != "cancelled":
                        on_answered(item, done)
                top_up()
        except BaseException:
            stop.set()
            wait(running)
            for fut, item in running.items():  # runs that finished while we waited are kept
                if fut.exception() is None and fut.result().result.status != "cancelled":
                    with contextlib.suppress(Exception):  # already failing: the first error is the one to show
                        on_answered(item, fut.result())
            raise
