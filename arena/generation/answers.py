"""Pre-generated answers: enqueue what is missing, generate idempotently, record failures.

State machine of an Answer: pending → running → done | failed, with compare-and-set updates so
that a redelivered or duplicated task never creates a second row nor overwrites a finished one.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from arena import dispatch
from arena.generation import backend
from arena.generation.backend import (
    BackendUnavailable,
    ChatMessage,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
)
from arena.generation.progress import (
    generation_progress_notify_after_commit,
)
from arena.models import Answer, Contestant, Question, QuestionSet

logger = logging.getLogger(__name__)


def identity_terms() -> list[str]:
    """Every registered contestant's names, for self-identification detection."""
    terms: set[str] = set()
    for name, slug, family, aliases in Contestant.objects.values_list(
        "name", "slug", "family", "aliases"
    ):
        terms.update(t for t in (name, slug, family) if t)
        if isinstance(aliases, list):
            terms.update(str(a) for a in aliases if a)
    return sorted(terms)


def question_names_record(*, question: Question, terms: list[str]) -> None:
    """Store which identity terms the question's own turns name, and whether one asks the
    model who it is: the other half of the taint test (`battles.rules.battle_taint`)."""
    turns = [question.text, *(str(t) for t in question.turns)]
    names = backend.named_terms("\n\n".join(turns), terms)
    asks = any(backend.asks_identity(t) for t in turns)
    if names != question.named_terms or asks != question.asks_identity:
        Question.objects.filter(pk=question.pk).update(named_terms=names, asks_identity=asks)
        question.named_terms, question.asks_identity = names, asks


def answer_names(
    texts: Iterable[str], terms: list[str], reports: Iterable[object] = ()
) -> list[str]:
    """The identity terms that the shown turns of an answer name, code included, and those its
    strip reports say were redacted from them: a model that named itself named itself, even
    where the evaluator reads "an AI assistant" instead (FastChat drops such battles too)."""
    redacted = [
        str(term)
        for report in reports
        if isinstance(report, dict)
        for mention in report.get("identity_mentions") or ()
        if isinstance(mention, dict)
        for term in mention.get("terms") or ()
    ]
    return backend.named_terms("\n\n".join([*texts, *redacted]), terms)


def answer_reports(answer: Answer) -> list[object]:
    """The strip report of each shown turn of an answer, first turn first."""
    return [answer.strip_report, *(f.get("report") for f in answer.followups)]


@dataclass(frozen=True)
class Enqueued:
    answer_ids: list[int]
    per_contestant: dict[str, int]


@transaction.atomic
def answers_enqueue_missing(
    *,
    question_set: QuestionSet,
    contestants: Iterable[Contestant] | None = None,
    retry_failed: bool = False,
) -> Enqueued:
    """Create pending answers for every question × contestant that has none for the
    contestant's current config, and queue one task each on the contestant's queue.
    Pending answers are queued again (their earlier message may be lost); finished ones never.
    """
    chosen = list(
        contestants if contestants is not None else Contestant.objects.filter(active=True)
    )
    questions = list(question_set.questions.only("id"))
    ids: list[int] = []
    per: dict[str, int] = {}
    for contestant in chosen:
        config = contestant.config_hash
        Answer.objects.bulk_create(
            [Answer(question=q, contestant=contestant, config_hash=config) for q in questions],
            ignore_conflicts=True,
            batch_size=1000,
        )
        statuses = [Answer.Status.PENDING] + ([Answer.Status.FAILED] if retry_failed else [])
        todo = Answer.objects.filter(
            question__question_set=question_set,
            contestant=contestant,
            config_hash=config,
            status__in=statuses,
        )
        if retry_failed:
            todo.filter(status=Answer.Status.FAILED).update(
                status=Answer.Status.PENDING, failure_reason="", attempts=0
            )
        todo_ids = list(todo.values_list("id", flat=True))
        per[contestant.slug] = len(todo_ids)
        ids.extend(todo_ids)
        dispatch.answers_generate_after_commit(answer_ids=todo_ids, queue=contestant.queue_name)
    generation_progress_notify_after_commit(question_set_id=question_set.pk)
    return Enqueued(answer_ids=ids, per_contestant=per)


