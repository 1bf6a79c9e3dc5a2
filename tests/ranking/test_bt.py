"""Bradley–Terry point estimates: recovery, agreement with choix, edge cases, invariances."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import choix
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.ranking import (
    RATING_PER_THETA,
    Anchor,
    aggregate,
    bt_fit,
    bt_ratings,
    cells_from_pair_counts,
    multinomial,
    to_ratings,
)
from arena.ranking.bt import chord, newton

if TYPE_CHECKING:
    from tests.ranking.conftest import ArenaCounts, Votes

TRUE_THETA = np.array([-1.2, -0.6, -0.2, 0.0, 0.3, 0.5, 0.9, 1.3])


def centred_ratings(theta: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    result: npt.NDArray[np.float64] = 1000.0 + RATING_PER_THETA * (theta - theta.mean())
    return result


def count_matrix(
    n: int, pairs: npt.NDArray[np.int64], counts: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """choix's dense input: row beat column, ties and both-bad as half a win each way."""
    half = 0.5 * (counts[:, 2] + counts[:, 3])
    matrix = np.zeros((n, n))
    np.add.at(matrix, (pairs[:, 0], pairs[:, 1]), counts[:, 0] + half)
    np.add.at(matrix, (pairs[:, 1], pairs[:, 0]), counts[:, 1] + half)
    return matrix


def test_synthetic_strengths_are_recovered(make_votes: Callable[..., Votes]) -> None:
    votes = make_votes(TRUE_THETA, 200_000, np.random.default_rng(1))
    cells = aggregate(votes.a, votes.b, votes.outcome, votes.n_models)
    ratings = bt_ratings(cells)
    # About 50,000 votes each: a standard error near 2 points.
    assert np.abs(ratings - centred_ratings(TRUE_THETA)).max() < 8.0
    assert ratings.mean() == pytest.approx(1000.0)


def test_ties_and_both_bad_count_as_half_a_win_each_way() -> None:
    # 3 wins for 0, 1 win for 1, 2 ties, 2 both-bad: 0 has 5 of 8 half-wins.
    cells = cells_from_pair_counts([[0, 1]], [[3, 1, 2, 2]], 2)
    fit = bt_fit(cells)
    assert fit.theta[0] - fit.theta[1] == pytest.approx(np.log(5 / 3), abs=1e-4)
    dropped = bt_fit(cells, drop_both_bad=True)
    assert dropped.theta[0] - dropped.theta[1] == pytest.approx(np.log(4 / 2), abs=1e-4)


def test_fit_agrees_with_choix_optimiser_on_the_same_penalised_likelihood(
    make_votes: Callable[..., Votes],
) -> None:
    # Doubling every count makes half wins whole: a decisive vote is two (winner, loser) rows,
    # a tie one row each way. That doubles the likelihood, so choix's penalty doubles too.
    votes = make_votes(TRUE_THETA[:6], 600, np.random.default_rng(2), tie_share=0.2)
    alpha = 0.01
    rows: list[tuple[int, int]] = []
    for a, b, o in zip(votes.a.tolist(), votes.b.tolist(), votes.outcome.tolist(), strict=True):
        if o == 0:
            rows += [(a, b), (a, b)]
        elif o == 1:
            rows += [(b, a), (b, a)]
        else:
            rows += [(a, b), (b, a)]
    theirs = choix.opt_pairwise(6, rows, alpha=2 * alpha, method="Newton-CG", tol=1e-12)
    ours = bt_fit(aggregate(votes.a, votes.b, votes.outcome, 6), alpha=alpha).theta
    assert np.abs(centred_ratings(ours) - centred_ratings(theirs)).max() < 0.01


def test_fit_agrees_with_choix_on_the_chatbot_arena_counts(arena_counts: ArenaCounts) -> None:
    n = len(arena_counts.names)
    matrix = count_matrix(n, arena_counts.pairs, arena_counts.counts.astype(np.float64))
    theirs = choix.ilsr_pairwise_dense(matrix, alpha=0.0, max_iter=10_000, tol=1e-12)
    ours = bt_fit(arena_counts.cells).theta
    assert np.abs(centred_ratings(ours) - centred_ratings(theirs)).max() < 0.01


def test_batched_bootstrap_solver_agrees_with_choix_on_resampled_counts(
    arena_counts: ArenaCounts,
) -> None:
    fit = bt_fit(arena_counts.cells)
    data = fit.data
    draws = multinomial(np.random.default_rng(3), data.total, data.cell_count / data.total, size=3)
    w1, w2 = data.wins(draws)
    start = np.broadcast_to(fit.theta, (3, data.n_models))
    ours, converged = chord(
        start, w1, w2, data, fit.alpha, np.linalg.inv(fit.hessian).astype(np.float64), tol=1e-9
    )
    assert converged.all()
    newton_result = newton(start, w1, w2, data, fit.alpha)
    assert np.abs(ours - newton_result).max() * RATING_PER_THETA < 1e-5
    for row in range(3):
        matrix = np.zeros((data.n_models, data.n_models))
        matrix[data.first, data.second] = w1[row]
        matrix[data.second, data.first] = w2[row]
        theirs = choix.ilsr_pairwise_dense(matrix, alpha=0.0, max_iter=10_000, tol=1e-12)
        assert np.abs(centred_ratings(ours[row]) - centred_ratings(theirs)).max() < 0.01


def test_no_votes_gives_every_contestant_mean_rating_in_its_own_piece() -> None:
    cells = aggregate([], [], [], 3)
    fit = bt_fit(cells)
    assert fit.component.tolist() == [0, 1, 2]
    assert to_ratings(fit.theta, fit.component).tolist() == [1000.0, 1000.0, 1000.0]


