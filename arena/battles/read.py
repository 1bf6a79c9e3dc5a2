"""Reads for evaluators: campaigns they may use, their battles, progress and the reveal.
Everything returned to an evaluator is a public.py object (no model identity) or a Campaign.
Nothing here writes: a battle whose time ran out is shown as expired, and the caller that
wants the row to say so calls `battle_expire`."""

from __future__ import annotations

import uuid

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from arena.battles import store
from arena.battles.rules import (
    AccessDenied,
    Owner,
    access_lost_message,
    campaign_access_q,
    campaign_reveals,
    campaign_reveals_q,
    side_done,
)
from arena.models import Battle, Campaign, Question, Vote
from arena.public import PublicBattle, PublicCampaign, PublicProgress, PublicReveal, PublicRound, md
from arena.ratings.read import leaderboard_listed


class NotFound(Exception):
    """No such battle for this evaluator (also when it exists but is someone else's)."""


class RevealRefused(Exception):
    """No reveal: no vote from this evaluator yet, or the campaign keeps identities hidden."""


def campaigns_for(owner: Owner) -> QuerySet[Campaign]:
    """The campaigns the owner may evaluate in (`rules.campaign_access_q`)."""
    return Campaign.objects.filter(campaign_access_q(owner))


def campaign_allows(*, campaign_id: int, owner: Owner) -> bool:
    """Whether the owner may still use this campaign (`rules.campaign_access_q`)."""
    return campaigns_for(owner).filter(pk=campaign_id).exists()


def battle_access_check(*, campaign_id: int, owner: Owner) -> None:
    """Raise AccessDenied unless the owner may still use the battle's campaign: every action
    on a battle checks it again, not only the one that served it."""
    if not campaign_allows(campaign_id=campaign_id, owner=owner):
        raise AccessDenied(access_lost_message())


def campaign_access(*, slug: str, owner: Owner) -> Campaign:
    """The active campaign with this slug if the owner may evaluate in it: open ones for
    everybody, the others for their evaluators and for staff."""
    campaign = store.campaign_for(slug=slug, owner=owner)
    if campaign is None:
        raise AccessDenied(_("This campaign does not exist or is not open to you."))
    return campaign


def _row(code: str, owner: Owner) -> store.BattleRow:
    """The owner's battle with what an evaluator may see of it. NotFound for anyone else's
    battle and for a code that is not a UUID; AccessDenied when the owner may no longer use
    its campaign."""
    try:
        key = store.db_value(Battle, "code", uuid.UUID(str(code)))
    except ValueError:
        raise NotFound from None
    row = store.battle_row(code=key, owner=owner)
    if row is None:
        raise NotFound
    if not row.allowed:
        raise AccessDenied(access_lost_message())
    return row


def _replies(side: store.SideRow, turns: int, *, live: bool) -> tuple[list[str], list[bool]]:
    """The shown text of each round for one side, and whether each round is complete."""
    texts = [side.shown_text] + [str(f.get("shown", "")) for f in side.followups]
    texts += [""] * (turns + 1 - len(texts))
    if not live:
        return texts, [True] * (turns + 1)
    complete = [
        side_done(status=side.status, followups=side.followups, turn=i) for i in range(turns + 1)
    ]
    return texts, complete


