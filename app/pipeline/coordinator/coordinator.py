"""CARE-Coord: a coordinator that plans the evidence, re-grounds on uncertainty, and reviews
the experts' chains of thought against their answers.

One run (``CareCoordinator.run(stages, ctx)``, driven by app.pipeline.strategies.CoordStrategy),
every step appended to the record's coordinator timeline::

    entities -> masks                       (the pipeline's stage methods, as in CARE-Flow)
    PLAN      which evidence types to run   (structured reply, schema-validated)
    round 0   the planned evidence -> answers -> expert majority vote (record.vote)
    loop, at most ``max_extra_rounds`` extra rounds:
      RE-GROUND  opt-in (``reground``), a heuristic after MedVR, not part of CARE: the round's
                 answer-token uncertainty > threshold -> next entity / looser crop / other
                 evidence, automatically, before review
      REVIEW     per candidate: does the CoT support the answer, does it address the
                 question -> accept the vote / choose another candidate / revise (resting
                 on named candidates) / ask for another round
    DECISION  the final answer, and whether it changed the vote answer. With ``may_revise``
              off (a local coordinator's default) the review cannot replace the experts' vote
              answer: a different answer it proposes is recorded as a review finding instead.

The paper found planning alone adds nothing and the review is where the gain is; so a
failed *plan* still runs every evidence type (CARE-Flow), and a failed review keeps the
CARE-Flow vote. Any coordinator failure (timeout, HTTP error, malformed output twice,
refusal) ends the run with the CARE-Flow answer, the failure in the timeline and a warning.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from app.pipeline.evidence import DEFAULT_MARGIN
from app.pipeline.parsing import normalize_answer
from app.pipeline.record import (
    Answer,
    CoordDecision,
    CoordinatorEvent,
    CoordJudgement,
    CoordPlan,
    CoordReGround,
    CoordReview,
    CoordRound,
    CoordSettings,
    Entity,
    MaskRecord,
    ModelCall,
    StageTiming,
    utc_now,
)
from app.pipeline.types import EvidenceType, ModelInfo, Stage
from app.pipeline.vocab import CoordEventKind as K
from app.pipeline.vocab import DecisionSource, ReGroundAction, ReviewAction, Role

from . import prompts as P
from .base import CoordinatorBackend, CoordinatorFailure, StructuredReply, failure_text
from .schemas import (
    PlanReply,
    ReviewReply,
    plan_from_json,
    plan_schema,
    review_from_json,
    review_problem,
    review_schema,
)
from .uncertainty import (
    DEFAULT_THRESHOLD, REGROUND_LABEL, GroundingHistory, answer_uncertainty, choose_reground, round_uncertainty,
)

if TYPE_CHECKING:
    from app.pipeline.context import RunContext
    from app.pipeline.stages import Stages

DEFAULT_MAX_EXTRA_ROUNDS = 2
DEFAULT_MAX_NEW_TOKENS = 768


@dataclass
class CoordConfig:
    uncertainty_threshold: float = DEFAULT_THRESHOLD  # nats per answer token (see uncertainty.py)
    reground: bool = False  # entropy-guided re-grounding (heuristic after MedVR): opt-in
    may_revise: bool = False  # may the review replace the vote answer (the factory: on for remote)
    max_extra_rounds: int = DEFAULT_MAX_EXTRA_ROUNDS  # rounds after the planned one (re-ground or review)
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS  # per coordinator reply

    @classmethod
    def from_options(cls, options: dict[str, Any], **overrides: Any) -> "CoordConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in options.items() if k in known}
        values.update({k: v for k, v in overrides.items() if v is not None})
        cfg = cls(**values)
        cfg.uncertainty_threshold = float(cfg.uncertainty_threshold)
        cfg.max_extra_rounds = max(0, min(int(cfg.max_extra_rounds), DEFAULT_MAX_EXTRA_ROUNDS))
        cfg.max_new_tokens = max(16, int(cfg.max_new_tokens))
        cfg.reground, cfg.may_revise = bool(cfg.reground), bool(cfg.may_revise)
        return cfg


@dataclass
class _Round:
    number: int
    evidence: list[EvidenceType]
    focus: list[str]  # entities the evidence was built from
    margin: float | None
    answer_indices: list[int] = field(default_factory=list)
    event: CoordinatorEvent | None = None


class _Run:
    """Per-run state (the coordinator object itself is reused across questions)."""

    def __init__(self, stages: "Stages", ctx: "RunContext") -> None:
        self.stages, self.ctx, self.record = stages, ctx, ctx.record
        self.rounds: list[_Round] = []
        self.round_of: dict[int, int] = {}  # answer index -> round number
        self.entities_of: dict[int, list[str]] = {}  # answer index -> entities its evidence used
        self.history = GroundingHistory()
        self.extra = 0


class CareCoordinator:
    def __init__(self, backend: CoordinatorBackend, config: CoordConfig | None = None) -> None:
        self.backend = backend
        self.config = config or CoordConfig()

    @property
    def info(self) -> ModelInfo:
        return dataclasses.replace(self.backend.info, role="coordinator")

    # ------------------------------------------------------------------------------ run
    def run(self, stages: "Stages", ctx: "RunContext") -> None:
        run = _Run(stages, ctx)
        progress = ctx.progress
        ctx.progress = _monotone(progress)  # extra rounds re-enter the ANSWER span: never go backwards
        try:
            self._run(run)
        finally:
            ctx.progress = progress
            try:  # provenance after the run: a local model has its revision and hash only once loaded
                run.record.models["coordinator"] = self.info
            except Exception:  # noqa: BLE001 - provenance must never fail a finished run
                pass

    def _run(self, run: _Run) -> None:
        stages, ctx = run.stages, run.ctx
        cfg = self.config
        run.record.coordinator_settings = CoordSettings(cfg.may_revise, cfg.reground, cfg.uncertainty_threshold,
                                                        cfg.max_extra_rounds)
        ctx.check_cancel()
        entities = stages.propose_entities(ctx)
        ctx.check_cancel()
        stages.segment(ctx, entities)
        ctx.check_cancel()

        failure: CoordinatorFailure | None = None
        try:
            plan = self._plan(run)
            evidence, reason = plan.evidence, "plan"
        except CoordinatorFailure as exc:
            failure = exc
            evidence, reason = list(stages.evidence_types), "the coordinator could not plan: CARE-Flow evidence"
        current = self._round(run, evidence, [], None, reason)
        stages.aggregate(ctx, self._answers(run, current))
        if failure is not None:
            self._fallback(run, failure)
            return

        while True:
            ctx.check_cancel()
            if cfg.reground and run.extra < cfg.max_extra_rounds:
                regrounded = self._maybe_reground(run, current)
                if regrounded is not None:
                    current = regrounded
                    continue
            try:
                review = self._review(run, rounds_left=cfg.max_extra_rounds - run.extra)
            except CoordinatorFailure as exc:
                self._fallback(run, exc)
                return
            if review.action is ReviewAction.ANOTHER_ROUND and run.extra < cfg.max_extra_rounds:
                evidence = review.next_evidence or current.evidence
                ask = ", ".join([*(e.value for e in review.next_evidence), *review.next_entities])
                current = self._round(run, evidence, review.next_entities, None,
                                      f"the review asked for another round: {ask}")
                continue
            self._decide(run, review)
            return

    # ------------------------------------------------------------------------------ steps
    def _plan(self, run: _Run) -> PlanReply:
        ctx = run.ctx
        ctx.report(Stage.EVIDENCE, "coordinator: planning the evidence")
        images, withheld = self._images(ctx)
        schema = plan_schema()
        prompt = P.plan_prompt(self._context(run, bool(images)), schema)
        reply, call_index = self._ask(run, "plan", prompt, images, schema, None)
        plan = plan_from_json(reply.value)
        detail = {"evidence": ", ".join(e.value for e in plan.evidence), "rationale": plan.rationale,
                  "prompts": P.COORD_PROMPT_VERSION, "tries": reply.tries}
        if withheld:
            detail["images"] = f"withheld: {withheld}"
        self._event(run, K.PLAN, detail, call_index=call_index,
                    plan=CoordPlan(list(plan.evidence), plan.rationale, bool(reply.images_sent)))
        return plan

    def _round(self, run: _Run, evidence: Sequence[EvidenceType], focus: Sequence[str], margin: float | None,
               reason: str) -> _Round:
        stages, ctx, record = run.stages, run.ctx, run.record
        number = len(run.rounds)
        if number > 0:
            run.extra += 1
        masks = self._focus_masks(run, focus) if focus else None
        items = stages.build_evidence(ctx, list(evidence), masks=masks, margin=margin)
        ctx.check_cancel()
        first = len(record.answers)
        answers = stages.answer(ctx, items)
        indices = list(range(first, first + len(answers)))
        used: list[str] = []
        for i, item in zip(indices, items):
            run.round_of[i] = number
            run.entities_of[i] = list(item.entities)
            used.extend(item.entities)
        used = list(dict.fromkeys(used))
        rnd = _Round(number, list(evidence), used, margin, indices)
        run.rounds.append(rnd)
        h = run.history
        h.evidence_used.update(evidence)
        h.focused.append(tuple(used))
        if EvidenceType.CROP in evidence:
            h.margins.append(margin if margin is not None else DEFAULT_MARGIN)
        detail: dict[str, Any] = {"round": number, "evidence": ", ".join(e.value for e in evidence),
                                  "answers": ", ".join(f"A{i + 1}={record.answers[i].answer!r}" for i in indices),
                                  "reason": reason}
        if used:
            detail["entities"] = ", ".join(used)
        if margin is not None:
            detail["crop_margin"] = margin
        rnd.event = self._event(run, K.ROUND, detail, round=CoordRound(number, list(evidence), used, margin,
                                                                      indices, reason))
        return rnd

    def _focus_masks(self, run: _Run, names: Sequence[str]) -> list[MaskRecord] | None:
        """Accepted masks of ``names``; entities not segmented yet are segmented first (text
        route). None (= every accepted mask) when none of them has an accepted mask."""
        record = run.record
        wanted = {n.strip().lower() for n in names if n.strip()}
        known = {m.entity.strip().lower() for m in record.masks}
        new = [Entity(n.strip(), None, "coordinator") for n in dict.fromkeys(names) if n.strip().lower() not in known]
        if new:
            run.stages.segment(run.ctx, new)
        masks = [m for m in record.masks if m.accepted and m.entity.strip().lower() in wanted]
        if not masks:
            record.warn(f"CARE-Coord: no accepted mask for {', '.join(names)}; the round used every accepted mask")
            return None
        return masks

    def _maybe_reground(self, run: _Run, current: _Round) -> _Round | None:
        cfg, record = self.config, run.record
        answers = self._answers(run, current)
        ru = round_uncertainty(answers)
        ids = [f"A{current.answer_indices[i] + 1}" for i in ru.indices]
        shown = "no usable answer" if math.isinf(ru.value) else f"{ru.value:.3f}"
        if current.event is not None:
            current.event.detail["uncertainty"] = shown
        if ru.value <= cfg.uncertainty_threshold:
            return None
        action = choose_reground(current.evidence, current.focus, record.masks, run.history)
        why = (f"answer-token uncertainty {shown} > threshold {cfg.uncertainty_threshold:g}"
               + (f" (over {', '.join(ids)})" if ids else ""))
        value = None if math.isinf(ru.value) else ru.value
        self._event(run, K.REGROUND, {"label": REGROUND_LABEL, "trigger": why, "action": action.action,
                                      "reason": action.reason},
                    reground=CoordReGround(current.number, value, cfg.uncertainty_threshold, ids, action.action,
                                           list(action.evidence), list(action.entities), action.crop_margin,
                                           f"{why}; {action.reason}"))
        if action.action is ReGroundAction.NONE:
            return None
        return self._round(run, action.evidence, action.entities, action.crop_margin,
                           f"re-ground ({action.action}): {why}")

    def _candidates(self, run: _Run) -> list[P.Candidate]:
        return [
            P.Candidate(f"A{i + 1}", i, run.round_of.get(i, 0), a, run.entities_of.get(i, []), answer_uncertainty(a))
            for i, a in enumerate(run.record.answers)
        ]

    def _review(self, run: _Run, rounds_left: int) -> ReviewReply:
        ctx, record = run.ctx, run.record
        ctx.report(Stage.REVIEW, "coordinator: reviewing the answers")
        cands = self._candidates(run)
        vote = record.vote
        winner = vote.winner if vote is not None else ""
        norm = {c.id: c.answer.normalized for c in cands}
        vote_ids = [c.id for c in cands if winner and c.answer.normalized == winner]
        schema = review_schema([c.id for c in cands], rounds_left > 0)
        images, withheld = self._images(ctx)
        prompt = P.review_prompt(self._context(run, bool(images)), cands, vote.winner_raw if vote else "",
                                 vote.detail if vote else "", rounds_left, schema)
        reply, call_index = self._ask(run, "review", prompt, images, schema,
                                      lambda v: review_problem(v, norm, vote_ids))
        review = review_from_json(reply.value)
        number = run.rounds[-1].number
        detail: dict[str, Any] = {
            "round": number, "action": review.action, "candidate": review.candidate,
            "rests_on": ", ".join(review.rests_on), "rationale": review.rationale, "tries": reply.tries,
            "verdicts": "; ".join(
                f"{j.candidate}: CoT {'supports' if j.cot_supports_answer else 'does not support'} the answer, "
                f"{'addresses' if j.addresses_question else 'does not address'} the question"
                for j in review.judgements),
        }
        if review.action is ReviewAction.REVISE:
            detail["final_answer"] = review.final_answer
        if review.action is ReviewAction.ANOTHER_ROUND:
            detail["next"] = ", ".join([*(e.value for e in review.next_evidence), *review.next_entities])
        if withheld:
            detail["images"] = f"withheld: {withheld}"
        self._event(run, K.REVIEW, detail, call_index=call_index, review=CoordReview(
            number,
            [CoordJudgement(j.candidate, j.cot_supports_answer, j.addresses_question, j.note) for j in review.judgements],
            review.action, review.candidate, review.final_answer, list(review.rests_on), review.rationale,
            list(review.next_evidence), list(review.next_entities), bool(reply.images_sent),
        ))
        return review

    def _decide(self, run: _Run, review: ReviewReply) -> None:
        record = run.record
        vote = record.vote
        vote_raw = vote.winner_raw if vote is not None else ""
        vote_norm = vote.winner if vote is not None else ""
        if review.action is ReviewAction.ACCEPT:
            final = vote_raw
        elif review.action is ReviewAction.CHOOSE:
            final = record.answers[int(review.candidate[1:]) - 1].answer
        else:  # "revise", or "another_round" when no round is left (the schema forbids it then)
            final = review.final_answer or vote_raw
        changed = normalize_answer(final, question=run.ctx.question) != vote_norm
        proposed = ""
        if changed and not self.config.may_revise:
            # Review without revision: the experts' answer stands, the disagreement is kept.
            proposed, final, changed = final, vote_raw, False
            self._note_finding(run, review, proposed, vote_raw)
        decision = CoordDecision(final, DecisionSource.REVIEW, review.candidate, list(review.rests_on), vote_raw, changed,
                                 run.extra, proposed_answer=proposed)
        self._finish(run, decision)

    def _note_finding(self, run: _Run, review: ReviewReply, proposed: str, vote_raw: str) -> None:
        """The review proposed another answer while revising is off: a finding on the review
        event (the record and the audit show it), never silently dropped."""
        how = f"chose {review.candidate}" if review.action is ReviewAction.CHOOSE else f"{review.action}"
        finding = (f"the coordinator disagrees with the experts: it proposed {proposed!r} ({how}, resting on "
                   f"{', '.join(review.rests_on) or '-'}); revising is off (may_revise = false), so the "
                   f"experts' vote answer {vote_raw!r} stands")
        for ev in reversed(run.record.coordinator):
            if ev.review is not None:
                ev.review.finding = finding
                ev.detail["finding"] = finding
                break

    def _fallback(self, run: _Run, failure: CoordinatorFailure) -> None:
        """The coordinator gave no usable reply: the CARE-Flow answer (every evidence type of
        the pipeline on the unfocused masks, majority vote) is the answer."""
        stages, ctx, record = run.stages, run.ctx, run.record
        round0 = run.rounds[0]
        missing = [e for e in stages.evidence_types if e not in round0.evidence]
        if missing:
            ctx.check_cancel()
            items = stages.build_evidence(ctx, missing)
            first = len(record.answers)
            answers = stages.answer(ctx, items)
            added = list(range(first, first + len(answers)))
            for i, item in zip(added, items):
                run.round_of[i], run.entities_of[i] = 0, list(item.entities)
            round0.answer_indices.extend(added)
            round0.evidence.extend(missing)
            self._event(run, K.ROUND, {"round": 0, "evidence": ", ".join(e.value for e in missing),
                                       "reason": "completing the CARE-Flow evidence after the coordinator failed"},
                        round=CoordRound(0, list(missing), [], None, added,
                                         "completing the CARE-Flow evidence after the coordinator failed"))
        vote = stages.aggregate(ctx, self._answers(run, round0))
        message = f"{failure.kind}: {failure.message}"
        record.warn(f"CARE-Coord: the coordinator failed ({failure.message}); the answer is the CARE-Flow majority vote")
        self._finish(run, CoordDecision(vote.winner_raw, DecisionSource.VOTE, "", [], vote.winner_raw, False, run.extra, message))

    def _finish(self, run: _Run, decision: CoordDecision) -> None:
        record = run.record
        record.final_answer = decision.final_answer
        record.coordinator_decision = decision
        detail: dict[str, Any] = {"final_answer": decision.final_answer, "source": decision.source,
                                  "vote_answer": decision.vote_answer, "changed_vote": decision.changed_vote,
                                  "extra_rounds": decision.extra_rounds}
        if decision.rests_on:
            detail["rests_on"] = ", ".join(decision.rests_on)
        if decision.failure:
            detail["failure"] = decision.failure
        if decision.proposed_answer:
            detail["proposed_answer"] = decision.proposed_answer
            detail["may_revise"] = False
        self._event(run, K.DECISION, detail, decision=decision)
        shown = " ".join(decision.final_answer.split())[:60]
        run.ctx.report(Stage.REVIEW, f"answer: {shown or '(none)'}", 1.0)

    # ------------------------------------------------------------------------------ helpers
    def _answers(self, run: _Run, rnd: _Round) -> list[Answer]:
        return [run.record.answers[i] for i in rnd.answer_indices]

    def _images(self, ctx: "RunContext") -> tuple[list[Any], str]:
        allowed, why = self.backend.images_allowed()
        return ([ctx.image_rgb], "") if allowed else ([], why)

    def _context(self, run: _Run, with_image: bool) -> str:
        ctx, record = run.ctx, run.record
        return P.context_block(ctx.question, record.input.modality, record.input.image_size,
                               [e.name for e in record.entities.final], record.masks, with_image)

    def _ask(self, run: _Run, what: str, prompt: str, images: list[Any], schema: dict[str, Any],
             check: Any) -> tuple[StructuredReply, int]:
        """One structured call, recorded as a ModelCall whether it succeeds or not."""
        record = run.record
        started, t0 = utc_now(), time.perf_counter()
        try:
            reply = self.backend.ask(P.SYSTEM_PROMPT, prompt, images, schema, f"care_{what}", check,
                                     self.config.max_new_tokens)
        except CoordinatorFailure as exc:
            seconds = time.perf_counter() - t0
            record.timings.append(StageTiming(Stage.REVIEW, seconds, started, seconds))
            record.calls.append(ModelCall(
                stage=Stage.REVIEW, role=Role.COORDINATOR, prompt=prompt, system=P.SYSTEM_PROMPT,
                image_files=["slice.png"] if images and exc.kind != "consent_required" else [],
                raw_output=failure_text(exc.attempts), seconds=seconds,
            ))
            self._event(run, K.FAILURE, {"step": what, "kind": exc.kind, "error": exc.message,
                                         "replies": len(exc.attempts)},
                        call_index=len(record.calls) - 1, error=exc.message)
            raise
        seconds = time.perf_counter() - t0
        record.timings.append(StageTiming(Stage.REVIEW, seconds, started, seconds))
        last = reply.attempts[-1]
        record.calls.append(ModelCall(
            stage=Stage.REVIEW, role=Role.COORDINATOR, prompt=prompt, system=P.SYSTEM_PROMPT,
            prompt_text=reply.prompt_text, image_files=["slice.png"] if reply.images_sent else [],
            raw_output=failure_text(reply.attempts), tokens=list(last.tokens),
            token_logprobs=[float(x) for x in last.token_logprobs], seconds=seconds,
        ))
        return reply, len(record.calls) - 1

    def _event(self, run: _Run, kind: K, detail: dict[str, Any], **typed: Any) -> CoordinatorEvent:
        event = CoordinatorEvent(utc_now(), kind, detail, **typed)
        run.record.coordinator.append(event)
        return event


def _monotone(progress: Any) -> Any:
    if progress is None:
        return None
    best = [0.0]

    def report(stage: Stage, message: str, fraction: float) -> None:
        best[0] = max(best[0], fraction)
        progress(stage, message, best[0])

    return report