@transaction.atomic
def answers_retry(*, answer_ids: Iterable[int]) -> int:
    """Put failed answers back to pending and queue them again."""
    failed = Answer.objects.filter(pk__in=list(answer_ids), status=Answer.Status.FAILED)
    rows = list(failed.values_list("id", "contestant__slug", "contestant__queue"))
    failed.update(status=Answer.Status.PENDING, failure_reason="", attempts=0)
    for answer_id, slug, queue in rows:
        dispatch.answers_generate_after_commit(answer_ids=[answer_id], queue=queue or f"gen.{slug}")
    return len(rows)


class AnswerBusy(Exception):
    """Another worker holds a fresh claim on this answer; try again once it may be stale."""


def answer_claim(*, answer_id: int) -> bool:
    """Compare-and-set pending → running. A running answer whose claim is older than the
    hard time limit belongs to a dead worker and may be claimed again (redelivery).

    Returns False when the answer is finished (or gone): nothing to do. Raises AnswerBusy
    when another claim is still fresh, so the caller retries instead of dropping the task.
    """
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.ARENA_GENERATION_HARD_LIMIT)
    claimed = (
        Answer.objects.filter(pk=answer_id)
        .filter(
            Q(status=Answer.Status.PENDING) | Q(status=Answer.Status.RUNNING, started_at__lt=stale)
        )
        .update(status=Answer.Status.RUNNING, started_at=now, attempts=F("attempts") + 1)
    )
    if claimed == 1:
        return True
    if Answer.objects.filter(pk=answer_id, status=Answer.Status.RUNNING).exists():
        raise AnswerBusy(answer_id)
    return False


def answer_release(*, answer_id: int) -> None:
    """Give a claimed answer back (a transient error: the task will retry)."""
    Answer.objects.filter(pk=answer_id, status=Answer.Status.RUNNING).update(
        status=Answer.Status.PENDING
    )


def answer_fail(*, answer_id: int, reason: str) -> None:
    """Record a permanent failure; a finished answer is never touched."""
    updated = Answer.objects.filter(
        pk=answer_id, status__in=[Answer.Status.PENDING, Answer.Status.RUNNING]
    ).update(
        status=Answer.Status.FAILED,
        failure_reason=reason[:2000] or "unknown error",
        finished_at=timezone.now(),
    )
    if updated:
        _notify_for(answer_id)


def _notify_for(answer_id: int) -> None:
    question_set_id = (
        Answer.objects.filter(pk=answer_id)
        .values_list("question__question_set_id", flat=True)
        .first()
    )
    if question_set_id is not None:
        generation_progress_notify_after_commit(question_set_id=question_set_id)


def _messages_for(question: Question) -> list[list[ChatMessage]]:
    """The user turns of a question: the prompt, then each follow-up turn."""
    return [[ChatMessage("user", question.text)]] + [
        [ChatMessage("user", str(turn))] for turn in question.turns
    ]


