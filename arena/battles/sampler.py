"""Handing out battles: which question and which two answers an evaluator sees next, and
the one way a battle is created (stored, live or imported alike count toward their pair)."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Sequence
from itertools import combinations

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from arena.battles import active, rules, store
from arena.battles.read import battle_access_check
from arena.battles.rules import Owner, SkillBlock, skill_block
from arena.models import Answer, Battle, Campaign, Contestant, Question
from arena.quality import control as quality_control

rng = random.SystemRandom()


def pair_order(campaign: Campaign, contestant_ids: Sequence[int]) -> list[tuple[int, int]]:
    """Every pair, fewest battles served first; ties in random order."""
    loads = store.pair_loads(campaign_id=campaign.pk)
    pairs = list(combinations(sorted(contestant_ids), 2))
    rng.shuffle(pairs)
    return sorted(pairs, key=lambda p: loads.get(p, 0))


# The range of a campaign's question ids, per process for a minute: the pivot only spreads
# evaluators over the questions, so a range that missed a new import for a minute is fine
# (questions past it are still found, just less often first).
_RANGE_SECONDS = 60.0
_ranges: dict[int, tuple[float, int, int]] = {}


def _question_pivot(campaign: Campaign) -> int:
    """A random question id in the range of the campaign's uploaded questions."""
    cached = _ranges.get(campaign.pk)
    if cached is None or cached[0] < time.monotonic():
        bounds = Question.objects.filter(
            question_set__campaigns=campaign, question_set__kind="uploaded"
        ).aggregate(lo=Min("pk"), hi=Max("pk"))
        if bounds["lo"] is None:
            return 0
        cached = (time.monotonic() + _RANGE_SECONDS, bounds["lo"], bounds["hi"])
        _ranges[campaign.pk] = cached
    return rng.randint(cached[1], cached[2])


def skill_block_for(campaign: Campaign, owner: Owner) -> SkillBlock:
    """What the campaign's expert routing keeps from this owner (nothing, without routing:
    then no profile is read)."""
    if not campaign.expert_categories and not campaign.expert_languages:
        return SkillBlock()
    skills: list[str] = []
    languages: list[str] = []
    if owner.user is not None:
        skills, languages = store.evaluator_skills(user_id=owner.user.pk)
    return skill_block(
        expert_categories=campaign.expert_categories,
        expert_languages=campaign.expert_languages,
        skills=skills,
        languages=languages,
    )


def _daily_cap_reached(campaign: Campaign, owner: Owner) -> bool:
    return bool(campaign.daily_vote_cap) and quality_control.daily_cap_reached(
        campaign=campaign,
        user_id=owner.user_id,
        session_key=owner.stored_session_key,
        now=timezone.now(),
    )


def _control_battle(
    campaign: Campaign, owner: Owner, contestants: dict[int, Contestant]
) -> Battle | None:
    """A gold, repeat or overlap battle at the campaign's rates (`arena.quality.control`),
    served like any other; None for an ordinary one."""
    if not (campaign.gold_rate or campaign.repeat_rate or campaign.overlap_rate):
        return None
    pick = quality_control.control_pick(
        campaign=campaign,
        user_id=owner.user_id,
        session_key=owner.stored_session_key,
        # After a reveal the evaluator knows who wrote a battle they see again: a repeat would
        # measure their memory of the names, not their agreement with themselves.
        repeats=not rules.campaign_reveals(
            reveal_after_vote=campaign.reveal_after_vote, is_open=campaign.is_open
        ),
    )
    if pick is None or not set(pick.pair) <= contestants.keys():
        return None
    servable = Answer.objects.filter(
        rules.servable_answer_q(campaign.identity_policy), pk__in=[pick.answer_a, pick.answer_b]
    )
    if servable.count() != 2:
        return None
    block = skill_block_for(campaign, owner)  # expert routing holds for control battles too
    if (
        block
        and not Question.objects.filter(rules.question_skill_q(block), pk=pick.question_id).exists()
    ):
        return None
    return battle_create(
        campaign=campaign,
        owner=owner,
        mode=Battle.Mode.STORED,
        question_id=pick.question_id,
        answers=(pick.answer_a, pick.answer_b),
        pair=pick.pair,
        kind=pick.kind,
        source_id=pick.source_id,
        gold_id=pick.gold_id,
    )


