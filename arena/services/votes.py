"""Casting a vote: one per battle, only by the evaluator it was served to, before it expires."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from arena.models import Battle, Vote
from arena.services.access import Owner

MAX_REASON_CHARS = 2000


class VoteRefused(Exception):
    """The vote was not recorded. The message names no model and is safe to show."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _rate_limited(owner: Owner) -> bool:
    since = timezone.now() - dt.timedelta(minutes=1)
    recent = Vote.objects.filter(created_at__gte=since)
    if owner.user is not None:
        recent = recent.filter(evaluator=owner.user)
    else:
        recent = recent.filter(evaluator__isnull=True, battle__session_key=owner.session_key)
    return recent.count() >= settings.ARENA_VOTES_PER_MINUTE


def vote_cast(*, code: str, owner: Owner, outcome: str, reason: str = "") -> Vote:
    """Record the owner's vote on a battle served to them.

    Refuses (VoteRefused) a battle that does not exist or was not served to this owner, one
    that expired, was skipped or already has a vote, an unknown outcome, an over-long reason
    and votes beyond the per-minute limit. Two simultaneous submits give one vote: the
    database's unique constraint decides, and the loser gets ``already_voted``.
    """
    if outcome not in Vote.Outcome.values:
        raise VoteRefused(_("Choose A, B, tie or both bad."), code="bad_outcome")
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS:
        raise VoteRefused(
            _("The reason is over %(n)d characters.") % {"n": MAX_REASON_CHARS}, code="bad_reason"
        )
    if _rate_limited(owner):
        raise VoteRefused(
            _("Too many votes in the last minute; please slow down."),
            code="rate_limited",
            status=429,
        )
    try:
        with transaction.atomic():
            return _record(code=code, owner=owner, outcome=outcome, reason=reason)
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


def _record(*, code: str, owner: Owner, outcome: str, reason: str) -> Vote:
    battle = (
        owner.battles()
        .select_for_update(of=("self",))
        .select_related("answer_a", "answer_b")
        .filter(code=code)
        .first()
    )
    if battle is None:
        raise VoteRefused(_("There is no such battle for you."), code="not_found", status=404)
    if battle.state == Battle.State.VOTED:
        raise VoteRefused(_("This battle already has your vote."), code="already_voted", status=409)
    if battle.state != Battle.State.SERVED:
        raise VoteRefused(_("This battle was skipped or has expired."), code="closed", status=409)
    now = timezone.now()
    if battle.expires_at <= now:
        raise VoteRefused(_("This battle has expired."), code="expired", status=409)
    if battle.mode == Battle.Mode.LIVE and not _live_complete(battle):
        raise VoteRefused(_("Wait until both answers are complete."), code="not_ready", status=409)
    vote = Vote.objects.create(
        battle=battle,
        campaign_id=battle.campaign_id,
        evaluator=owner.user,
        question_id=battle.question_id,
        contestant_a_id=battle.answer_a.contestant_id,
        contestant_b_id=battle.answer_b.contestant_id,
        outcome=outcome,
        reason=reason,
        time_to_vote_ms=int((now - battle.served_at).total_seconds() * 1000),
    )
    Battle.objects.filter(pk=battle.pk).update(state=Battle.State.VOTED)
    from arena.services.ratings_schedule import ratings_recompute_soon

    transaction.on_commit(lambda: ratings_recompute_soon(campaign_id=battle.campaign_id))
    return vote


def _live_complete(battle: Battle) -> bool:
    done = Battle.objects.filter(
        pk=battle.pk,
        answer_a__status="done",
        answer_b__status="done",
    ).exists()
    if not done:
        return False
    turns = len(battle.question.turns)
    return len(battle.answer_a.followups) >= turns and len(battle.answer_b.followups) >= turns
