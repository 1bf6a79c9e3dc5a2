"""Celery tasks: thin adapters over the aggregates. Arguments are ids, never model objects."""

from __future__ import annotations

from collections.abc import Callable

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from arena.generation import answers, live
from arena.generation.backend import BackendUnavailable


def _generation_work(
    task: Task,  # type: ignore[type-arg]
    work: Callable[[], str],
    *,
    busy: type[Exception],
    fail: Callable[[str], None],
) -> str:
    """The retry policy of work on a generation queue (answers, judgments): ``busy`` (another
    worker holds the claim, or died holding it) looks again once the claim is stale, not
    counted against max_retries; a database briefly out of reach retries with backoff; an
    unreachable backend retries with backoff, then ``fail``s the row with the reason."""
    try:
        return work()
    except busy as exc:
        task.request.retries -= 1
        raise task.retry(exc=exc, countdown=settings.ARENA_GENERATION_HARD_LIMIT + 1) from exc
    except (OperationalError, InterfaceError) as exc:
        countdown = min(300.0, settings.ARENA_RETRY_BACKOFF_SECONDS * 2**task.request.retries)
        raise task.retry(
            exc=exc, countdown=countdown, max_retries=4 * settings.ARENA_GENERATION_MAX_RETRIES
        ) from exc
    except BackendUnavailable as exc:
        if task.request.retries >= settings.ARENA_GENERATION_MAX_RETRIES:
            fail(f"backend unavailable after {task.request.retries + 1} attempts: {exc}")
            return "failed"
        countdown = min(300.0, settings.ARENA_RETRY_BACKOFF_SECONDS * 2**task.request.retries)
        raise task.retry(exc=exc, countdown=countdown) from exc


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=settings.ARENA_GENERATION_MAX_RETRIES,
    soft_time_limit=settings.ARENA_GENERATION_SOFT_LIMIT,
    time_limit=settings.ARENA_GENERATION_HARD_LIMIT,
)
def generate_answer(self: Task, *, answer_id: int) -> str:  # type: ignore[type-arg]
    """Generate one pre-generated answer; safe to run twice (the service is idempotent).

    The threads pool that generation workers use does not enforce Celery's time limits, so
    the service bounds each request itself (ARENA_GENERATION_SOFT_LIMIT).
    """
    return _generation_work(
        self,
        lambda: answers.answer_generate(answer_id=answer_id),
        busy=answers.AnswerBusy,
        fail=lambda reason: answers.answer_fail(answer_id=answer_id, reason=reason),
    )


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=settings.ARENA_GENERATION_MAX_RETRIES,
)
def generate_live_turn(self: Task, *, battle_id: int, side: str, turn: int) -> str:  # type: ignore[type-arg]
    """One side's reply to one turn of a live battle, streamed to the battle's group."""
    if side not in ("a", "b"):
        raise ValueError(f"side must be 'a' or 'b', not {side!r}")
    try:
        return live.live_turn_generate(battle_id=battle_id, side=side, turn=turn)  # type: ignore[arg-type]
    except answers.AnswerBusy as exc:
        self.request.retries -= 1
        raise self.retry(exc=exc, countdown=settings.ARENA_GENERATION_HARD_LIMIT + 1) from exc
    except BackendUnavailable as exc:
        if self.request.retries >= settings.ARENA_GENERATION_MAX_RETRIES:
            live.live_turn_failed(battle_id=battle_id, side=side, turn=turn, reason=str(exc))  # type: ignore[arg-type]
            return "failed"
        countdown = min(30.0, settings.ARENA_RETRY_BACKOFF_SECONDS * 2**self.request.retries)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(acks_late=True)
def recompute_campaign_ratings(*, campaign_id: int) -> None:
    """Recompute and store every rating snapshot of one campaign (debounced after votes),
    then its active sampling plan (`arena.battles.active`), from the new snapshot. The
    campaign's opt-in automatic exclusions (`arena.quality.exclusions`) are applied first."""
    from arena.battles.active import sampling_plan_update
    from arena.quality import exclusions
    from arena.ratings import recompute

    exclusions.exclusions_auto_apply(campaign_id=campaign_id)
    recompute.ratings_recompute(campaign_id=campaign_id)
    sampling_plan_update(campaign_id=campaign_id)


@shared_task(acks_late=True)
def recompute_all_ratings() -> None:
    """Periodic safety net (beat): recompute every active campaign whose votes changed (and
    its active sampling plan)."""
    from arena.battles.active import sampling_plan_update
    from arena.ratings import recompute

    for result in recompute.ratings_recompute_all():
        sampling_plan_update(campaign_id=result.campaign_id)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=settings.ARENA_GENERATION_MAX_RETRIES,
    soft_time_limit=settings.ARENA_GENERATION_SOFT_LIMIT,
    time_limit=settings.ARENA_GENERATION_HARD_LIMIT,
)
def judge_judgment(self: Task, *, judgment_id: int) -> str:  # type: ignore[type-arg]
    """One judge call on the judge's generation queue; safe to run twice (idempotent).
    Retries only transient errors: an unreachable backend or database, or a live claim."""
    from arena.judging import runs

    return _generation_work(
        self,
        lambda: runs.judgment_execute(judgment_id=judgment_id),
        busy=runs.JudgmentBusy,
        fail=lambda reason: runs.judgment_fail(judgment_id=judgment_id, reason=reason),
    )


@shared_task(acks_late=True)
def judge_report(*, run_id: int) -> None:
    """Compute and store a judge run's report (its leaderboard, diagnostics, agreement)."""
    from arena.judging import report

    report.judge_report_build(run_id=run_id)