@transaction.atomic
def battle_next(*, campaign: Campaign, owner: Owner) -> Battle | None:
    """The evaluator's open battle, or a new one: a question they have not seen, the pair
    with the fewest battles that both answered it, sides at random. None: the pool is empty.

    Concurrent callers lock the answer rows they pick (SKIP LOCKED), so two evaluators
    asking at once get different work where the pool allows it.
    """
    existing = store.open_battle(campaign_id=campaign.pk, owner=owner, now=timezone.now())
    if existing is not None:
        return existing
    if campaign.kind == Campaign.Kind.GRADING:
        return None  # its evaluators grade single answers: arena.grading
    contestants = store.active_contestants(campaign_id=campaign.pk)
    if len(contestants) < 2 or _daily_cap_reached(campaign, owner):
        return None
    store.commit_without_waiting_for_disk()
    control = _control_battle(campaign, owner, contestants)
    if control is not None:
        return control
    pivot = _question_pivot(campaign)
    block = skill_block_for(campaign, owner)
    weights: dict[tuple[int, int], float] = {}
    if campaign.sampling == Campaign.Sampling.ACTIVE:
        drawn = active.pair_draw_order(
            campaign_id=campaign.pk, contestant_ids=list(contestants), rng=rng
        )
        order = [pair for pair, _ in drawn]
        weights = dict(drawn)
    else:
        order = pair_order(campaign, list(contestants))
    for lo, hi in order:
        found = store.sample(
            campaign=campaign,
            owner=owner,
            lo=contestants[lo],
            hi=contestants[hi],
            pivot=pivot,
            block=block,
        )
        if found is not None:
            question_id, answer_lo, answer_hi = found
            return battle_create(
                campaign=campaign,
                owner=owner,
                mode=Battle.Mode.STORED,
                question_id=question_id,
                answers=(answer_lo, answer_hi),
                pair=(lo, hi),
                sampling_weight=weights.get((lo, hi)),
            )
    return None


def battle_create(
    *,
    campaign: Campaign,
    owner: Owner,
    mode: str,
    question_id: int,
    answers: tuple[int, int],
    pair: tuple[int, int],
    sampling_weight: float | None = None,
    kind: str = Battle.Kind.REGULAR,
    source_id: int | None = None,
    gold_id: int | None = None,
) -> Battle:
    """Serve a new battle: ``answers`` are the answer ids of the contestants in ``pair``
    (lower contestant id first), put on sides a and b at random; the pair's counter goes up.
    ``sampling_weight``: the pair's inverse-propensity weight under active sampling.
    A control battle (``kind`` other than regular: `arena.quality.control`) keeps the sides
    it was given and leaves the pair's counter alone. Call inside the transaction that chose
    them."""
    regular = kind == Battle.Kind.REGULAR
    a, b = answers if not regular or rng.random() < 0.5 else (answers[1], answers[0])
    now = timezone.now()
    values = {
        "code": uuid.uuid4(),
        "campaign_id": campaign.pk,
        "evaluator_id": owner.user_id,
        "session_key": owner.stored_session_key,
        "mode": mode,
        "question_id": question_id,
        "answer_a_id": a,
        "answer_b_id": b,
        "state": Battle.State.SERVED,
        "served_at": now,
        "expires_at": now + dt.timedelta(seconds=settings.ARENA_BATTLE_TTL_SECONDS),
        "sampling_weight": sampling_weight,
        "kind": kind,
        "source_id": source_id,
        "gold_id": gold_id,
    }
    battle_id = store.battle_insert(values)
    if regular:
        store.pair_bump(campaign_id=campaign.pk, lo=pair[0], hi=pair[1])
    return store.from_row(Battle, {"id": battle_id, **values})


@transaction.atomic
def battle_skip(*, code: str, owner: Owner) -> tuple[str, str] | None:
    """Skip the owner's served battle (its question counts as seen); returns the campaign's
    slug and the battle's mode, or None when the owner has no such battle. AccessDenied when
    the owner may no longer use its campaign."""
    battle = Battle.objects.filter(owner.battle_q(), code=code).select_related("campaign").first()
    if battle is None:
        return None
    battle_access_check(campaign_id=battle.campaign_id, owner=owner)
    Battle.objects.filter(pk=battle.pk, state=Battle.State.SERVED).update(
        state=Battle.State.SKIPPED
    )
    return battle.campaign.slug, battle.mode


def battle_expire(*, code: str, owner: Owner) -> bool:
    """Mark the owner's served battle expired once its time has run out (a read shows it
    expired already: `PublicBattle.expired_now`); False when there was nothing to mark."""
    return (
        Battle.objects.filter(
            owner.battle_q(), code=code, state=Battle.State.SERVED, expires_at__lte=timezone.now()
        ).update(state=Battle.State.EXPIRED)
        == 1
    )
