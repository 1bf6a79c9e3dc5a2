"""Active pair sampling for campaigns that choose it (`Campaign.Sampling.ACTIVE`).

The plan (each pair's probability, `arena.ranking.active.active_plan`) is computed once per
rating snapshot, by `sampling_plan_update` after each recompute, and kept in the pairs'
`PairLoad.weight`; "next battle" only reads those rows (the one statement balanced sampling
reads too) and draws from them. A pair the plan does not know (a contestant added since) gets
the plan's share for new contestants. The battle records the inverse-propensity weight of the
pair it was served on (`Battle.sampling_weight`), which its vote carries into the ratings.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
from django.db import transaction

from arena.battles import store
from arena.models import Campaign, Contestant, PairLoad, RatingSnapshot
from arena.ranking.active import NEW_SHARE, active_plan
from arena.ratings.snapshot import Snapshot, SnapshotError, campaign_scope

Pair = tuple[int, int]


def pair_draw_order(
    *, campaign_id: int, contestant_ids: Sequence[int], rng: random.Random
) -> list[tuple[Pair, float]]:
    """Every pair of ``contestant_ids`` in the order to try them, drawn without replacement
    with the plan's probabilities, each with its inverse-propensity weight: 1 / (pairs x its
    probability). The first pair that has work is served; taking a later one (the earlier had
    no question left for this evaluator) is rare, and its own weight is recorded."""
    return draw_order(store.pair_weights(campaign_id=campaign_id), contestant_ids, rng)


def draw_order(
    plan: Mapping[Pair, float], contestant_ids: Sequence[int], rng: random.Random
) -> list[tuple[Pair, float]]:
    """`pair_draw_order` on a plan already read (pairs without a weight are new)."""
    pairs = list(combinations(sorted(contestant_ids), 2))
    known = [plan.get(p) for p in pairs]
    missing = sum(1 for w in known if w is None)
    planned = sum(w for w in known if w is not None)
    if planned <= 0:
        probability = [1.0 / len(pairs)] * len(pairs)
    else:
        new_share = NEW_SHARE if missing else 0.0
        scale = (1.0 - new_share) / planned
        probability = [new_share / missing if w is None else w * scale for w in known]
    # Efraimidis–Spirakis: sorting by u^(1/p) draws an order without replacement ∝ p.
    keys = [rng.random() ** (1.0 / p) if p > 0 else 0.0 for p in probability]
    order = sorted(range(len(pairs)), key=lambda k: keys[k], reverse=True)
    return [(pairs[k], 1.0 / (len(pairs) * probability[k])) for k in order if probability[k] > 0]


def _latest_snapshot(campaign_id: int) -> Snapshot | None:
    payload = (
        RatingSnapshot.objects.filter(campaign_id=campaign_id, scope=campaign_scope(campaign_id))
        .order_by("-computed_at", "-id")
        .values_list("payload", flat=True)
        .first()
    )
    if payload is None:
        return None
    try:
        return Snapshot.from_json(payload)
    except SnapshotError:
        return None


@transaction.atomic
def sampling_plan_update(*, campaign_id: int) -> dict[Pair, float]:
    """Store the plan of the campaign's latest snapshot in its pairs' rows (and clear it when
    the campaign samples balanced). Returns the stored probabilities (empty when cleared)."""
    campaign = Campaign.objects.get(pk=campaign_id)
    PairLoad.objects.filter(campaign_id=campaign_id).update(weight=None)
    if campaign.sampling != Campaign.Sampling.ACTIVE:
        return {}
    contestants = sorted(store.active_contestants(campaign_id=campaign_id).values(), key=_pk)
    if len(contestants) < 2:
        return {}
    n = len(contestants)
    ratings = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    votes = np.zeros(n, dtype=np.int64)
    snapshot = _latest_snapshot(campaign_id)
    board = snapshot.leaderboard if snapshot is not None else None
    if board is not None:
        position = {c.name: k for k, c in enumerate(contestants)}
        for row in board.contestants:
            k = position.get(row.name)
            if k is not None:
                ratings[k], lower[k], upper[k], votes[k] = (
                    row.rating,
                    row.ci_lower,
                    row.ci_upper,
                    row.votes,
                )
    plan = active_plan(
        ratings, lower, upper, votes, floor=campaign.sampling_floor, top=campaign.sampling_top
    )
    weights = {
        (contestants[i].pk, contestants[j].pk): float(p)
        for i, j, p in zip(
            plan.first.tolist(), plan.second.tolist(), plan.probability.tolist(), strict=True
        )
    }
    PairLoad.objects.bulk_create(
        [
            PairLoad(campaign_id=campaign_id, contestant_lo_id=lo, contestant_hi_id=hi, weight=w)
            for (lo, hi), w in weights.items()
        ],
        update_conflicts=True,
        unique_fields=["campaign", "contestant_lo", "contestant_hi"],
        update_fields=["weight"],
    )
    return weights


def _pk(contestant: Contestant) -> int:
    return int(contestant.pk)
