"""Handing out battles: which question and which two answers an evaluator sees next."""

from __future__ import annotations

import datetime as dt
import functools
import random
import time
import uuid
from collections.abc import Sequence
from itertools import combinations
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef
from django.utils import timezone

from arena import sql
from arena.models import Battle, Campaign, Contestant, Question
from arena.services.access import Owner

rng = random.SystemRandom()


_OPEN_COLUMNS = sql.columns(Battle, exclude=["served_at", "expires_at"])


def open_battle(*, campaign: Campaign, owner: Owner) -> Battle | None:
    """This evaluator's unexpired, unvoted battle in the campaign, if any."""
    where, params = owner.battle_filter("b")
    row = sql.fetch_one(
        f"SELECT {sql.select_list(Battle, 'b', _OPEN_COLUMNS)} FROM arena_battle b "  # noqa: S608
        f"WHERE b.campaign_id = %(campaign)s AND {where} AND b.state = 'served' "
        "AND b.expires_at > %(now)s ORDER BY b.served_at DESC LIMIT 1",
        {
            **params,
            "campaign": campaign.pk,
            "now": sql.db_value(Battle, "expires_at", timezone.now()),
        },
    )
    return sql.from_columns(Battle, _OPEN_COLUMNS, row) if row is not None else None


_CONTESTANT_COLUMNS = sql.columns(Contestant, exclude=["created_at"])
_CONTESTANTS_SQL = f"""
SELECT {sql.select_list(Contestant, "c", _CONTESTANT_COLUMNS)}
FROM arena_contestant c JOIN arena_campaign_contestants cc ON cc.contestant_id = c.id
WHERE cc.campaign_id = %s AND c.active
"""  # noqa: S608  (column names from the model, no input)


def _active_contestants(campaign: Campaign) -> dict[int, Contestant]:
    rows = sql.fetch_all(_CONTESTANTS_SQL, [campaign.pk])
    found = (sql.from_columns(Contestant, _CONTESTANT_COLUMNS, row) for row in rows)
    return {c.pk: c for c in found}


def pair_order(campaign: Campaign, contestant_ids: Sequence[int]) -> list[tuple[int, int]]:
    """Every pair, fewest battles served first; ties in random order."""
    rows = sql.fetch_all(
        "SELECT contestant_lo_id, contestant_hi_id, battles FROM arena_pairload "
        "WHERE campaign_id = %s",
        [campaign.pk],
    )
    loads = {(lo, hi): n for lo, hi, n in rows}
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


# The sampler's one statement per pair: the first question at or after a random pivot (in
# primary-key order) that this campaign asks, this owner has not seen, and both contestants
# have a servable answer to, for their current configuration. Written as SQL because it is
# the hottest read of the product and the ORM spelling cost more to build than to run; the
# partial index answer_done_by_contestant gives the walk in question order from the pivot,
# the unique (question, contestant, config) index the probe of the other side, and
# battle_owner_question the "not seen" probe, so PostgreSQL touches a few rows, not all.
# The pivot is repeated on each side of the question join because PostgreSQL carries
# equalities across a join but not ranges: without them its merge joins started at the
# first question. Migration 0004's statistics tell it that a contestant and its
# configuration hash go together; without them it expected ~30 answers where there are
# ~500, and sorted them all instead of walking the index (5 ms instead of 0.5 ms).
# On PostgreSQL the two answers are locked FOR NO KEY UPDATE SKIP LOCKED: an evaluator
# asking at the same moment skips to the next question instead of getting the same battle
# (NO KEY: inserting battles that reference the answers is not blocked).
_SAMPLER_SQL = """
SELECT a1.question_id, a1.id, a2.id
FROM arena_answer a1
JOIN arena_answer a2
  ON a2.question_id = a1.question_id AND a2.contestant_id = %(hi)s
 AND a2.config_hash = %(hi_hash)s AND a2.status = 'done' {policy_a2}
JOIN arena_question q ON q.id = a1.question_id
JOIN arena_questionset qs ON qs.id = q.question_set_id AND qs.kind = 'uploaded'
JOIN arena_campaign_question_sets cqs
  ON cqs.questionset_id = qs.id AND cqs.campaign_id = %(campaign)s
WHERE a1.contestant_id = %(lo)s AND a1.config_hash = %(lo_hash)s AND a1.status = 'done'
  {policy_a1}
  AND a1.question_id {side} %(pivot)s AND q.id {side} %(pivot)s
  AND a2.question_id {side} %(pivot)s
  AND NOT EXISTS (
    SELECT 1 FROM arena_battle b
    WHERE b.campaign_id = %(campaign)s AND {owner} AND b.question_id = a1.question_id
  )
ORDER BY a1.question_id
LIMIT 1
{lock}
"""
_POLICY = "AND (NOT {t}.flagged OR {t}.released)"


