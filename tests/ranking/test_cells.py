"""Aggregation of per-vote arrays into (pair, outcome) cells."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from arena.ranking import Outcome, aggregate, cells_from_pair_counts


def test_aggregate_counts_every_side_pair_and_outcome() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, 5_000)
    b = (a + rng.integers(1, 6, 5_000)) % 6
    o = rng.integers(0, 4, 5_000)
    cells = aggregate(a, b, o, 6)
    expected = Counter(zip(a.tolist(), b.tolist(), o.tolist(), strict=True))
    got = dict(
        zip(
            zip(cells.i.tolist(), cells.j.tolist(), cells.outcome.tolist(), strict=True),
            cells.count.tolist(),
            strict=True,
        )
    )
    assert got == dict(expected)
    assert cells.total == 5_000
    assert cells.sided


def test_votes_per_model_counts_both_sides() -> None:
    cells = aggregate([0, 0, 1], [1, 2, 2], [0, 1, 2], 4)
    assert cells.votes_per_model().tolist() == [2, 2, 2, 0]


def test_pair_counts_map_columns_to_outcomes() -> None:
    cells = cells_from_pair_counts([[2, 0]], [[4, 3, 0, 1]], 3)
    assert not cells.sided
    rows = set(
        zip(
            cells.i.tolist(),
            cells.j.tolist(),
            cells.outcome.tolist(),
            cells.count.tolist(),
            strict=True,
        )
    )
    assert rows == {
        (2, 0, Outcome.A_WINS, 4),
        (2, 0, Outcome.B_WINS, 3),
        (2, 0, Outcome.BOTH_BAD, 1),
    }


def test_restrict_keeps_only_votes_among_the_chosen_and_reindexes() -> None:
    cells = aggregate([0, 1, 2, 3], [1, 2, 3, 0], [0, 0, 1, 2], 4)
    sub = cells.restrict(np.array([1, 2, 3]))
    assert sub.n_models == 3
    assert sorted(zip(sub.i.tolist(), sub.j.tolist(), strict=True)) == [(0, 1), (1, 2)]


def test_aggregate_handles_many_contestants_without_a_dense_table() -> None:
    cells = aggregate([0, 2999, 0], [2999, 1, 2999], [0, 1, 0], 3_000)
    assert sorted(cells.count.tolist()) == [1, 2]


@pytest.mark.parametrize(
    ("a", "b", "o", "message"),
    [
        ([0, 1], [1], [0, 0], "length"),
        ([0], [3], [0], "range"),
        ([0], [1], [4], "outcome"),
        ([1], [1], [0], "itself"),
        ([0.5], [1], [0], "integers"),
    ],
)
def test_aggregate_rejects_bad_votes(
    a: list[float], b: list[int], o: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        aggregate(a, b, o, 3)


def test_empty_votes_give_empty_cells() -> None:
    cells = aggregate([], [], [], 3)
    assert cells.total == 0
    assert cells.votes_per_model().tolist() == [0, 0, 0]


def test_counts_weigh_rows_like_repeated_votes() -> None:
    a, b, o, counts = [0, 1, 0, 2], [1, 0, 1, 0], [0, 2, 0, 3], [3, 1, 2, 0]
    weighted = aggregate(a, b, o, 3, counts=counts)
    repeated = aggregate(np.repeat(a, counts), np.repeat(b, counts), np.repeat(o, counts), 3)
    for field in ("i", "j", "outcome", "count"):
        assert getattr(weighted, field).tolist() == getattr(repeated, field).tolist()
    with pytest.raises(ValueError, match="negative"):
        aggregate([0], [1], [0], 2, counts=[-1])
