"""The leaderboard: BT ratings, intervals, interval ranks and pair matrices in one value."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from arena.ranking.bt import ALPHA, BASE, SCALE, Anchor, bt_fit, predicted_win_rate, to_ratings
from arena.ranking.cells import Cells, FloatArray, IntArray
from arena.ranking.intervals import (
    DEFAULT_ROUNDS,
    bootstrap_ratings,
    interval_ranks,
    percentile_interval,
    sandwich_interval,
)
from arena.ranking.stats import (
    PositionBias,
    battle_matrix,
    observed_win_rate,
    position_bias,
    win_matrix,
)

CIMethod = Literal["bootstrap", "sandwich"]
_MATRIX_DIGITS = 6


@dataclass(frozen=True)
class Standing:
    """One contestant's row. ``win_rate`` counts ties (and both-bad, unless dropped) as half a
    win and is None without votes; ``component`` tells which contestants it is comparable with."""

    name: str
    rating: float
    ci_lower: float
    ci_upper: float
    rank: int
    votes: int
    win_rate: float | None
    component: int
    elo: float | None = None


@dataclass(frozen=True)
class Leaderboard:
    """Standings by rating (highest first) and matrices over the same contestants in the same
    order. Contestants under ``min_votes`` are in ``hidden`` and were left out of the fit along
    with their votes."""

    standings: tuple[Standing, ...]
    hidden: tuple[tuple[str, int], ...]
    battles: IntArray
    observed_win_rate: FloatArray
    predicted_win_rate: FloatArray
    position_bias: PositionBias | None
    votes: int
    n_components: int
    rounds: int
    seed: int
    ci: CIMethod
    anchor: tuple[str, float] | None
    anchor_applied: bool
    drop_both_bad: bool
    min_votes: int
    alpha: float

    @property
    def names(self) -> tuple[str, ...]:
        """Contestant names in standings (and matrix) order."""
        return tuple(s.name for s in self.standings)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (no NaN: undefined matrix entries are None)."""
        bias = self.position_bias
        return {
            "method": "bradley-terry",
            "scale": SCALE,
            "base": BASE,
            "settings": {
                "ci": self.ci,
                "rounds": self.rounds,
                "seed": self.seed,
                "anchor": None
                if self.anchor is None
                else {"name": self.anchor[0], "rating": self.anchor[1]},
                "anchor_applied": self.anchor_applied,
                "drop_both_bad": self.drop_both_bad,
                "min_votes": self.min_votes,
                "alpha": self.alpha,
            },
            "votes": self.votes,
            "components": self.n_components,
            "contestants": [
                {
                    "name": s.name,
                    "rating": s.rating,
                    "ci_lower": s.ci_lower,
                    "ci_upper": s.ci_upper,
                    "rank": s.rank,
                    "votes": s.votes,
                    "win_rate": s.win_rate,
                    "component": s.component,
                    "elo": s.elo,
                }
                for s in self.standings
            ],
            "hidden": [{"name": name, "votes": votes} for name, votes in self.hidden],
            "matrices": {
                "names": list(self.names),
                "battles": self.battles.tolist(),
                "observed_win_rate": _matrix_json(self.observed_win_rate),
                "predicted_win_rate": _matrix_json(self.predicted_win_rate),
            },
            "position_bias": None
            if bias is None
            else {
                "decisive": bias.decisive,
                "a_wins": bias.a_wins,
                "share": bias.share,
                "ci_lower": bias.ci_lower,
                "ci_upper": bias.ci_upper,
            },
        }


def _matrix_json(matrix: FloatArray) -> list[list[float | None]]:
    return [
        [None if math.isnan(v) else round(v, _MATRIX_DIGITS) for v in row]
        for row in matrix.tolist()
    ]


