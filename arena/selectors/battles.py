"""Reads for evaluators. Everything returned is a public.py object: no model identity."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from arena import sql
from arena.models import Answer, Battle, Campaign, Vote
from arena.public import PublicBattle, PublicCampaign, PublicProgress, PublicReveal, PublicRound, md
from arena.services.access import Owner, campaigns_for
from arena.services.battles import remaining_questions


class NotFound(Exception):
    """No such battle for this evaluator (also when it exists but is someone else's)."""


@dataclass(frozen=True)
class _Side:
    status: str
    shown_text: str
    followups: list[dict[str, Any]]


@dataclass(frozen=True)
class _BattleRow:
    pk: int
    code: str
    state: str
    mode: str
    expires_at: dt.datetime
    question_text: str
    question_turns: list[Any]
    a: _Side
    b: _Side
    campaign_slug: str
    campaign_name: str
    blind_timing: bool
    voted_outcome: str | None


# Every page view and "next" reads a battle like this: one statement.
_GET_SQL = """
SELECT b.id, b.code, b.state, b.mode, b.expires_at, q.text, q.turns,
       aa.status, aa.shown_text, aa.followups, ab.status, ab.shown_text, ab.followups,
       c.slug, c.name, c.blind_timing, v.outcome
FROM arena_battle b
JOIN arena_question q ON q.id = b.question_id
JOIN arena_answer aa ON aa.id = b.answer_a_id
JOIN arena_answer ab ON ab.id = b.answer_b_id
JOIN arena_campaign c ON c.id = b.campaign_id
LEFT JOIN arena_vote v ON v.battle_id = b.id
WHERE b.code = %(code)s AND {owner}
"""


def _get(code: str, owner: Owner) -> _BattleRow:
    """The owner's battle with what an evaluator may see of it. NotFound for anyone else's
    battle and for a code that is not a UUID."""
    try:
        key = sql.db_value(Battle, "code", uuid.UUID(str(code)))
    except ValueError:
        raise NotFound from None
    where, params = owner.battle_filter("b")
    row = sql.fetch_one(_GET_SQL.format(owner=where), {**params, "code": key})
    if row is None:
        raise NotFound
    (pk, code_, state, mode, expires_at, text, turns, *sides, slug, name, blind, outcome) = row
    a_status, a_text, a_followups, b_status, b_text, b_followups = sides
    return _BattleRow(
        pk=pk,
        code=str(sql.as_uuid(code_)),
        state=state,
        mode=mode,
        expires_at=sql.as_datetime(expires_at),
        question_text=text,
        question_turns=sql.as_json(turns),
        a=_Side(a_status, a_text, sql.as_json(a_followups)),
        b=_Side(b_status, b_text, sql.as_json(b_followups)),
        campaign_slug=slug,
        campaign_name=name,
        blind_timing=bool(blind),
        voted_outcome=outcome,
    )


def _replies(answer: _Side, turns: int, *, live: bool) -> tuple[list[str], list[bool]]:
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
    battle = _get(code, owner)
    state = battle.state
    if state == Battle.State.SERVED and battle.expires_at <= timezone.now():
        Battle.objects.filter(pk=battle.pk, state=Battle.State.SERVED).update(
            state=Battle.State.EXPIRED
        )
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
