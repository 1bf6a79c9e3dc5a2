"""Confidence intervals: coverage, cell bootstrap = row bootstrap, sampler law, ranks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pytest

from arena.ranking import (
    RATING_PER_THETA,
    aggregate,
    bootstrap_ratings,
    bt_fit,
    bt_ratings,
    cells_from_pair_counts,
    interval_ranks,
    multinomial,
    percentile_interval,
    sandwich_interval,
    to_ratings,
)

if TYPE_CHECKING:
    from tests.ranking.conftest import Votes

TRUE_THETA = np.array([-1.0, -0.7, -0.3, 0.0, 0.1, 0.4, 0.6, 0.9])
TRUE_RATINGS = 1000.0 + RATING_PER_THETA * (TRUE_THETA - TRUE_THETA.mean())


def test_bootstrap_intervals_cover_true_ratings_in_repeated_draws(
    make_votes: Callable[..., Votes],
) -> None:
    covered = 0
    total = 0
    for draw in range(40):
        votes = make_votes(TRUE_THETA, 2_000, np.random.default_rng(100 + draw))
        fit = bt_fit(aggregate(votes.a, votes.b, votes.outcome, votes.n_models))
        lower, upper = percentile_interval(bootstrap_ratings(fit, rounds=200, seed=draw))
        covered += int(((lower <= TRUE_RATINGS) & (upper >= TRUE_RATINGS)).sum())
        total += TRUE_RATINGS.size
    assert covered / total >= 0.90


def test_sandwich_intervals_cover_true_ratings_in_repeated_draws(
    make_votes: Callable[..., Votes],
) -> None:
    covered = 0
    for draw in range(40):
        votes = make_votes(TRUE_THETA, 2_000, np.random.default_rng(200 + draw))
        fit = bt_fit(aggregate(votes.a, votes.b, votes.outcome, votes.n_models))
        lower, upper = sandwich_interval(fit)
        covered += int(((lower <= TRUE_RATINGS) & (upper >= TRUE_RATINGS)).sum())
    assert covered / (40 * TRUE_RATINGS.size) >= 0.90


def test_cell_bootstrap_and_row_bootstrap_agree_in_distribution(
    make_votes: Callable[..., Votes],
) -> None:
    votes = make_votes(TRUE_THETA[:4], 400, np.random.default_rng(7), tie_share=0.15)
    n = votes.n_models
    cells = aggregate(votes.a, votes.b, votes.outcome, n)
    rounds = 1500
    by_cells = bootstrap_ratings(bt_fit(cells), rounds=rounds, seed=11)

    rng = np.random.default_rng(12)
    by_rows = np.empty((rounds, n))
    for r in range(rounds):
        pick = rng.integers(0, votes.a.size, votes.a.size)
        by_rows[r] = bt_ratings(aggregate(votes.a[pick], votes.b[pick], votes.outcome[pick], n))

    spread = by_rows.std(axis=0)
    assert by_cells.std(axis=0) == pytest.approx(spread, rel=0.1)
    assert np.abs(by_cells.mean(axis=0) - by_rows.mean(axis=0)).max() < 0.15 * spread.min()
    for q in (2.5, 50.0, 97.5):
        gap = np.abs(np.percentile(by_cells, q, axis=0) - np.percentile(by_rows, q, axis=0))
        assert (gap < 0.35 * spread).all(), q


def test_poisson_sampler_has_the_multinomial_law() -> None:
    p = np.array([0.5, 0.2, 0.15, 0.1, 0.04, 0.01])
    n = 3_000
    draws = multinomial(np.random.default_rng(5), n, p, size=20_000)
    assert (draws.sum(axis=1) == n).all()
    assert (draws >= 0).all()
    expected_cov = n * (np.diag(p) - np.outer(p, p))
    assert draws.mean(axis=0) == pytest.approx(n * p, rel=0.01)
    assert np.cov(draws, rowvar=False) == pytest.approx(expected_cov, rel=0.05, abs=2.0)
    reference = np.random.default_rng(6).multinomial(n, p, size=20_000)
    for q in (1, 25, 50, 75, 99):
        assert (
            np.abs(np.percentile(draws, q, axis=0) - np.percentile(reference, q, axis=0)).max()
            <= 2.0
        )


def test_bootstrap_is_reproducible_from_its_seed() -> None:
    cells = cells_from_pair_counts([[0, 1], [1, 2]], [[30, 20, 5, 1], [10, 12, 3, 0]], 3)
    fit = bt_fit(cells)
    first = bootstrap_ratings(fit, rounds=50, seed=3)
    assert np.array_equal(first, bootstrap_ratings(fit, rounds=50, seed=3))
    assert not np.array_equal(first, bootstrap_ratings(fit, rounds=50, seed=4))


@pytest.mark.parametrize(
    ("pairs", "counts"),
    [
        ([[0, 1], [1, 2], [0, 2]], [[30, 20, 5, 1], [10, 12, 3, 0], [2, 9, 0, 0]]),
        # 0 only wins and 3 has one vote, so some rounds leave the chord method for Newton.
        (
            [[0, 1], [0, 2], [1, 2], [2, 3]],
            [[6, 0, 0, 0], [2, 0, 0, 0], [10, 8, 2, 0], [1, 0, 0, 0]],
        ),
    ],
)
def test_bootstrap_rounds_are_exact_fits_of_resampled_counts(
    pairs: list[list[int]], counts: list[list[int]]
) -> None:
    n = int(np.max(pairs)) + 1
    fit = bt_fit(cells_from_pair_counts(pairs, counts, n))
    data = fit.data
    rounds = 40
    samples = bootstrap_ratings(fit, rounds=rounds, seed=9)
    draws = multinomial(
        np.random.default_rng(9), data.total, data.cell_count / data.total, size=rounds
    )
    for row, drawn in enumerate(draws):
        resampled = cells_from_pair_counts(
            np.column_stack([data.first[data.cell_pair], data.second[data.cell_pair]]),
            np.eye(4, dtype=np.int64)[data.cell_class] * drawn[:, None],
            n,
        )
        # A contestant that drew no votes is its own piece in a direct fit, at the mean.
        direct = bt_fit(resampled)
        theta = to_ratings(direct.theta, np.zeros(n, dtype=np.int64))
        assert samples[row] == pytest.approx(theta, abs=1e-3)


def test_sandwich_and_bootstrap_widths_agree_on_well_specified_data(
    make_votes: Callable[..., Votes],
) -> None:
    votes = make_votes(TRUE_THETA, 20_000, np.random.default_rng(8))
    fit = bt_fit(aggregate(votes.a, votes.b, votes.outcome, votes.n_models))
    low_b, high_b = percentile_interval(bootstrap_ratings(fit, rounds=1000, seed=1))
    low_s, high_s = sandwich_interval(fit)
    assert high_s - low_s == pytest.approx(high_b - low_b, rel=0.15)


def test_anchor_has_a_degenerate_interval_and_others_do_not() -> None:
    from arena.ranking import Anchor

    cells = cells_from_pair_counts([[0, 1], [1, 2]], [[30, 20, 5, 1], [10, 12, 3, 0]], 3)
    fit = bt_fit(cells)
    samples = bootstrap_ratings(fit, rounds=100, seed=0, anchor=Anchor(1, 1114.0))
    lower, upper = percentile_interval(samples)
    assert lower[1] == upper[1] == 1114.0
    assert (upper[[0, 2]] - lower[[0, 2]] > 10).all()
    low_s, high_s = sandwich_interval(fit, anchor=Anchor(1, 1114.0))
    assert low_s[1] == pytest.approx(1114.0)
    assert high_s[1] == pytest.approx(1114.0)


def test_rank_counts_contestants_whose_lower_bound_beats_this_upper_bound() -> None:
    lower = np.array([1200.0, 1150.0, 1100.0, 900.0, 1000.0])
    upper = np.array([1300.0, 1250.0, 1160.0, 1000.0, 1100.0])
    component = np.array([0, 0, 0, 0, 1])
    # 2 is beaten by 0 only (1150 is not above 1160); 3 by 0, 1, 2; 4 is alone in its piece.
    assert interval_ranks(lower, upper, component).tolist() == [1, 1, 2, 4, 1]


def test_bootstrap_without_votes_returns_the_point_estimate() -> None:
    fit = bt_fit(aggregate([], [], [], 2))
    samples = bootstrap_ratings(fit, rounds=10)
    assert samples.shape == (10, 2)
    assert (samples == 1000.0).all()
    assert to_ratings(fit.theta, fit.component).tolist() == [1000.0, 1000.0]