def leaderboard(
    cells: Cells,
    names: Sequence[str],
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    anchor: tuple[str, float] | None = None,
    drop_both_bad: bool = False,
    min_votes: int = 1,
    ci: CIMethod = "bootstrap",
    alpha: float = ALPHA,
    online_elo: npt.ArrayLike | Callable[[], npt.ArrayLike] | None = None,
    workers: int = 0,
) -> Leaderboard:
    """Rate ``cells`` (contestant ``k`` is ``names[k]``) with 95% intervals and interval ranks.

    ``anchor`` = (name, rating) pins that contestant's piece of the comparison graph; if it is
    hidden or absent, every piece gets mean 1000 and ``anchor_applied`` is False. ``online_elo``
    (from `elo_online`, one value per contestant) is carried into the standings. ``workers``
    > 0 runs the bootstrap on that many threads (`bootstrap_theta`: other draws, same law);
    ``online_elo`` given as a function is then computed on one more thread meanwhile (online
    Elo is a Python loop in vote order, the bootstrap mostly numpy outside the GIL).
    """
    pending: Future[npt.ArrayLike] | None = None
    pool = None
    if callable(online_elo):
        if workers > 0 and ci == "bootstrap":
            pool = ThreadPoolExecutor(max_workers=1)
            pending = pool.submit(online_elo)
            online_elo = None
        else:
            online_elo = online_elo()
    try:
        return _leaderboard(
            cells,
            names,
            rounds=rounds,
            seed=seed,
            anchor=anchor,
            drop_both_bad=drop_both_bad,
            min_votes=min_votes,
            ci=ci,
            alpha=alpha,
            online_elo=online_elo,
            pending_elo=pending,
            workers=workers,
        )
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _leaderboard(
    cells: Cells,
    names: Sequence[str],
    *,
    rounds: int,
    seed: int,
    anchor: tuple[str, float] | None,
    drop_both_bad: bool,
    min_votes: int,
    ci: CIMethod,
    alpha: float,
    online_elo: npt.ArrayLike | None,
    pending_elo: Future[npt.ArrayLike] | None,
    workers: int,
) -> Leaderboard:
    if len(names) != cells.n_models:
        raise ValueError("one name per contestant is required")
    if len(set(names)) != len(names):
        raise ValueError("contestant names must be unique")
    if ci == "bootstrap" and rounds < 1:
        raise ValueError("the bootstrap needs at least one round; use ci='sandwich' instead")
    elo = None if online_elo is None else np.asarray(online_elo, dtype=np.float64)
    if elo is not None and elo.shape != (cells.n_models,):
        raise ValueError("online_elo needs one value per contestant")

    counted = cells.without_both_bad() if drop_both_bad else cells
    all_votes = counted.votes_per_model()
    shown = np.flatnonzero(all_votes >= min_votes)
    hidden = tuple(
        (names[k], int(all_votes[k])) for k in np.flatnonzero(all_votes < min_votes).tolist()
    )
    sub = counted.restrict(shown)
    shown_names = [names[k] for k in shown.tolist()]

    fit = bt_fit(sub, alpha=alpha)
    anchor_obj = None
    if anchor is not None and anchor[0] in shown_names:
        anchor_obj = Anchor(shown_names.index(anchor[0]), float(anchor[1]))
    ratings = to_ratings(fit.theta, fit.component, anchor_obj)
    if ci == "bootstrap":
        samples = bootstrap_ratings(
            fit, rounds=rounds, seed=seed, anchor=anchor_obj, workers=workers
        )
        lower, upper = percentile_interval(samples)
    else:
        lower, upper = sandwich_interval(fit, anchor=anchor_obj)
    ranks = interval_ranks(lower, upper, fit.component)
    if pending_elo is not None:
        elo = np.asarray(pending_elo.result(), dtype=np.float64)
        if elo.shape != (cells.n_models,):
            raise ValueError("online_elo needs one value per contestant")

    data = fit.data
    battles = battle_matrix(data)
    votes = battles.sum(axis=1)
    wins = win_matrix(data).sum(axis=1)
    order = sorted(range(len(shown_names)), key=lambda k: (-ratings[k], shown_names[k]))
    standings = tuple(
        Standing(
            name=shown_names[k],
            rating=float(ratings[k]),
            ci_lower=float(lower[k]),
            ci_upper=float(upper[k]),
            rank=int(ranks[k]),
            votes=int(votes[k]),
            win_rate=float(wins[k] / votes[k]) if votes[k] else None,
            component=int(fit.component[k]),
            elo=None if elo is None else float(elo[shown[k]]),
        )
        for k in order
    )
    permutation = np.asarray(order, dtype=np.int64)
    grid = np.ix_(permutation, permutation)
    return Leaderboard(
        standings=standings,
        hidden=hidden,
        battles=battles[grid],
        observed_win_rate=observed_win_rate(data)[grid],
        predicted_win_rate=predicted_win_rate(fit.theta, fit.component)[grid],
        position_bias=position_bias(counted),
        votes=data.total,
        n_components=fit.n_components,
        rounds=rounds if ci == "bootstrap" else 0,
        seed=seed,
        ci=ci,
        anchor=anchor,
        anchor_applied=anchor_obj is not None,
        drop_both_bad=drop_both_bad,
        min_votes=min_votes,
        alpha=alpha,
    )
