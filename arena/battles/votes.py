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
from arena.quality import rules as quality_rules
from arena.ratings.schedule import ratings_recompute_soon

MAX_REASON_CHARS = 2000
# Per answer (A, B): acceptable, not acceptable, or not said.
Acceptable = tuple[bool | None, bool | None]


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


def vote_cast(
    *,
    code: str,
    owner: Owner,
    outcome: str,
    reason: str = "",
    session_started: dt.datetime | None = None,
    acceptable: Acceptable = (None, None),
) -> Vote:
    """Record the owner's vote on a battle served to them (see vote_cast_and_reveal)."""
    return vote_cast_and_reveal(
        code=code,
        owner=owner,
        outcome=outcome,
        reason=reason,
        session_started=session_started,
        acceptable=acceptable,
    ).vote


def vote_cast_and_reveal(
    *,
    code: str,
    owner: Owner,
    outcome: str,
    reason: str = "",
    session_started: dt.datetime | None = None,
    acceptable: Acceptable = (None, None),
) -> CastVote:
    """Record the owner's vote on a battle served to them; with it, the reveal when the
    campaign shows identities after a vote.

    Refuses (VoteRefused) a battle that does not exist or was not served to this owner, one
    that expired, was skipped or already has a vote, an unknown outcome, an over-long reason
    and votes beyond the per-minute limit. Two simultaneous submits give one vote: the
    battle's row lock and the database's unique constraint decide, and the loser gets
    ``already_voted``. ``session_started``: when an anonymous visitor's session began (a vote
    from a very new session is marked low-confidence, `quality.rules.vote_low_confidence`).
    ``acceptable``: the evaluator's optional verdict on answers A and B (True acceptable,
    False not, None not given), stored with the vote (`Campaign.ask_acceptable` offers it).
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
            return _record(
                key=key,
                owner=owner,
                outcome=outcome,
                reason=reason,
                session_started=session_started,
                acceptable=acceptable,
            )
    except VoteRefused as exc:
        if exc.code == "expired":  # the refusal rolled back; record the expiry on its own
            battle_expire(code=code, owner=owner)
        raise
    except IntegrityError:
        raise VoteRefused(
            _("This battle already has your vote."), code="already_voted", status=409
        ) from None


def _record(
    *,
    key: object,
    owner: Owner,
    outcome: str,
    reason: str,
    session_started: dt.datetime | None,
    acceptable: Acceptable = (None, None),
) -> CastVote:
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
    time_to_vote = max(0, int((now - target.served_at).total_seconds() * 1000))
    values = {
        "battle_id": target.battle_id,
        "campaign_id": target.campaign_id,
        "evaluator_id": owner.user_id,
        "question_id": target.question_id,
        "contestant_a_id": target.contestant_a_id,
        "contestant_b_id": target.contestant_b_id,
        "outcome": outcome,
        "reason": reason,
        "time_to_vote_ms": time_to_vote,
        "tainted": bool(target.taint),
        "taint": target.taint,
        "created_at": now,
        "control": quality_rules.battle_is_control(target.kind),
        "low_confidence": quality_rules.vote_low_confidence(
            time_to_vote_ms=time_to_vote, session_started=session_started, now=now
        ),
    }
    vote_id = store.vote_insert(values)
    if acceptable != (None, None):
        store.vote_acceptable_set(vote_id=vote_id, a=acceptable[0], b=acceptable[1])
        values["acceptable_a"], values["acceptable_b"] = acceptable
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
