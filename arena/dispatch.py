"""Every effect of a write that leaves the database: Celery tasks and channel-layer sends.

Domain code calls these instead of importing `arena.tasks` (which imports the domain) or the
channel layer. Tasks are queued by name through a signature on the Celery app, with the queue
each one runs on; a task that is registered in this process (a worker, or eager mode in tests)
goes through its own ``apply_async``, anything else is sent to the broker by name. Functions
named ``*_after_commit`` queue their effect for when the current transaction commits (at once
outside one); the others act now.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from arena.celery import app

logger = logging.getLogger(__name__)

GENERATE_ANSWER = "arena.tasks.generate_answer"
GENERATE_LIVE_TURN = "arena.tasks.generate_live_turn"
RECOMPUTE_CAMPAIGN_RATINGS = "arena.tasks.recompute_campaign_ratings"
JUDGE_JUDGMENT = "arena.tasks.judge_judgment"
JUDGE_REPORT = "arena.tasks.judge_report"


def _queue(name: str, *, kwargs: dict[str, Any], queue: str | None = None, **options: Any) -> None:
    if queue is not None:
        options["queue"] = queue
    app.signature(name, kwargs=kwargs).apply_async(**options)


# Tasks ---------------------------------------------------------------------------------------


def answers_generate_after_commit(*, answer_ids: Iterable[int], queue: str) -> None:
    """One generation task per answer on the contestant's queue, once the rows are committed."""
    ids = list(answer_ids)
    if not ids:
        return

    def send() -> None:
        for answer_id in ids:
            _queue(GENERATE_ANSWER, kwargs={"answer_id": answer_id}, queue=queue)

    transaction.on_commit(send)


def live_turn_generate_after_commit(*, battle_id: int, turn: int, queues: dict[str, str]) -> None:
    """Both sides' generation of one live turn, each on its contestant's queue (``queues``
    maps side to queue), sent together once the battle is committed."""

    def send() -> None:
        for side, queue in queues.items():
            _queue(
                GENERATE_LIVE_TURN,
                kwargs={"battle_id": battle_id, "side": side, "turn": turn},
                queue=queue,
            )

    transaction.on_commit(send)


def ratings_recompute(*, campaign_id: int, countdown: float) -> None:
    """A rating recompute of one campaign in ``countdown`` seconds (on the default queue)."""
    _queue(RECOMPUTE_CAMPAIGN_RATINGS, kwargs={"campaign_id": campaign_id}, countdown=countdown)


def judgments_after_commit(*, judgment_ids: Iterable[int], queue: str) -> None:
    """One judging task per judgment on the judge's generation queue, once committed."""
    ids = list(judgment_ids)
    if not ids:
        return

    def send() -> None:
        for judgment_id in ids:
            _queue(JUDGE_JUDGMENT, kwargs={"judgment_id": judgment_id}, queue=queue)

    transaction.on_commit(send)


def judge_report_after_commit(*, run_id: int) -> None:
    """A judge run's report, computed on the default queue once committed."""
    transaction.on_commit(lambda: _queue(JUDGE_REPORT, kwargs={"run_id": run_id}))


def after_commit(effect: Callable[[], None]) -> None:
    """Run ``effect`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(effect)


# Channel groups ------------------------------------------------------------------------------


def group_send(group: str, event: dict[str, Any]) -> None:
    """Send a channel-layer event to a group now. Best effort: with no layer configured, or
    Redis out of reach, the event is dropped (pages correct themselves on their next load)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except (redis.RedisError, OSError):
        logger.warning("event %s to %s not sent: channel layer unreachable", event["type"], group)


def group_send_after_commit(group: str, event: dict[str, Any]) -> None:
    """`group_send` once the current transaction commits."""
    transaction.on_commit(lambda: group_send(group, event))


def group_send_async(group: str, event: dict[str, Any]) -> Awaitable[None] | None:
    """The awaitable of a group send, for code already on an event loop (a streaming
    callback); None with no layer configured. Best effort, as `group_send`."""
    layer = get_channel_layer()
    if layer is None:
        return None

    async def send() -> None:
        try:
            await layer.group_send(group, event)
        except (redis.RedisError, OSError):
            logger.warning(
                "event %s to %s not sent: channel layer unreachable", event["type"], group
            )

    return send()