def test_no_contestants_gives_empty_ratings() -> None:
    assert bt_ratings(aggregate([], [], [], 0)).shape == (0,)


def test_one_contestant_is_rated_at_the_mean() -> None:
    assert bt_ratings(aggregate([], [], [], 1)).tolist() == [1000.0]


def test_contestant_that_only_won_gets_a_finite_top_rating() -> None:
    # The ridge keeps the maximum finite; without it the likelihood rises for ever.
    cells = cells_from_pair_counts(
        [[0, 1], [0, 2], [1, 2]], [[5, 0, 0, 0], [4, 0, 0, 0], [3, 3, 1, 0]], 3
    )
    ratings = bt_ratings(cells)
    assert np.isfinite(ratings).all()
    assert ratings[0] > ratings[1] + 400
    assert ratings[0] > ratings[2] + 400


def test_contestant_that_only_lost_gets_a_finite_bottom_rating() -> None:
    cells = cells_from_pair_counts([[0, 1], [1, 2]], [[0, 7, 0, 0], [2, 2, 0, 0]], 3)
    ratings = bt_ratings(cells)
    assert np.isfinite(ratings).all()
    assert ratings[0] < min(ratings[1], ratings[2]) - 400


def test_ties_only_rate_everyone_equal() -> None:
    cells = cells_from_pair_counts(
        [[0, 1], [1, 2], [0, 2]], [[0, 0, 4, 0], [0, 0, 1, 3], [0, 0, 2, 0]], 3
    )
    assert bt_ratings(cells) == pytest.approx([1000.0, 1000.0, 1000.0], abs=1e-9)


def test_disconnected_pieces_are_rated_separately_each_around_the_mean() -> None:
    pairs = [[0, 1], [2, 3], [3, 4]]
    counts = [[30, 10, 0, 0], [5, 5, 0, 0], [20, 2, 1, 0]]
    cells = cells_from_pair_counts(pairs, counts, 6)
    fit = bt_fit(cells)
    # Largest piece first; an isolated contestant is a piece of its own.
    assert fit.component.tolist() == [1, 1, 0, 0, 0, 2]
    ratings = to_ratings(fit.theta, fit.component)
    assert ratings[:2].mean() == pytest.approx(1000.0)
    assert ratings[2:5].mean() == pytest.approx(1000.0)
    assert ratings[5] == pytest.approx(1000.0)
    alone = bt_ratings(cells_from_pair_counts([[0, 1]], [[30, 10, 0, 0]], 2))
    assert ratings[:2] == pytest.approx(alone, abs=1e-6)


def test_anchor_pins_its_contestant_and_only_its_piece() -> None:
    cells = cells_from_pair_counts([[0, 1], [2, 3]], [[30, 10, 0, 0], [5, 15, 0, 0]], 4)
    fit = bt_fit(cells)
    ratings = to_ratings(fit.theta, fit.component, Anchor(index=1, rating=1114.0))
    assert ratings[1] == 1114.0
    assert ratings[0] - ratings[1] == pytest.approx(RATING_PER_THETA * np.log(3), abs=0.01)
    assert ratings[2:].mean() == pytest.approx(1000.0)


def test_fit_rejects_non_positive_ridge() -> None:
    with pytest.raises(ValueError, match="alpha"):
        bt_fit(aggregate([0], [1], [0], 2), alpha=0.0)


vote_lists = st.lists(
    st.tuples(st.integers(0, 4), st.integers(1, 4), st.integers(0, 3)), min_size=1, max_size=40
)


def _arrays(raw: list[tuple[int, int, int]]) -> tuple[list[int], list[int], list[int]]:
    a = [x for x, _, _ in raw]
    b = [(x + step) % 5 for x, step, _ in raw]
    return a, b, [o for _, _, o in raw]


@settings(max_examples=40, deadline=None, database=None)
@given(vote_lists)
def test_swapping_sides_and_flipping_outcomes_leaves_ratings_unchanged(
    raw: list[tuple[int, int, int]],
) -> None:
    a, b, o = _arrays(raw)
    flipped = [{0: 1, 1: 0}.get(x, x) for x in o]
    original = bt_ratings(aggregate(a, b, o, 5))
    swapped = bt_ratings(aggregate(b, a, flipped, 5))
    assert original == pytest.approx(swapped, abs=1e-6)


@settings(max_examples=40, deadline=None, database=None)
@given(vote_lists, st.permutations(range(5)))
def test_relabelling_contestants_permutes_their_ratings(
    raw: list[tuple[int, int, int]], permutation: list[int]
) -> None:
    a, b, o = _arrays(raw)
    perm = np.asarray(permutation)
    original = bt_ratings(aggregate(a, b, o, 5))
    relabelled = bt_ratings(aggregate(perm[a], perm[b], o, 5))
    assert relabelled[perm] == pytest.approx(original, abs=1e-6)


@settings(max_examples=40, deadline=None, database=None)
@given(vote_lists, st.floats(-3000, 3000))
def test_moving_the_anchor_shifts_its_whole_piece_by_the_same_amount(
    raw: list[tuple[int, int, int]], shift: float
) -> None:
    a, b, o = _arrays(raw)
    fit = bt_fit(aggregate(a, b, o, 5))
    base = to_ratings(fit.theta, fit.component, Anchor(a[0], 1114.0))
    moved = to_ratings(fit.theta, fit.component, Anchor(a[0], 1114.0 + shift))
    piece = fit.component == fit.component[a[0]]
    assert moved[piece] - base[piece] == pytest.approx(np.full(piece.sum(), shift), abs=1e-6)
    assert moved[~piece] == pytest.approx(base[~piece])
