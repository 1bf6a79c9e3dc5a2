"""Limits that keep an open campaign from being stuffed: per client IP and per anonymous
session, on votes, live prompts and new sessions, and a live-generation budget per IP per
hour for everyone. Counted in Redis by django-ratelimit (the ``ratelimit`` cache), so every
web process shares them.

The client IP is ``REMOTE_ADDR``: behind a proxy the ASGI server sets it from
X-Forwarded-For only when the proxy is in FORWARDED_ALLOW_IPS, so a forwarded header is
trusted exactly when that is configured, and a client cannot pick its own address."""

from __future__ import annotations

from typing import Literal

import redis
from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django_ratelimit.core import is_ratelimited

Action = Literal["vote", "live", "session"]


class LimitReached(Exception):
    """Refused; the message names the limit, never a model, and is safe to show."""


def _ip(group: str, request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


def _session(group: str, request: HttpRequest) -> str:
    return str(request.session.session_key or "")


def _rates(action: Action) -> list[tuple[str, object, str, bool]]:
    """(group, key, rate, keyed by session) of each limit an anonymous visitor's ``action``
    counts against."""
    if action == "vote":
        return [
            ("open-vote-ip", _ip, settings.ARENA_OPEN_VOTES_PER_IP, False),
            ("open-vote-session", _session, settings.ARENA_OPEN_VOTES_PER_SESSION, True),
        ]
    if action == "live":
        return [
            ("open-live-ip", _ip, settings.ARENA_OPEN_LIVE_PER_IP, False),
            ("open-live-session", _session, settings.ARENA_OPEN_LIVE_PER_SESSION, True),
        ]
    return [("open-session-ip", _ip, settings.ARENA_OPEN_SESSIONS_PER_IP, False)]


def open_limit_check(*, request: HttpRequest, action: Action) -> None:
    """Count an anonymous visitor's vote, live prompt or new session against its limits;
    LimitReached when one is passed. Logged-in evaluators are members the admin chose, held by
    ARENA_VOTES_PER_MINUTE and the daily cap instead."""
    if request.user.is_authenticated:
        return
    for group, key, rate, per_session in _rates(action):
        if per_session and not request.session.session_key:
            continue  # no session yet: only its network is counted
        if _over(request, group=group, key=key, rate=rate):
            raise LimitReached(_limit_message(action))


def live_budget_check(*, request: HttpRequest) -> None:
    """Count one live prompt (two generated answers) against the client IP's hourly budget
    (ARENA_LIVE_BUDGET_PER_IP_HOUR), for every visitor; LimitReached when spent."""
    rate = f"{settings.ARENA_LIVE_BUDGET_PER_IP_HOUR}/h"
    if _over(request, group="live-budget-ip", key=_ip, rate=rate):
        raise LimitReached(_("The live-generation budget of this network for the hour is spent."))


def _over(request: HttpRequest, *, group: str, key: object, rate: str) -> bool:
    """Count one hit; whether the limit is passed. Fails closed: with the counters' Redis out
    of reach the limits cannot be kept, so what they guard is refused (with a clear message)
    rather than let through uncounted."""
    try:
        return bool(is_ratelimited(request, group=group, key=key, rate=rate, increment=True))
    except (redis.RedisError, OSError):
        raise LimitReached(
            _("Limits cannot be checked right now, so this is paused; please try again soon.")
        ) from None


def _limit_message(action: Action) -> str:
    if action == "vote":
        return _("Too many votes from this visitor or network; please come back later.")
    if action == "live":
        return _("Too many live questions from this visitor or network; please come back later.")
    return _("Too many new visitors from this network; please come back later.")
