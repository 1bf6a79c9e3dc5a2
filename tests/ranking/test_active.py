"""Active sampling maths: inverse-propensity weights in the fit, the sampling plan, and a
small simulated campaign as the unbiasedness test."""

from __future__ import annotations

import numpy as np
import pytest

from arena.ranking import aggregate, bootstrap_ratings, bt_fit, leaderboard, sandwich_interval
from arena.ranking.active import active_plan, all_pairs, pair_ipw
from benchmarks import sampling


def _votes(seed: int = 1, n: int = 5, size: int = 3000) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    strengths = np.linspace(1200, 900, n)
    first, second = all_pairs(n)
    pairs = rng.integers(0, first.size, size)
    return sampling.simulate_votes(rng, strengths, first[pairs], second[pairs])


def test_unit_weights_give_exactly_todays_ratings_and_intervals() -> None:
    a, b, o = _votes()
    plain = aggregate(a, b, o, 5)
    weighted = aggregate(a, b, o, 5, weights=np.ones(a.size))
    assert weighted.weight is not None
    assert plain.weight is None
    fit, wfit = bt_fit(plain), bt_fit(weighted)
    assert np.array_equal(fit.theta, wfit.theta)
    assert np.array_equal(bootstrap_ratings(fit, rounds=50), bootstrap_ratings(wfit, rounds=50))
    assert np.array_equal(sandwich_interval(fit)[0], sandwich_interval(wfit)[0])
    names = [f"m{k}" for k in range(5)]
    assert (
        leaderboard(plain, names, rounds=30).to_json()
        == leaderboard(weighted, names, rounds=30).to_json()
    )


def test_a_weight_of_two_counts_like_the_same_votes_twice() -> None:
    a, b, o = _votes(size=600)
    doubled = aggregate(np.concatenate([a, a]), np.concatenate([b, b]), np.concatenate([o, o]), 5)
    weighted = aggregate(a, b, o, 5, weights=np.full(a.size, 2.0))
    assert np.allclose(bt_fit(doubled).theta, bt_fit(weighted).theta, atol=1e-9)


def test_weights_change_the_fit_where_they_differ() -> None:
    a, b, o = _votes(size=600)
    weight = np.where(a == 0, 3.0, 1.0)
    plain = bt_fit(aggregate(a, b, o, 5)).theta
    weighted = bt_fit(aggregate(a, b, o, 5, weights=weight)).theta
    assert not np.allclose(plain, weighted)


def test_bad_weights_are_refused() -> None:
    a, b, o = _votes(size=10)
    with pytest.raises(ValueError, match="weights"):
        aggregate(a, b, o, 5, weights=np.zeros(a.size))
    with pytest.raises(ValueError, match="weights"):
        aggregate(a, b, o, 5, weights=np.ones(3))


def test_plan_is_a_distribution_with_the_uniform_floor() -> None:
    ratings = np.array([1300.0, 1290, 1200, 1100, 1000, 900])
    half = np.full(6, 30.0)
    votes = np.full(6, 500)
    plan = active_plan(ratings, ratings - half, ratings + half, votes, floor=0.1)
    assert plan.probability.sum() == pytest.approx(1.0)
    k = plan.probability.size
    assert plan.probability.min() >= 0.1 / k - 1e-12
    assert plan.ipw().max() <= 1 / 0.1 + 1e-9
    assert np.allclose(pair_ipw(np.full(k, 1 / k)), 1.0)


def test_plan_favours_the_unresolved_top_gaps() -> None:
    # Ranks 1-2 overlap, 2-3 and 3-4 overlap; the bottom is far apart (and out of the top 3).
    ratings = np.array([1300.0, 1290, 1280, 1270, 1000, 700])
    half = np.full(6, 20.0)
    plan = active_plan(ratings, ratings - half, ratings + half, np.full(6, 400), top=3)
    pairs = zip(plan.first.tolist(), plan.second.tolist(), strict=True)
    p = dict(zip(pairs, plan.probability, strict=True))
    uniform = 1 / len(p)
    for top_pair in ((0, 1), (1, 2), (2, 3)):
        assert p[top_pair] > 1.2 * uniform > p[(4, 5)]


def test_new_contestants_get_their_share_at_once() -> None:
    ratings = np.array([1300.0, 1200, 1100, np.nan])
    half = np.array([20.0, 20, 20, np.nan])
    votes = np.array([500, 500, 500, 0])
    plan = active_plan(ratings, ratings - half, ratings + half, votes, new_share=0.5)
    touches = plan.second == 3
    assert plan.probability[touches].sum() == pytest.approx(0.5)


def test_plan_without_ratings_is_uniform() -> None:
    nan = np.full(4, np.nan)
    plan = active_plan(nan, nan, nan, np.zeros(4, dtype=np.int64))
    assert np.allclose(plan.probability, 1 / 6)


def test_active_sampling_simulation_is_unbiased_and_its_intervals_cover() -> None:
    """Small-scale `benchmarks.sampling`: over many simulated active campaigns the weighted
    ratings centre on the true strengths (mean error within 3 standard errors and 8 points)
    and the 95% intervals cover the truth at least 85% of the time."""
    strengths = sampling.table_strengths(6)
    mean, se = sampling.bias(strengths, "active", seeds=16, votes=1500, batch=250)
    assert np.all(np.abs(mean) <= np.maximum(3 * se, 1.0)), (mean, se)
    assert np.all(np.abs(mean) < 8.0)
    run = sampling.campaign(
        strengths, "active", seed=3, batch=250, max_votes=3000, rounds=100, stop_when_done=False
    )
    assert run.covered / run.intervals >= 0.85
