"""Handing out battles: which question and which two answers an evaluator sees next."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from itertools import combinations

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from arena.models import Answer, Battle, Campaign, Contestant, PairLoad, Question
from arena.services.access import Owner

_rng = random.SystemRandom()
CANDIDATES = 20


def _servable(campaign: Campaign, contestants: Sequence[Contestant]) -> QuerySet[Answer]:
    """Done answers of these contestants for their current configuration that this
    campaign may show (flagged ones only when released, or when the policy redacts)."""
    current = Q()
    for c in contestants:
        current |= Q(contestant=c, config_hash=c.config_hash)
    answers = Answer.objects.filter(current, status=Answer.Status.DONE)
    if campaign.identity_policy == Campaign.IdentityPolicy.EXCLUDE:
        answers = answers.filter(Q(flagged=False) | Q(released=True))
    return answers


def _pair_order(campaign: Campaign, contestants: Sequence[Contestant]) -> list[tuple[int, int]]:
    """Every pair, fewest battles served first; ties in random order."""
    loads = {
        (lo, hi): n
        for lo, hi, n in PairLoad.objects.filter(campaign=campaign).values_list(
            "contestant_lo_id", "contestant_hi_id", "battles"
        )
    }
    ids = sorted(c.pk for c in contestants)
    pairs = list(combinations(ids, 2))
    _rng.shuffle(pairs)
    return sorted(pairs, key=lambda p: loads.get(p, 0))


def _bump_pair(campaign: Campaign, lo: int, hi: int) -> None:
    updated = PairLoad.objects.filter(
        campaign=campaign, contestant_lo_id=lo, contestant_hi_id=hi
    ).update(battles=F("battles") + 1)
    if not updated:
        PairLoad.objects.bulk_create(
            [PairLoad(campaign=campaign, contestant_lo_id=lo, contestant_hi_id=hi, battles=1)],
            update_conflicts=True,
            unique_fields=["campaign", "contestant_lo", "contestant_hi"],
            update_fields=["battles"],
        )


def open_battle(*, campaign: Campaign, owner: Owner) -> Battle | None:
    """This evaluator's unexpired, unvoted battle in the campaign, if any."""
    return (
        owner.battles()
        .filter(campaign=campaign, state=Battle.State.SERVED, expires_at__gt=timezone.now())
        .order_by("-served_at")
        .first()
    )


def _lock(answers: QuerySet[Answer]) -> QuerySet[Answer]:
    if connection.features.has_select_for_update_skip_locked:
        return answers.select_for_update(skip_locked=True, of=("self",))
    return answers


@transaction.atomic
def battle_next(*, campaign: Campaign, owner: Owner) -> Battle | None:
    """The evaluator's open battle, or a new one: a question they have not seen, the pair
    with the fewest battles that both answered it, sides at random. None: the pool is empty.

    Concurrent callers lock the answer rows they pick (SKIP LOCKED), so two evaluators
    asking at once get different work where the pool allows it.
    """
    existing = open_battle(campaign=campaign, owner=owner)
    if existing is not None:
        return existing
    contestants = {c.pk: c for c in campaign.contestants.filter(active=True)}
    if len(contestants) < 2:
        return None

    seen = owner.battles().filter(campaign=campaign, question=OuterRef("pk"))
    questions = Question.objects.filter(
        question_set__in=campaign.question_sets.filter(kind="uploaded")
    )
    # Candidates are the unseen questions that follow a random one in primary-key order
    # (wrapping round), shuffled: the database probes a few questions instead of checking
    # and sorting every one of them by random() on each request.
    pivot = questions.order_by("?").values_list("pk", flat=True).first()
    if pivot is None:
        return None
    unseen = questions.exclude(Exists(seen))
    for lo, hi in _pair_order(campaign, list(contestants.values())):
        pair = [contestants[lo], contestants[hi]]
        both = unseen.filter(
            *(Exists(_servable(campaign, [c]).filter(question=OuterRef("pk"))) for c in pair)
        ).order_by("pk")
        candidates = list(both.filter(pk__gte=pivot).values_list("pk", flat=True)[:CANDIDATES])
        if len(candidates) < CANDIDATES:
            wrapped = both.filter(pk__lt=pivot).values_list("pk", flat=True)
            candidates += list(wrapped[: CANDIDATES - len(candidates)])
        _rng.shuffle(candidates)
        for question_id in candidates:
            # Lock just this question's two answers, so a concurrent caller skips to the
            # next question instead of finding the whole candidate list taken.
            locked = {
                a.contestant_id: a
                for a in _lock(
                    _servable(campaign, pair).filter(question_id=question_id).only("contestant_id")
                )
            }
            if lo in locked and hi in locked:
                return _create(campaign, owner, question_id, locked[lo], locked[hi], lo, hi)
    return None


def _create(
    campaign: Campaign,
    owner: Owner,
    question_id: int,
    answer_lo: Answer,
    answer_hi: Answer,
    lo: int,
    hi: int,
) -> Battle:
    a, b = (answer_lo, answer_hi) if _rng.random() < 0.5 else (answer_hi, answer_lo)
    battle = Battle.objects.create(
        campaign=campaign,
        evaluator=owner.user,
        session_key="" if owner.user else owner.session_key,
        question_id=question_id,
        answer_a=a,
        answer_b=b,
        expires_at=timezone.now() + dt.timedelta(seconds=settings.ARENA_BATTLE_TTL_SECONDS),
    )
    _bump_pair(campaign, lo, hi)
    return battle


@transaction.atomic
def battle_skip(*, code: str, owner: Owner) -> tuple[str, str] | None:
    """Skip the owner's served battle (its question counts as seen); returns the campaign's
    slug and the battle's mode, or None when the owner has no such battle."""
    battle = owner.battles().select_related("campaign").filter(code=code).first()
    if battle is None:
        return None
    Battle.objects.filter(pk=battle.pk, state=Battle.State.SERVED).update(
        state=Battle.State.SKIPPED
    )
    return battle.campaign.slug, battle.mode


def remaining_questions(*, campaign: Campaign, owner: Owner) -> int:
    seen = owner.battles().filter(campaign=campaign, question=OuterRef("pk"))
    return (
        Question.objects.filter(question_set__in=campaign.question_sets.filter(kind="uploaded"))
        .exclude(Exists(seen))
        .count()
    )
