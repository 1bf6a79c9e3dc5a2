"""Reads for evaluators. Everything returned is a public.py object: no model identity."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from arena.models import Answer, Battle, Campaign, Vote
from arena.public import PublicBattle, PublicCampaign, PublicProgress, PublicReveal, PublicRound, md
from arena.services.access import Owner, campaigns_for
from arena.services.battles import remaining_questions


class NotFound(Exception):
    """No such battle for this evaluator (also when it exists but is someone else's)."""


_ANSWER_FIELDS = ("status", "shown_text", "followups")


def _get(code: str, owner: Owner) -> tuple[Battle, str | None]:
    """The owner's battle and the outcome of its vote, if any (one query). Only the columns
    battle_get_for_evaluator reads are loaded: another one is a query more (the query-budget
    tests notice)."""
    battle = (
        owner.battles()
        .select_related("question", "answer_a", "answer_b", "campaign")
        .only(
            "code",
            "state",
            "mode",
            "expires_at",
            "question__text",
            "question__turns",
            *(f"{side}__{f}" for side in ("answer_a", "answer_b") for f in _ANSWER_FIELDS),
            "campaign__slug",
            "campaign__name",
            "campaign__blind_timing",
        )
        .annotate(voted_outcome=F("vote__outcome"))
        .filter(code=code)
        .first()
    )
    if battle is None:
        raise NotFound
    return battle, battle.voted_outcome


def _replies(answer: Answer, turns: int, *, live: bool) -> tuple[list[str], list[bool]]:
    """The shown text of each round for one side, and whether each round is complete."""
    texts = [answer.shown_text] + [str(f.get("shown", "")) for f in answer.followups]
    texts += [""] * (turns + 1 - len(texts))
    complete = [answer.status == Answer.Status.DONE] + [
        i < len(answer.followups) for i in range(turns)
    ]
    if not live:
        complete = [True] * (turns + 1)
    return texts, complete


def battle_get_for_evaluator(*, code: str, owner: Owner) -> PublicBattle:
    """The battle as this evaluator may see it. Raises NotFound for anyone else's battle."""
    battle, vote = _get(code, owner)
    if battle.state == Battle.State.SERVED and battle.expires_at <= timezone.now():
        Battle.objects.filter(pk=battle.pk, state=Battle.State.SERVED).update(
            state=Battle.State.EXPIRED
        )
        battle.state = Battle.State.EXPIRED
    question, campaign = battle.question, battle.campaign
    live = battle.mode == Battle.Mode.LIVE
    user_turns = [question.text, *[str(t) for t in question.turns]]
    a_texts, a_done = _replies(battle.answer_a, len(question.turns), live=live)
    b_texts, b_done = _replies(battle.answer_b, len(question.turns), live=live)
    # Blind timing: a live round shows neither side until both have finished it, so the
    # order in which they finish cannot give a model away.
    blind = live and campaign.blind_timing
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
    can_vote = battle.state == Battle.State.SERVED and all(r.a_ready and r.b_ready for r in rounds)
    return PublicBattle(
        code=str(battle.code),
        campaign=campaign.slug,
        campaign_name=campaign.name,
        mode=battle.mode,  # type: ignore[arg-type]
        state=battle.state,  # type: ignore[arg-type]
        rounds=rounds,
        expires_at=battle.expires_at,
        voted_outcome=vote,
        can_vote=can_vote,
        blind_timing=blind,
    )


class RevealRefused(Exception):
    """No reveal: no vote from this evaluator yet, or the campaign keeps identities hidden."""


def battle_reveal(*, code: str, owner: Owner) -> PublicReveal:
    """Who wrote which answer, only for the evaluator who voted on this battle."""
    row = (
        owner.battles()
        .filter(code=code)
        .values(
            "code",
            "vote__outcome",
            "campaign__reveal_after_vote",
            "answer_a__contestant__name",
            "answer_b__contestant__name",
        )
        .first()
    )
    if row is None:
        raise NotFound
    if row["vote__outcome"] is None:
        raise RevealRefused("vote first")
    if not row["campaign__reveal_after_vote"]:
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
            leaderboard=c.leaderboard_public or (owner.user is not None and owner.user.is_staff),
        )
        for c in campaigns_for(owner)
    ]


def progress_get(*, campaign: Campaign, owner: Owner) -> PublicProgress:
    votes = Vote.objects.filter(campaign=campaign)
    votes = (
        votes.filter(evaluator=owner.user)
        if owner.user is not None
        else votes.filter(evaluator__isnull=True, battle__session_key=owner.session_key)
    )
    return PublicProgress(
        votes=votes.count(), remaining_questions=remaining_questions(campaign=campaign, owner=owner)
    )