def battle_get_for_evaluator(*, code: str, owner: Owner) -> PublicBattle:
    """The battle as this evaluator may see it; one whose time ran out while served is shown
    expired (`PublicBattle.expired_now`). Raises NotFound for anyone else's battle and
    AccessDenied for one in a campaign the owner may no longer use."""
    battle = _row(code, owner)
    state = battle.state
    expired_now = state == Battle.State.SERVED and battle.expires_at <= timezone.now()
    if expired_now:
        state = Battle.State.EXPIRED
    live = battle.mode == Battle.Mode.LIVE
    user_turns = [battle.question_text, *[str(t) for t in battle.question_turns]]
    a_texts, a_done = _replies(battle.a, len(battle.question_turns), live=live)
    b_texts, b_done = _replies(battle.b, len(battle.question_turns), live=live)
    # Blind timing: a live round shows neither side until both have finished it, so the
    # order in which they finish cannot give a model away.
    blind = live and battle.blind_timing
    rounds = []
    for i, user in enumerate(user_turns):
        a_ready, b_ready = a_done[i], b_done[i]
        if blind and not (a_ready and b_ready):
            a_ready = b_ready = False
        rounds.append(
            PublicRound(
                user_html=md(user),
                a_html=md(a_texts[i] if a_ready else ""),
                b_html=md(b_texts[i] if b_ready else ""),
                a_ready=a_ready,
                b_ready=b_ready,
            )
        )
    can_vote = state == Battle.State.SERVED and all(r.a_ready and r.b_ready for r in rounds)
    return PublicBattle(
        code=battle.code,
        campaign=battle.campaign_slug,
        campaign_name=battle.campaign_name,
        mode=battle.mode,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        rounds=rounds,
        expires_at=battle.expires_at,
        voted_outcome=battle.voted_outcome,
        can_vote=can_vote,
        blind_timing=blind,
        expired_now=expired_now,
    )


def battle_reveal(*, code: str, owner: Owner) -> PublicReveal:
    """Who wrote which answer, only for the evaluator who voted on this battle, while they
    may still use its campaign."""
    row = (
        Battle.objects.filter(owner.battle_q(), code=code)
        .values(
            "campaign_id",
            "code",
            "vote__outcome",
            "campaign__reveal_after_vote",
            "campaign__is_open",
            "answer_a__contestant__name",
            "answer_b__contestant__name",
        )
        .first()
    )
    if row is None:
        raise NotFound
    battle_access_check(campaign_id=row["campaign_id"], owner=owner)
    if row["vote__outcome"] is None:
        raise RevealRefused("vote first")
    if not campaign_reveals(
        reveal_after_vote=row["campaign__reveal_after_vote"], is_open=row["campaign__is_open"]
    ):
        raise RevealRefused("this campaign keeps identities hidden")
    return PublicReveal(
        code=str(row["code"]),
        a=row["answer_a__contestant__name"],
        b=row["answer_b__contestant__name"],
        outcome=row["vote__outcome"],
    )


def campaign_list_for(*, owner: Owner) -> list[PublicCampaign]:
    return [
        PublicCampaign(
            slug=c.slug,
            name=c.name,
            description=c.description,
            allow_live=c.allow_live,
            progress=progress_get(campaign=c, owner=owner),
            # Team-only leaderboards are for staff (evaluators would be swayed by them).
            leaderboard=leaderboard_listed(campaign=c, user=owner.user),
        )
        for c in campaigns_for(owner)
    ]


def remaining_questions(*, campaign: Campaign, owner: Owner) -> int:
    """Questions of the campaign this owner has not been served yet."""
    seen = Battle.objects.filter(owner.battle_q(), campaign=campaign, question=OuterRef("pk"))
    return (
        Question.objects.filter(question_set__in=campaign.question_sets.filter(kind="uploaded"))
        .exclude(Exists(seen))
        .count()
    )


def progress_get(*, campaign: Campaign, owner: Owner) -> PublicProgress:
    votes = Vote.objects.filter(owner.vote_q(), campaign=campaign)
    return PublicProgress(
        votes=votes.count(), remaining_questions=remaining_questions(campaign=campaign, owner=owner)
    )


def reveal_conflicts(*, campaign: Campaign) -> list[Campaign]:
    """Other campaigns that show answers this one shows (a question set and a contestant in
    common) but reveal identities after the vote where this one does not, or the other way
    round: a reveal in one tells its evaluators who wrote answers the other's evaluators are
    meant to judge blind."""
    reveals = campaign_reveals(
        reveal_after_vote=campaign.reveal_after_vote, is_open=campaign.is_open
    )
    return list(
        Campaign.objects.filter(
            question_sets__in=campaign.question_sets.all(),
            contestants__in=campaign.contestants.all(),
        )
        .exclude(pk=campaign.pk)
        .exclude(campaign_reveals_q() if reveals else ~campaign_reveals_q())
        .distinct()
        .order_by("name")
    )
