"""The leaderboard value and its JSON payload, including the edge cases."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.ranking import Outcome, aggregate, cells_from_pair_counts, elo_online, leaderboard

if TYPE_CHECKING:
    from tests.ranking.conftest import Votes

NAMES = ["alpha", "bravo", "charlie", "delta"]


def _board_votes(make_votes: Callable[..., Votes]) -> Votes:
    return make_votes(
        np.array([-0.5, 0.0, 0.3, 0.8]),
        3_000,
        np.random.default_rng(0),
        tie_share=0.1,
        both_bad_share=0.05,
    )


def test_payload_is_json_serialisable_and_ordered_by_rating(
    make_votes: Callable[..., Votes],
) -> None:
    votes = _board_votes(make_votes)
    cells = aggregate(votes.a, votes.b, votes.outcome, 4)
    elo = elo_online(votes.a, votes.b, votes.outcome, 4)
    board = leaderboard(cells, NAMES, rounds=200, seed=1, online_elo=elo)
    payload = json.loads(json.dumps(board.to_json(), allow_nan=False))
    assert [c["name"] for c in payload["contestants"]] == ["delta", "charlie", "bravo", "alpha"]
    assert set(payload["contestants"][0]) == {
        "name",
        "rating",
        "ci_lower",
        "ci_upper",
        "rank",
        "votes",
        "win_rate",
        "component",
        "elo",
    }
    assert payload["matrices"]["names"] == ["delta", "charlie", "bravo", "alpha"]
    assert payload["votes"] == 3_000
    assert payload["settings"]["rounds"] == 200
    assert payload["position_bias"]["decisive"] == int(np.isin(votes.outcome, [0, 1]).sum())
    battles = np.array(payload["matrices"]["battles"])
    assert (battles == battles.T).all()
    assert battles.sum() == 2 * 3_000
    observed = payload["matrices"]["observed_win_rate"]
    assert observed[0][0] is None
    assert observed[0][3] + observed[3][0] == pytest.approx(1.0)
    for row in payload["contestants"]:
        assert row["ci_lower"] <= row["rating"] <= row["ci_upper"]
        assert row["elo"] == pytest.approx(elo[NAMES.index(row["name"])])
    assert np.mean([c["rating"] for c in payload["contestants"]]) == pytest.approx(1000.0)


def test_win_rate_counts_ties_and_both_bad_as_half() -> None:
    cells = cells_from_pair_counts([[0, 1]], [[3, 1, 2, 2]], 2)
    board = leaderboard(cells, ["x", "y"], rounds=20)
    rates = {s.name: s.win_rate for s in board.standings}
    assert rates == {"x": pytest.approx(5 / 8), "y": pytest.approx(3 / 8)}
    dropped = leaderboard(cells, ["x", "y"], rounds=20, drop_both_bad=True)
    assert {s.name: s.win_rate for s in dropped.standings}["x"] == pytest.approx(4 / 6)
    assert dropped.votes == 6


def test_anchor_fixes_its_rating_or_is_reported_missing() -> None:
    cells = cells_from_pair_counts([[0, 1], [1, 2]], [[30, 20, 5, 0], [10, 12, 3, 0]], 3)
    board = leaderboard(cells, ["x", "y", "z"], rounds=50, anchor=("y", 1114.0))
    row = next(s for s in board.standings if s.name == "y")
    assert (row.rating, row.ci_lower, row.ci_upper) == (1114.0, 1114.0, 1114.0)
    assert board.anchor_applied
    missing = leaderboard(cells, ["x", "y", "z"], rounds=50, anchor=("nobody", 1114.0))
    assert not missing.anchor_applied
    assert np.mean([s.rating for s in missing.standings]) == pytest.approx(1000.0)


def test_contestants_under_min_votes_are_hidden_with_their_votes() -> None:
    pairs = [[0, 1], [1, 2], [2, 3]]
    counts = [[40, 30, 0, 0], [25, 35, 0, 0], [2, 1, 0, 0]]
    board = leaderboard(cells_from_pair_counts(pairs, counts, 4), NAMES, rounds=50, min_votes=10)
    assert board.hidden == (("delta", 3),)
    assert {s.name for s in board.standings} == {"alpha", "bravo", "charlie"}
    charlie = next(s for s in board.standings if s.name == "charlie")
    assert charlie.votes == 60
    assert board.votes == 130


def test_no_votes_hide_everyone_by_default() -> None:
    board = leaderboard(aggregate([], [], [], 3), NAMES[:3], rounds=10)
    assert board.standings == ()
    assert [name for name, _ in board.hidden] == NAMES[:3]
    assert board.position_bias is None
    payload = board.to_json()
    json.dumps(payload, allow_nan=False)
    assert payload["matrices"]["battles"] == []


def test_no_votes_with_min_votes_zero_rate_everyone_at_the_mean_apart() -> None:
    board = leaderboard(aggregate([], [], [], 3), NAMES[:3], rounds=10, min_votes=0)
    assert [s.rating for s in board.standings] == [1000.0, 1000.0, 1000.0]
    assert [s.rank for s in board.standings] == [1, 1, 1]
    assert sorted(s.component for s in board.standings) == [0, 1, 2]
    assert all(s.win_rate is None for s in board.standings)
    json.dumps(board.to_json(), allow_nan=False)


def test_one_contestant_is_rated_at_the_mean_with_rank_one() -> None:
    board = leaderboard(aggregate([], [], [], 1), ["solo"], rounds=10, min_votes=0)
    (row,) = board.standings
    assert (row.rating, row.ci_lower, row.ci_upper, row.rank) == (1000.0, 1000.0, 1000.0, 1)


def test_contestant_that_only_won_is_finite_and_first() -> None:
    cells = cells_from_pair_counts(
        [[0, 1], [0, 2], [1, 2]], [[6, 0, 0, 0], [5, 0, 0, 0], [10, 8, 2, 0]], 3
    )
    board = leaderboard(cells, ["champ", "y", "z"], rounds=100)
    top = board.standings[0]
    assert top.name == "champ"
    assert np.isfinite([top.rating, top.ci_lower, top.ci_upper]).all()
    assert top.rank == 1
    json.dumps(board.to_json(), allow_nan=False)


def test_ties_only_give_equal_ratings_and_shared_rank() -> None:
    cells = cells_from_pair_counts(
        [[0, 1], [1, 2], [0, 2]], [[0, 0, 5, 0], [0, 0, 3, 2], [0, 0, 4, 0]], 3
    )
    board = leaderboard(cells, ["x", "y", "z"], rounds=100)
    assert [s.rating for s in board.standings] == pytest.approx([1000.0] * 3, abs=1e-9)
    assert [s.rank for s in board.standings] == [1, 1, 1]


def test_disconnected_groups_are_rated_and_ranked_within_their_component() -> None:
    cells = cells_from_pair_counts([[0, 1], [2, 3]], [[60, 10, 0, 0], [45, 15, 0, 0]], 4)
    board = leaderboard(cells, NAMES, rounds=200)
    assert board.n_components == 2
    by_name = {s.name: s for s in board.standings}
    assert by_name["alpha"].component == by_name["bravo"].component
    assert by_name["charlie"].component == by_name["delta"].component
    assert by_name["alpha"].component != by_name["charlie"].component
    # Each group is centred on 1000 and has its own rank 1.
    assert by_name["alpha"].rating + by_name["bravo"].rating == pytest.approx(2000.0)
    assert sorted(s.rank for s in board.standings) == [1, 1, 2, 2]
    names = list(board.names)
    a, c = names.index("alpha"), names.index("charlie")
    assert np.isnan(board.predicted_win_rate[a, c])
    payload = board.to_json()
    assert payload["matrices"]["predicted_win_rate"][a][c] is None
    assert payload["components"] == 2


def test_sandwich_intervals_can_replace_the_bootstrap(make_votes: Callable[..., Votes]) -> None:
    votes = _board_votes(make_votes)
    cells = aggregate(votes.a, votes.b, votes.outcome, 4)
    boot = leaderboard(cells, NAMES, rounds=500)
    fast = leaderboard(cells, NAMES, ci="sandwich")
    assert fast.rounds == 0
    assert fast.to_json()["settings"]["ci"] == "sandwich"
    for b_row, s_row in zip(boot.standings, fast.standings, strict=True):
        assert b_row.name == s_row.name
        assert b_row.rating == s_row.rating
        assert s_row.ci_upper - s_row.ci_lower == pytest.approx(
            b_row.ci_upper - b_row.ci_lower, rel=0.2
        )


def test_invalid_arguments_are_rejected() -> None:
    cells = aggregate([0], [1], [Outcome.A_WINS], 2)
    with pytest.raises(ValueError, match="name"):
        leaderboard(cells, ["x"])
    with pytest.raises(ValueError, match="unique"):
        leaderboard(cells, ["x", "x"])
    with pytest.raises(ValueError, match="round"):
        leaderboard(cells, ["x", "y"], rounds=0)


@settings(max_examples=25, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 3), st.integers(0, 3)), min_size=0, max_size=30
    ),
    st.integers(0, 3),
)
def test_ranks_are_consistent_with_intervals_for_any_votes(
    raw: list[tuple[int, int, int]], min_votes: int
) -> None:
    a = [x for x, _, _ in raw]
    b = [(x + s) % 4 for x, s, _ in raw]
    o = [v for _, _, v in raw]
    board = leaderboard(aggregate(a, b, o, 4), NAMES, rounds=30, min_votes=min_votes)
    json.dumps(board.to_json(), allow_nan=False)
    rows = board.standings
    for row in rows:
        assert row.ci_lower <= row.ci_upper
        beaten_by = [
            other
            for other in rows
            if other.component == row.component and other.ci_lower > row.ci_upper
        ]
        assert row.rank == 1 + len(beaten_by)
