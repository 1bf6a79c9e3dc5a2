"""Casting a vote: one per battle, only by the evaluator it was served to, before it expires."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from arena import sql
from arena.models import Battle, Vote
from arena.public import PublicReveal
from arena.services.access import Owner

MAX_REASON_CHARS = 2000


class VoteRefused(Exception):
    """The vote was not recorded. The message names no model and is safe to show."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


# Under the battle's row lock: the battle, what the vote row copies from it, the reveal's
# names (given out only once the vote is stored, and only if the campaign reveals) and the
# owner's votes in the last minute (the rate limit), in one statement.
_LOCK_SQL = """
SELECT b.id, b.state, b.mode, b.served_at, b.expires_at <= %(now)s, b.campaign_id,
       b.question_id, aa.contestant_id, ab.contestant_id, c.reveal_after_vote, ca.name, cb.name,
       ({recent}) AS recent
FROM arena_battle b
JOIN arena_answer aa ON aa.id = b.answer_a_id
JOIN arena_answer ab ON ab.id = b.answer_b_id
JOIN arena_contestant ca ON ca.id = aa.contestant_id
JOIN arena_contestant cb ON cb.id = ab.contestant_id
JOIN arena_campaign c ON c.id = b.campaign_id
WHERE b.code = %(code)s AND {owner}
{lock}
"""
_RECENT_BY_USER = (
    "SELECT count(*) FROM arena_vote rv WHERE rv.evaluator_id = %(user)s "
    "AND rv.created_at >= %(since)s"
)
_RECENT_BY_SESSION = (
    "SELECT count(*) FROM arena_vote rv JOIN arena_battle rb ON rb.id = rv.battle_id "
    "WHERE rv.evaluator_id IS NULL AND rb.session_key = %(session)s "
    "AND rv.created_at >= %(since)s"
)
_INSERT_VOTE_SQL = """
INSERT INTO arena_vote (battle_id, campaign_id, evaluator_id, question_id, contestant_a_id,
                        contestant_b_id, outcome, reason, time_to_vote_ms, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


@dataclass(frozen=True)
class CastVote:
    vote: Vote
    reveal: PublicReveal | None  # None: the campaign keeps identities hidden


def vote_cast(*, code: str, owner: Owner, outcome: str, reason: str = "") -> Vote:
    """Record the owner's vote on a battle served to them (see vote_cast_and_reveal)."""
    return vote_cast_and_reveal(code=code, owner=owner, outcome=outcome, reason=reason).vote


def vote_cast_and_reveal(*, code: str, owner: Owner, outcome: str, reason: str = "") -> CastVote:
    """Record the owner's vote on a battle served to them; with it, the reveal when the
    campaign shows identities after a vote.

    Refuses (VoteRefused) a battle that does not exist or was not served to this owner, one
    that expired, was skipped or already has a vote, an unknown outcome, an over-long reason
    and votes beyond the per-minute limit. Two simultaneous submits give one vote: the
    battle's row lock and the database's unique constraint decide, and the loser gets
    ``already_voted``.
    """
    if outcome not in Vote.Outcome.values:
        raise VoteRefused(_("Choose A, B, tie or both bad."), code="bad_outcome")
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS:
        raise VoteRefused(
            _("The reason is over %(n)d characters.") % {"n": MAX_REASON_CHARS}, code="bad_reason"
        )
    try:
        key = sql.db_value(Battle, "code", uuid.UUID(str(code)))
    except ValueError:
        raise VoteRefused(
            _("There is no such battle for you."), code="not_found", status=404
        ) from None
    try:
        with transaction.atomic():
            return _record(key=key, owner=owner, outcome=outcome, reason=reason)
    except VoteRefused as exc:
        if exc.code == "expired":  # the refusal rolled back; record the expiry on its own
            owner.battles().filter(code=code, state=Battle.State.SERVED).update(
                state=Battle.State.EXPIRED
            )
        raise
    except IntegrityError:
        raise VoteRefused(
            _("This battle already has your vote."), code="already_voted", status=409
        ) from None


def _record(*, key: object, owner: Owner, outcome: str, reason: str) -> CastVote:
    now = timezone.now()
    where, params = owner.battle_filter("b")
    statement = _LOCK_SQL.format(
        owner=where,
        recent=_RECENT_BY_USER if owner.user is not None else _RECENT_BY_SESSION,
        lock=sql.lock_clause("b"),
    )
    row = sql.fetch_one(
        statement,
        {
            **params,
            "code": key,
            "now": sql.db_value(Battle, "expires_at", now),
            "since": sql.db_value(Vote, "created_at", now - dt.timedelta(minutes=1)),
        },
    )
    if row is None:
        raise VoteRefused(_("There is no such battle for you."), code="not_found", status=404)
    (battle_id, state, mode, served_at, expired, campaign_id, question_id) = row[:7]
    contestant_a, contestant_b, reveals, name_a, name_b, recent = row[7:]
    if recent >= settings.ARENA_VOTES_PER_MINUTE:
        raise VoteRefused(
            _("Too many votes in the last minute; please slow down."),
            code="rate_limited",
            status=429,
        )
    if state == Battle.State.VOTED:
        raise VoteRefused(_("This battle already has your vote."), code="already_voted", status=409)
    if state != Battle.State.SERVED:
        raise VoteRefused(_("This battle was skipped or has expired."), code="closed", status=409)
    if expired:
        raise VoteRefused(_("This battle has expired."), code="expired", status=409)
    if mode == Battle.Mode.LIVE and not _live_complete(battle_id):
        raise VoteRefused(_("Wait until both answers are complete."), code="not_ready", status=409)
    values = {
        "battle_id": battle_id,
        "campaign_id": campaign_id,
        "evaluator_id": owner.user.pk if owner.user is not None else None,
        "question_id": question_id,
        "contestant_a_id": contestant_a,
        "contestant_b_id": contestant_b,
        "outcome": outcome,
        "reason": reason,
        "time_to_vote_ms": max(0, int((now - sql.as_datetime(served_at)).total_seconds() * 1000)),
        "created_at": now,
    }
    vote_id = sql.insert(
        _INSERT_VOTE_SQL,
        [*list(values.values())[:-1], sql.db_value(Vote, "created_at", now)],
    )
    sql.execute("UPDATE arena_battle SET state = 'voted' WHERE id = %s", [battle_id])
    from arena.services.ratings_schedule import ratings_recompute_soon

    transaction.on_commit(lambda: ratings_recompute_soon(campaign_id=campaign_id))
    reveal = (
        PublicReveal(code=str(sql.as_uuid(key)), a=name_a, b=name_b, outcome=outcome)
        if reveals
        else None
    )
    return CastVote(vote=sql.from_row(Vote, {"id": vote_id, **values}), reveal=reveal)


def _live_complete(battle_id: int) -> bool:
    battle = Battle.objects.select_related("question", "answer_a", "answer_b").get(pk=battle_id)
    if battle.answer_a.status != "done" or battle.answer_b.status != "done":
        return False
    turns = len(battle.question.turns)
    return len(battle.answer_a.followups) >= turns and len(battle.answer_b.followups) >= turns
