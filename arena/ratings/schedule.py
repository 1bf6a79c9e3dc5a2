"""Debounced rating recomputes: many votes in a burst cause one recompute per campaign."""

from __future__ import annotations

import functools
import logging
import math
import time

import redis
from django.conf import settings

from arena import dispatch

logger = logging.getLogger(__name__)


@functools.cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _client() -> redis.Redis:
    # One client (and so one connection pool) per process: a client per vote meant a new TCP
    # connection per vote. Keyed by URL so tests that change REDIS_URL get their own.
    return _client_for(settings.REDIS_URL)


# When this process last queued a recompute, per (Redis URL, campaign). In the first half of
# the debounce that recompute has not started, so it will read the votes committed now:
# they skip the round trip to Redis.
_seen_queued: dict[tuple[str, int], float] = {}


def ratings_recompute_soon(*, campaign_id: int) -> None:
    """Queue a recompute of this campaign's ratings in ARENA_RATING_DEBOUNCE_SECONDS, unless
    one is already queued (a Redis key with that expiry is the debounce)."""
    delay = max(1, settings.ARENA_RATING_DEBOUNCE_SECONDS)
    memo = (settings.REDIS_URL, campaign_id)
    now = time.monotonic()
    if now - _seen_queued.get(memo, -math.inf) < delay / 2:
        return
    try:
        first = _client().set(f"arena:recompute:{campaign_id}", "1", nx=True, ex=delay)
    except redis.RedisError:
        logger.warning("Redis unreachable: the periodic recompute will pick these votes up")
        return
    if first:
        dispatch.ratings_recompute(campaign_id=campaign_id, countdown=delay)
        _seen_queued[memo] = now