@functools.cache
def _sampler_sql(*, exclude_flagged: bool, owner: str, wrapped: bool, lock: str) -> str:
    return _SAMPLER_SQL.format(
        policy_a1=_POLICY.format(t="a1") if exclude_flagged else "",
        policy_a2=_POLICY.format(t="a2") if exclude_flagged else "",
        side="<" if wrapped else ">=",
        owner=owner,
        lock=lock,
    )


def _sample(
    campaign: Campaign, owner: Owner, pair: tuple[Contestant, Contestant], pivot: int
) -> tuple[int, int, int] | None:
    """(question id, answer id of pair[0], answer id of pair[1]) or None for this pair."""
    lo, hi = pair
    where, owner_params = owner.battle_filter("b")
    params: dict[str, Any] = {
        **owner_params,
        "campaign": campaign.pk,
        "lo": lo.pk,
        "lo_hash": lo.config_hash,
        "hi": hi.pk,
        "hi_hash": hi.config_hash,
        "pivot": pivot,
    }
    flags: dict[str, Any] = {
        "exclude_flagged": campaign.identity_policy == Campaign.IdentityPolicy.EXCLUDE,
        "owner": where,
        "lock": sql.lock_clause("a1, a2", skip_locked=True, no_key=True),
    }
    for wrapped in (False, True):
        row = sql.fetch_one(_sampler_sql(wrapped=wrapped, **flags), params)
        if row is not None:
            return int(row[0]), int(row[1]), int(row[2])
    return None


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
    contestants = _active_contestants(campaign)
    if len(contestants) < 2:
        return None
    _commit_without_waiting_for_disk()
    pivot = _question_pivot(campaign)
    for lo, hi in pair_order(campaign, list(contestants)):
        found = _sample(campaign, owner, (contestants[lo], contestants[hi]), pivot)
        if found is not None:
            question_id, answer_lo, answer_hi = found
            return _create(campaign, owner, question_id, answer_lo, answer_hi, lo, hi)
    return None


def _commit_without_waiting_for_disk() -> None:
    """PostgreSQL: this transaction's commit returns before its WAL reaches the disk.

    Handing out a battle bumps the pair's counter, and concurrent callers picking the same
    pair wait on that row until the commit: with a synchronous commit, one disk flush each,
    in line. A crash can lose the last fraction of a second of served battles (their
    evaluators ask for another), never a vote: a vote commits synchronously, and flushing
    its WAL flushes the battle's before it.
    """
    if connection.vendor == "postgresql":
        sql.fetch_one("SELECT set_config('synchronous_commit', 'off', true)", [])


_INSERT_BATTLE_SQL = """
INSERT INTO arena_battle (code, campaign_id, evaluator_id, session_key, mode, question_id,
                          answer_a_id, answer_b_id, state, served_at, expires_at)
VALUES (%s, %s, %s, %s, 'stored', %s, %s, %s, 'served', %s, %s)
"""
# The pair's counter, created on its first battle. Last in the transaction: concurrent
# callers that picked the same pair wait on this row only until the commit.
_BUMP_PAIR_SQL = """
INSERT INTO arena_pairload (campaign_id, contestant_lo_id, contestant_hi_id, battles)
VALUES (%s, %s, %s, 1)
ON CONFLICT (campaign_id, contestant_lo_id, contestant_hi_id)
DO UPDATE SET battles = arena_pairload.battles + 1
"""


def bump_pair(campaign: Campaign, lo: int, hi: int) -> None:
    """Count one more battle served for this pair (lo < hi)."""
    sql.execute(_BUMP_PAIR_SQL, [campaign.pk, lo, hi])


def _create(
    campaign: Campaign,
    owner: Owner,
    question_id: int,
    answer_lo: int,
    answer_hi: int,
    lo: int,
    hi: int,
) -> Battle:
    a, b = (answer_lo, answer_hi) if rng.random() < 0.5 else (answer_hi, answer_lo)
    now = timezone.now()
    values = {
        "code": uuid.uuid4(),
        "campaign_id": campaign.pk,
        "evaluator_id": owner.user.pk if owner.user is not None else None,
        "session_key": "" if owner.user is not None else owner.session_key,
        "mode": Battle.Mode.STORED,
        "question_id": question_id,
        "answer_a_id": a,
        "answer_b_id": b,
        "state": Battle.State.SERVED,
        "served_at": now,
        "expires_at": now + dt.timedelta(seconds=settings.ARENA_BATTLE_TTL_SECONDS),
    }
    battle_id = sql.insert(
        _INSERT_BATTLE_SQL,
        [
            sql.db_value(Battle, "code", values["code"]),
            campaign.pk,
            values["evaluator_id"],
            values["session_key"],
            question_id,
            a,
            b,
            sql.db_value(Battle, "served_at", now),
            sql.db_value(Battle, "expires_at", values["expires_at"]),
        ],
    )
    bump_pair(campaign, lo, hi)
    return sql.from_row(Battle, {"id": battle_id, **values})


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
