"""Pure ranking maths for Arena (numpy and scipy; no Django).

Votes come in as `Cells` (counts per pair and outcome); everything else is a function of them,
except online Elo and style control, which need the votes themselves. Bradley–Terry is fitted
by our own batched Newton solver, which the tests hold to choix's answers within 0.01 points.

Conventions: a tie or both-bad vote is half a win each way (both-bad can be dropped). A ridge of
`ALPHA` keeps the rating of a contestant that only won or only lost finite, but it lands
hundreds of points from the rest (11 wins out of 11 put one 1,600 above), and its interval
looks narrow because no resample can contradict it: hide such contestants with ``min_votes``.
A comparison graph in several pieces is rated piece by piece, each around 1000 unless it holds
the anchor, with the piece id on every row: ratings in different pieces are not comparable.

The matrices involved are small (contestants x contestants): run rating workers with
``OPENBLAS_NUM_THREADS=1``, as threaded BLAS only adds hand-off cost at this size, and much of it
on a busy machine.
"""

from __future__ import annotations

from arena.ranking.bt import (
    ALPHA,
    MEAN_RATING,
    RATING_PER_THETA,
    Anchor,
    BTFit,
    bt_fit,
    bt_ratings,
    pair_data,
    predicted_win_rate,
    to_ratings,
)
from arena.ranking.cells import Cells, Outcome, aggregate, cells_from_pair_counts
from arena.ranking.elo import elo_online
from arena.ranking.intervals import (
    BOOTSTRAP_THREADS,
    DEFAULT_ROUNDS,
    bootstrap_ratings,
    bootstrap_theta,
    interval_ranks,
    multinomial,
    percentile_interval,
    sandwich_covariance,
    sandwich_interval,
)
from arena.ranking.leaderboard import Leaderboard, Standing, leaderboard
from arena.ranking.stats import (
    PositionBias,
    battle_matrix,
    observed_win_rate,
    position_bias,
    wilson_interval,
    win_matrix,
)
from arena.ranking.style import STYLE_FEATURES, StyleControl, style_control, style_features

__all__ = [
    "ALPHA",
    "BOOTSTRAP_THREADS",
    "DEFAULT_ROUNDS",
    "MEAN_RATING",
    "RATING_PER_THETA",
    "STYLE_FEATURES",
    "Anchor",
    "BTFit",
    "Cells",
    "Leaderboard",
    "Outcome",
    "PositionBias",
    "Standing",
    "StyleControl",
    "aggregate",
    "battle_matrix",
    "bootstrap_ratings",
    "bootstrap_theta",
    "bt_fit",
    "bt_ratings",
    "cells_from_pair_counts",
    "elo_online",
    "interval_ranks",
    "leaderboard",
    "multinomial",
    "observed_win_rate",
    "pair_data",
    "percentile_interval",
    "position_bias",
    "predicted_win_rate",
    "sandwich_covariance",
    "sandwich_interval",
    "style_control",
    "style_features",
    "to_ratings",
    "wilson_interval",
    "win_matrix",
]
