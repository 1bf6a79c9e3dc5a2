"""Casting a vote: one per battle, only by the evaluator it was served to, before it expires."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from arena import dispatch
from arena.battles import store
from arena.battles.rules import Owner, access_lost_message, battle_taint
from arena.battles.sampler import battle_expire
from arena.models import Battle, Campaign, Vote
from arena.public import PublicReveal
from arena.ratings.schedule import ratings_recompute_soon

MAX_REASON_CHARS = 2000


class VoteRefused(Exception):
    """The vote was not recorded. The message names no model and is safe to show."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


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
        key = store.db_value(Battle, "code", uuid.UUID(str(code)))
    except ValueError:
        raise VoteRefused(
            _("There is no such battle for you."), code="not_found", status=404
        ) from None
    try:
        with transaction.atomic():
            return _record(key=key, owner=owner, outcome=outcome, reason=reason)
    except VoteRefused as exc:
        if exc.code == "expired":  # the refusal rolled back; record the expiry on its own
            battle_expire(code=code, owner=owner)
        raise
    except IntegrityError:
        raise VoteRefused(
            _("This battle already has your vote."), code="already_voted", status=409
        ) from None


def _record(*, key: object, owner: Owner, outcome: str, reason: str) -> CastVote:
    now = timezone.now()
    target = store.vote_target_lock(
        code=key, owner=owner, now=now, since=now - dt.timedelta(minutes=1)
    )
    if target is None:
        raise VoteRefused(_("There is no such battle for you."), code="not_found", status=404)
    if not target.allowed:
        raise VoteRefused(access_lost_message(), code="no_access", status=403)
    if target.recent_votes >= settings.ARENA_VOTES_PER_MINUTE:
        raise VoteRefused(
            _("Too many votes in the last minute; please slow down."),
            code="rate_limited",
            status=429,
        )
    if target.state == Battle.State.VOTED:
        raise VoteRefused(_("This battle already has your vote."), code="already_voted", status=409)
    if target.state != Battle.State.SERVED:
        raise VoteRefused(_("This battle was skipped or has expired."), code="closed", status=409)
    if target.expired:
        raise VoteRefused(_("This battle has expired."), code="expired", status=409)
    if target.mode == Battle.Mode.LIVE and not target.round_complete:
        raise VoteRefused(_("Wait until both answers are complete."), code="not_ready", status=409)
    values = {
        "battle_id": target.battle_id,
        "campaign_id": target.campaign_id,
        "evaluator_id": owner.user_id,
        "question_id": target.question_id,
        "contestant_a_id": target.contestant_a_id,
        "contestant_b_id": target.contestant_b_id,
        "outcome": outcome,
        "reason": reason,
        "time_to_vote_ms": max(0, int((now - target.served_at).total_seconds() * 1000)),
        "tainted": bool(target.taint),
        "taint": target.taint,
        "created_at": now,
    }
    vote_id = store.vote_insert(values)
    campaign_id = target.campaign_id
    dispatch.after_commit(lambda: ratings_recompute_soon(campaign_id=campaign_id))
    reveal = (
        PublicReveal(
            code=str(store.as_uuid(key)), a=target.name_a, b=target.name_b, outcome=outcome
        )
        if target.reveals
        else None
    )
    return CastVote(vote=store.from_row(Vote, {"id": vote_id, **values}), reveal=reveal)


def votes_taint_again(*, campaign: Campaign) -> int:
    """Decide again, from the names stored with answers and questions now, which of the
    campaign's votes are tainted (`rules.battle_taint`); returns how many changed. The votes
    themselves are never touched otherwise."""
    changed = 0
    votes = Vote.objects.filter(campaign=campaign).select_related(
        "battle__question", "battle__answer_a", "battle__answer_b"
    )
    for vote in votes.iterator(chunk_size=500):
        battle = vote.battle
        taint = battle_taint(
            question_terms=battle.question.named_terms,
            asks_identity=battle.question.asks_identity,
            a_terms=battle.answer_a.named_terms,
            b_terms=battle.answer_b.named_terms,
        )
        if taint != vote.taint or bool(taint) != vote.tainted:
            Vote.objects.filter(pk=vote.pk).update(tainted=bool(taint), taint=taint)
            changed += 1
    return changed
