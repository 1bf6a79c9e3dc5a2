"""The public Chatbot Arena counts of 2024-08-14 reproduce LMSYS's published BT table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from scipy.stats import spearmanr

from arena.ranking import Anchor, bt_fit, leaderboard, to_ratings

if TYPE_CHECKING:
    from tests.ranking.conftest import ArenaCounts

ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)


def test_counts_hold_the_documented_battles(arena_counts: ArenaCounts) -> None:
    assert len(arena_counts.names) == 129
    assert arena_counts.cells.total == 1_670_250


def test_ratings_reproduce_the_published_table(
    arena_counts: ArenaCounts, published: dict[str, dict[str, float]]
) -> None:
    names = arena_counts.names
    fit = bt_fit(arena_counts.cells)
    ratings = to_ratings(fit.theta, fit.component, Anchor(names.index(ANCHOR[0]), ANCHOR[1]))
    shared = [name for name in names if name in published]
    assert len(shared) == 128
    ours = np.array([ratings[names.index(name)] for name in shared])
    theirs = np.array([published[name]["rating"] for name in shared])
    assert np.abs(ours - theirs).mean() < 1.0
    assert spearmanr(ours, theirs).statistic > 0.999


def test_leaderboard_intervals_and_ranks_match_the_published_table(
    arena_counts: ArenaCounts, published: dict[str, dict[str, float]]
) -> None:
    board = leaderboard(arena_counts.cells, arena_counts.names, rounds=300, seed=0, anchor=ANCHOR)
    assert board.n_components == 1
    assert board.votes == 1_670_250
    by_name = {s.name: s for s in board.standings}
    anchor_row = by_name[ANCHOR[0]]
    assert anchor_row.rating == anchor_row.ci_lower == anchor_row.ci_upper == 1114.0

    shared = [name for name in by_name if name in published and name != ANCHOR[0]]
    ours = np.array([by_name[n].ci_upper - by_name[n].ci_lower for n in shared])
    theirs = np.array([published[n]["rating_q975"] - published[n]["rating_q025"] for n in shared])
    # Published bounds come from only 100 rounds; widths agree in bulk, not model by model.
    assert np.median(ours / theirs) == pytest.approx(1.0, abs=0.15)
    our_ranks = np.array([by_name[n].rank for n in shared])
    their_ranks = np.array([published[n]["final_ranking"] for n in shared])
    # The published ranks also count models missing from these counts, so compare order only.
    assert spearmanr(our_ranks, their_ranks).statistic > 0.99
    # Every vote has two sides.
    assert sum(s.votes for s in board.standings) == 2 * 1_670_250
