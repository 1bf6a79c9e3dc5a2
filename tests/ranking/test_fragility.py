from __future__ import annotations

import numpy as np
import pytest

from arena.ranking import aggregate, bootstrap_theta, bt_fit, sandwich_interval, style_control
from arena.ranking.bt import newton
from arena.ranking.fragility import _counts_without, _influence, _removal_order, top_fragility
from tests.ranking.conftest import ArenaCounts, draw_votes


@pytest.fixture(scope="module")
def arena_fit(arena_counts: ArenaCounts):  # type: ignore[no-untyped-def]
    return bt_fit(arena_counts.cells)


def _gap_without(fit, upper: int, lower: int, k: int) -> float:  # type: ignore[no-untyped-def]
    """The refitted gap after removing the first ``k`` votes of the first-order order."""
    counts = fit.data.cell_count.astype(np.float64)
    order, offer = _removal_order(_influence(fit, fit.theta, counts, upper, lower), counts)
    reduced = _counts_without(counts, order, offer, k)
    w1, w2 = fit.data.wins(reduced[None, :])
    theta = newton(fit.theta[None, :], w1, w2, fit.data, fit.alpha)[0]
    return float(theta[upper] - theta[lower])


def test_the_top_of_the_public_arena_swaps_after_the_votes_found_and_not_before(
    arena_counts: ArenaCounts, arena_fit
) -> None:  # type: ignore[no-untyped-def]
    order = [int(k) for k in np.argsort(-arena_fit.theta)]

    found = top_fragility(arena_fit, order, top=3)

    assert [(f.upper, f.lower) for f in found] == [(order[0], order[1]), (order[1], order[2])]
    first = found[0]
    assert arena_counts.names[first.upper] == "chatgpt-4o-latest"
    assert first.total == 1_670_250
    assert first.votes is not None
    # A handful of hundreds of 1.67 M votes: the top is far less robust than its interval says.
    assert 10 < first.votes < 0.001 * first.total
    # The first-order estimate is close to what the refits confirm.
    assert first.estimate is not None
    assert abs(first.estimate - first.votes) <= 0.2 * first.votes
    # Checked by refitting: without those votes #2 is ahead; one vote fewer and it is not.
    assert _gap_without(arena_fit, first.upper, first.lower, first.votes) < 0
    assert _gap_without(arena_fit, first.upper, first.lower, first.votes - 1) > 0


def test_a_lead_no_share_of_votes_can_undo_is_reported_as_none() -> None:
    rng = np.random.default_rng(3)
    votes = draw_votes(np.array([3.0, 0.0, -0.5]), 3000, rng)
    fit = bt_fit(aggregate(votes.a, votes.b, votes.outcome, votes.n_models))

    (first, _second) = top_fragility(fit, [0, 1, 2], max_share=0.01)

    assert first.votes is None
    assert first.total == 3000


def test_pairs_in_separate_pieces_are_not_compared() -> None:
    a, b = np.array([0, 0, 2, 2]), np.array([1, 1, 3, 3])
    fit = bt_fit(aggregate(a, b, np.array([0, 0, 0, 1]), 4))
    order = [int(k) for k in np.argsort(-fit.theta)]
    pairs = top_fragility(fit, order)
    assert all(fit.component[f.upper] == fit.component[f.lower] for f in pairs)


def test_threaded_bootstrap_depends_on_the_seed_only_and_agrees_in_law(
    arena_fit,
) -> None:  # type: ignore[no-untyped-def]
    one = bootstrap_theta(arena_fit, rounds=250, seed=5, workers=1)
    two = bootstrap_theta(arena_fit, rounds=250, seed=5, workers=2)
    sequential = bootstrap_theta(arena_fit, rounds=250, seed=5)

    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, sequential)
    spread = one.std(axis=0)
    assert np.allclose(spread, sequential.std(axis=0), rtol=0.3)


def test_style_control_intervals_match_the_raw_sandwich_when_style_is_noise() -> None:
    rng = np.random.default_rng(11)
    votes = draw_votes(np.array([0.6, 0.2, 0.0, -0.4, -0.8]), 20_000, rng, tie_share=0.2)
    features = rng.integers(0, 50, size=(votes.a.size, 2, 4)).astype(np.float64)
    names = ["a", "b", "c", "d", "e"]

    style = style_control(
        votes.a, votes.b, votes.outcome, features[:, 0], features[:, 1], names, intervals=True
    )

    assert style.ci_lower is not None
    assert style.ci_upper is not None
    assert np.all(style.ci_lower < style.ratings)
    assert np.all(style.ratings < style.ci_upper)
    raw_low, raw_high = sandwich_interval(bt_fit(aggregate(votes.a, votes.b, votes.outcome, 5)))
    np.testing.assert_allclose(style.ci_upper - style.ci_lower, raw_high - raw_low, rtol=0.1)
    payload = style.to_json()["contestants"][0]
    assert {"ci_lower", "ci_upper"} <= set(payload)