def answer_generate(*, answer_id: int) -> str:
    """Generate one answer, idempotently. Returns what happened: "done", "skipped" (someone
    else owns it or it is finished) or "failed". Raises BackendUnavailable for a retry."""
    if not answer_claim(answer_id=answer_id):
        return "skipped"
    answer = Answer.objects.select_related("question", "contestant").get(pk=answer_id)
    contestant, question = answer.contestant, answer.question
    if answer.config_hash != contestant.config_hash:
        answer_fail(answer_id=answer_id, reason="the contestant's settings changed; re-queue it")
        return "failed"
    sampling = backend.contestant_sampling(contestant)
    # Generation takes seconds to minutes: give the connection back to the pool meanwhile,
    # so a worker with many task threads does not need a connection per thread.
    connection.close()
    history: list[ChatMessage] = []
    results: list[GenerationResult] = []
    started = time.monotonic()
    try:
        for turn in _messages_for(question):
            history.extend(turn)
            result = backend.generate(
                GenerationRequest(
                    request_id=f"answer-{answer_id}-{len(results)}-{answer.attempts}",
                    messages=tuple(history),
                    sampling=sampling,
                    system_prompt=contestant.system_prompt,
                ),
                contestant,
                timeout=float(settings.ARENA_GENERATION_SOFT_LIMIT),
            )
            results.append(result)
            history.append(ChatMessage("assistant", result.text))
    except BackendUnavailable:
        answer_release(answer_id=answer_id)
        raise
    except GenerationFailed as exc:
        answer_fail(answer_id=answer_id, reason=f"generation failed: {exc}")
        return "failed"
    latency_ms = int((time.monotonic() - started) * 1000)
    return answer_store(answer_id=answer_id, results=results, latency_ms=latency_ms)


@transaction.atomic
def answer_store(*, answer_id: int, results: list[GenerationResult], latency_ms: int) -> str:
    """Strip and store a finished generation; only a running answer is written."""
    answer = Answer.objects.select_related("contestant", "question").get(pk=answer_id)
    terms = identity_terms()
    stripped = [
        backend.strip_for_contestant(
            r.text, contestant=answer.contestant, special_tokens=r.special_tokens, terms=terms
        )
        for r in results
    ]
    first, rest = stripped[0], stripped[1:]
    flagged = any(bool(s.report.get("identity_mentions")) for s in stripped)
    updated = Answer.objects.filter(pk=answer_id, status=Answer.Status.RUNNING).update(
        status=Answer.Status.DONE,
        raw_text=results[0].text,
        shown_text=first.shown,
        strip_report=first.report,
        followups=[
            {"raw": r.text, "shown": s.shown, "report": s.report}
            for r, s in zip(results[1:], rest, strict=True)
        ],
        flagged=flagged,
        named_terms=answer_names([s.shown for s in stripped], terms, [s.report for s in stripped]),
        prompt_tokens=sum(r.prompt_tokens for r in results),
        completion_tokens=sum(r.completion_tokens for r in results),
        latency_ms=latency_ms,
        finished_at=timezone.now(),
        failure_reason="",
    )
    if not updated:
        logger.info("answer %s was finished elsewhere; result dropped", answer_id)
        return "skipped"
    question_names_record(question=answer.question, terms=terms)
    _notify_for(answer_id)
    return "done"


@dataclass(frozen=True)
class NamesRecorded:
    answers: int  # answers whose recorded names changed
    questions: int  # questions whose recorded names changed


def names_record_all(*, question_sets: Iterable[QuestionSet] | None = None) -> NamesRecorded:
    """Record again the identity terms of every finished answer and its question (of these
    sets, or all): for answers stored before names were recorded, or after contestants were
    registered whose names earlier answers already used."""
    terms = identity_terms()
    answers = Answer.objects.filter(status=Answer.Status.DONE).select_related("question")
    if question_sets is not None:
        answers = answers.filter(question__question_set__in=list(question_sets))
    changed_answers = 0
    seen: dict[int, Question] = {}
    for answer in answers.iterator(chunk_size=500):
        shown = [answer.shown_text, *(str(f.get("shown", "")) for f in answer.followups)]
        names = answer_names(shown, terms, answer_reports(answer))
        if names != answer.named_terms:
            Answer.objects.filter(pk=answer.pk).update(named_terms=names)
            changed_answers += 1
        seen.setdefault(answer.question_id, answer.question)
    changed_questions = 0
    for question in seen.values():
        before = (list(question.named_terms), question.asks_identity)
        question_names_record(question=question, terms=terms)
        changed_questions += before != (question.named_terms, question.asks_identity)
    return NamesRecorded(answers=changed_answers, questions=changed_questions)
