"""The small rules of vote quality, each written once."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings

from arena.models import Battle

IMPORT_SESSION = "import:"  # arena.battles.io.IMPORT_SESSION: imported battles' owner
_CONTROL_KINDS = frozenset({Battle.Kind.GOLD, Battle.Kind.REPEAT})


def battle_is_control(kind: str) -> bool:
    """A gold or repeat battle: its vote feeds the quality figures and never the ratings (a
    repeat would count one evaluator's opinion of one item twice)."""
    return kind in _CONTROL_KINDS


def vote_low_confidence(
    *, time_to_vote_ms: int | None, session_started: dt.datetime | None, now: dt.datetime
) -> bool:
    """Cast faster than the reading-time floor, or from an anonymous session younger than
    ARENA_NEW_SESSION_SECONDS: marked, still counted."""
    if time_to_vote_ms is not None and time_to_vote_ms < settings.ARENA_READING_FLOOR_MS:
        return True
    if session_started is None:
        return False
    return (now - session_started).total_seconds() < settings.ARENA_NEW_SESSION_SECONDS


def evaluator_key(*, user_id: int | None, session_key: str) -> str:
    """The stable key of whoever cast a vote: a user, an anonymous session or an imported
    battle's judge."""
    if user_id is not None:
        return f"user:{user_id}"
    return f"session:{session_key}"


def evaluator_from_key(key: str) -> tuple[int | None, str]:
    """(user id, session key) of an `evaluator_key`."""
    kind, _sep, value = key.partition(":")
    if kind == "user":
        return int(value), ""
    if kind == "session" and value:
        return None, value
    raise ValueError(f"not an evaluator key: {key!r}")


def evaluator_label(*, username: str | None, session_key: str) -> str:
    """How pages and `manage.py evaluator_quality` name an evaluator: the username, the judge
    of imported battles, or a pseudonym of an anonymous session (the session key itself is a
    login secret and is never shown)."""
    if username:
        return username
    if session_key.startswith(IMPORT_SESSION):
        return session_key.removeprefix(IMPORT_SESSION)
    digest = hashlib.sha256(session_key.encode()).hexdigest()[:12]
    return f"session-{digest}"
