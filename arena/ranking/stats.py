"""Descriptive statistics of the votes: Wilson intervals, position bias, pair matrices."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arena.ranking.bt import PairData
from arena.ranking.cells import Cells, FloatArray, IntArray, Outcome
from arena.ranking.intervals import Z95


def wilson_interval(successes: int, trials: int, *, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default); (0, 1) for no trials."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials")
    if trials == 0:
        return 0.0, 1.0
    share = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (share + z2 / (2.0 * trials)) / denominator
    half = z / denominator * math.sqrt(share * (1.0 - share) / trials + z2 / (4.0 * trials**2))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class PositionBias:
    """Share of decisive votes (a or b won) won by side a, with its 95% Wilson interval."""

    decisive: int
    a_wins: int
    share: float
    ci_lower: float
    ci_upper: float


def position_bias(cells: Cells) -> PositionBias | None:
    """Position bias of ``cells``; None when sides were not recorded or no vote was decisive."""
    if not cells.sided:
        return None
    a_wins = int(cells.count[cells.outcome == Outcome.A_WINS].sum())
    b_wins = int(cells.count[cells.outcome == Outcome.B_WINS].sum())
    decisive = a_wins + b_wins
    if decisive == 0:
        return None
    lower, upper = wilson_interval(a_wins, decisive)
    return PositionBias(
        decisive=decisive,
        a_wins=a_wins,
        share=a_wins / decisive,
        ci_lower=lower,
        ci_upper=upper,
    )


def battle_matrix(data: PairData) -> IntArray:
    """Votes counted between each pair of contestants (symmetric, zero diagonal)."""
    n = data.n_models
    per_pair = np.bincount(data.cell_pair, weights=data.cell_count, minlength=data.n_pairs)
    result = np.zeros((n, n), dtype=np.int64)
    result[data.first, data.second] = per_pair.astype(np.int64)
    result[data.second, data.first] = per_pair.astype(np.int64)
    return result


def win_matrix(data: PairData) -> FloatArray:
    """Effective wins of row over column (ties and both-bad as half a win each way)."""
    n = data.n_models
    w1, w2 = data.wins(data.cell_count[None, :])
    result = np.zeros((n, n), dtype=np.float64)
    result[data.first, data.second] = w1[0]
    result[data.second, data.first] = w2[0]
    return result


def observed_win_rate(data: PairData) -> FloatArray:
    """Share of row's votes against column that row won (ties as half); NaN without votes."""
    battles = battle_matrix(data).astype(np.float64)
    wins = win_matrix(data)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate: FloatArray = np.where(battles > 0, wins / battles, np.nan)
    return rate
