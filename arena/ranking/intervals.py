"""Uncertainty of Bradley–Terry ratings: cell bootstrap, sandwich variance, interval ranks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from arena.ranking.bt import (
    RATING_PER_THETA,
    Anchor,
    BTFit,
    chord,
    newton,
    to_ratings,
)
from arena.ranking.cells import FloatArray, IntArray

DEFAULT_ROUNDS = 1000
# Two-sided 95% normal quantile.
Z95 = 1.959963984540054
# Bootstrap estimates only feed percentiles; 1e-7 theta is 2e-5 rating points.
BOOTSTRAP_TOL = 1e-7
# Rounds per batch bound the memory of one batch: rounds x cells draws plus rounds x pairs floats.
_BATCH_ROUNDS = 250
# Rounds per batch of the threaded bootstrap (its figures depend on it: keep it fixed).
PARALLEL_BATCH = 125
# Threads the snapshot task gives the campaign's bootstrap (figures do not depend on it).
BOOTSTRAP_THREADS = 2
# Hessian entries held at once by the Newton fallback (32 MiB of floats).
_NEWTON_FLOATS = 1 << 22


def bootstrap_theta(
    fit: BTFit, *, rounds: int = DEFAULT_ROUNDS, seed: int = 0, workers: int = 0
) -> FloatArray:
    """Refit ``fit`` on ``rounds`` resamples of its votes; returns theta, ``(rounds, models)``.

    Resampling N votes with replacement is drawing multinomial(N, p) over the distinct
    (pair, outcome) cells, so a round costs the number of cells, not N. Each round starts from
    the point estimate.

    ``workers`` = 0 draws every round from one generator, in order. ``workers`` > 0 splits the
    rounds into batches of `PARALLEL_BATCH`, each drawn from its own generator spawned from
    ``seed`` (`numpy.random.SeedSequence.spawn`), and runs them on that many threads (numpy
    releases the GIL in the draws and the array maths): the same law, and figures that depend
    on the seed alone, never on the number of workers, but not the draws of ``workers=0``.
    """
    data = fit.data
    n = data.n_models
    result = np.empty((rounds, n), dtype=np.float64)
    total = data.total
    if rounds == 0 or total == 0:
        result[:] = fit.theta
        return result
    p = data.cell_count / total
    inverse_hessian = np.asarray(np.linalg.inv(fit.hessian), dtype=np.float64)
    if workers <= 0:
        rng = np.random.default_rng(seed)
        for start in range(0, rounds, _BATCH_ROUNDS):
            size = min(_BATCH_ROUNDS, rounds - start)
            result[start : start + size] = _rounds(fit, rng, size, p, inverse_hessian)
        return result
    starts = list(range(0, rounds, PARALLEL_BATCH))
    streams = np.random.SeedSequence(seed).spawn(len(starts))

    def batch(k: int) -> None:
        size = min(PARALLEL_BATCH, rounds - starts[k])
        rng = np.random.default_rng(streams[k])
        result[starts[k] : starts[k] + size] = _rounds(fit, rng, size, p, inverse_hessian)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(batch, range(len(starts))))
    return result


def _rounds(
    fit: BTFit,
    rng: np.random.Generator,
    size: int,
    p: FloatArray,
    inverse_hessian: FloatArray,
) -> FloatArray:
    """Theta of ``size`` bootstrap rounds drawn from ``rng``."""
    data = fit.data
    n = data.n_models
    draws = multinomial(rng, data.total, p, size=size)
    w1, w2 = data.fit_wins(draws)
    theta0 = np.broadcast_to(fit.theta, (size, n))
    theta, converged = chord(theta0, w1, w2, data, fit.alpha, inverse_hessian, tol=BOOTSTRAP_TOL)
    # Rounds far from the original (a contestant with few votes lost them all, say) get
    # full Newton, a few at a time: each needs its own models x models Hessian.
    stuck = np.flatnonzero(~converged)
    chunk = max(1, _NEWTON_FLOATS // max(1, n * n))
    for first in range(0, stuck.size, chunk):
        rows = stuck[first : first + chunk]
        theta[rows] = newton(theta0[rows], w1[rows], w2[rows], data, fit.alpha, tol=BOOTSTRAP_TOL)
    return theta


def multinomial(
    rng: np.random.Generator, n: int, p: FloatArray, *, size: int
) -> npt.NDArray[np.int64]:
    """``size`` draws of multinomial(n, p), exactly as ``rng.multinomial`` draws them in law.

    Independent Poisson(n p_k) counts, given their total T, are multinomial(T, p); adding
    n - T categorical draws, or removing T - n of the T items at random, then gives
    multinomial(n, p). That needs |n - T| ~ sqrt(n) extra draws per row, and Poisson variates
    cost half of the sequential binomials behind ``rng.multinomial``.
    """
    k = p.size
    draws = rng.poisson(n * p, size=(size, k)).astype(np.int64, copy=False)
    totals = draws.sum(axis=1)
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    for row in np.flatnonzero(totals != n):
        missing = n - int(totals[row])
        if missing > 0:
            picks = np.searchsorted(cdf, rng.random(missing), side="right")
            draws[row] += np.bincount(picks, minlength=k)
        else:
            items = rng.choice(int(totals[row]), -missing, replace=False)
            picks = np.searchsorted(np.cumsum(draws[row]), items, side="right")
            draws[row] -= np.bincount(picks, minlength=k)
    return draws


def percentile_interval(
    samples: FloatArray, *, level: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Equal-tailed interval of ``samples`` (rounds x models), per column."""
    tail = 50.0 * (1.0 - level)
    lower, upper = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


def bootstrap_ratings(
    fit: BTFit,
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    anchor: Anchor | None = None,
    workers: int = 0,
) -> FloatArray:
    """Anchored ratings of each bootstrap round, ``(rounds, models)`` (``workers``: see
    `bootstrap_theta`)."""
    theta = bootstrap_theta(fit, rounds=rounds, seed=seed, workers=workers)
    return to_ratings(theta, fit.component, anchor)


def sandwich_covariance(fit: BTFit) -> FloatArray:
    """Robust (sandwich) covariance of theta: H^-1 M H^-1, with M the sum over votes of the
    outer products of per-vote scores. Unlike the inverse Hessian it stays honest when the
    model is misspecified (e.g. ties are not really half wins)."""
    data = fit.data
    n = data.n_models
    if data.total == 0:
        return np.zeros((n, n))
    d = fit.theta[data.first[data.cell_pair]] - fit.theta[data.second[data.cell_pair]]
    p_first = 1.0 / (1.0 + np.exp(-d))
    # Per-vote target for "first beats second": 1, 0 or one half.
    target = np.array([1.0, 0.0, 0.5])[data.cell_class]
    squared = data.cell_count * (target - p_first) ** 2
    if data.cell_weight is not None:
        # A weighted vote's score is weighted too (its mean weight stands for each vote's).
        squared = squared * data.cell_weight**2
    per_pair = np.bincount(data.cell_pair, weights=squared, minlength=data.n_pairs)
    meat = np.asarray((data.incidence.T @ (data.incidence * per_pair[:, None])).todense())
    bread = np.linalg.inv(fit.hessian)
    covariance: FloatArray = bread @ meat @ bread
    return covariance


def sandwich_interval(
    fit: BTFit,
    *,
    anchor: Anchor | None = None,
    level: float = 0.95,
) -> tuple[FloatArray, FloatArray]:
    """Normal interval of the anchored ratings from the sandwich covariance."""
    return normal_interval(
        fit.theta, sandwich_covariance(fit), fit.component, anchor=anchor, level=level
    )


def normal_interval(
    theta: FloatArray,
    covariance: FloatArray,
    component: IntArray,
    *,
    anchor: Anchor | None = None,
    level: float = 0.95,
) -> tuple[FloatArray, FloatArray]:
    """Normal interval of the anchored ratings of ``theta`` given its covariance."""
    n = theta.size
    # Ratings are a linear map of theta: centre each piece, or subtract the anchor in its piece.
    transform = np.eye(n)
    n_components = int(component.max()) + 1 if component.size else 0
    for piece in range(n_components):
        members = np.flatnonzero(component == piece)
        if anchor is not None and component[anchor.index] == piece:
            transform[np.ix_(members, np.array([anchor.index]))] -= 1.0
        else:
            transform[np.ix_(members, members)] -= 1.0 / members.size
    variance = np.einsum("ij,jk,ik->i", transform, covariance, transform)
    z = float(ndtri(0.5 + level / 2.0))
    half = z * RATING_PER_THETA * np.sqrt(np.clip(variance, 0.0, None))
    ratings = to_ratings(theta, component, anchor)
    return ratings - half, ratings + half


def interval_ranks(lower: FloatArray, upper: FloatArray, component: IntArray) -> IntArray:
    """Rank = 1 + number of contestants in the same piece whose lower bound is above this
    one's upper bound; contestants in different pieces are not compared."""
    above = lower[None, :] > upper[:, None]
    same = component[None, :] == component[:, None]
    ranks: npt.NDArray[np.int64] = 1 + (above & same).sum(axis=1).astype(np.int64)
    return ranks


__all__ = [
    "BOOTSTRAP_THREADS",
    "BOOTSTRAP_TOL",
    "DEFAULT_ROUNDS",
    "bootstrap_ratings",
    "bootstrap_theta",
    "interval_ranks",
    "multinomial",
    "normal_interval",
    "percentile_interval",
    "sandwich_covariance",
    "sandwich_interval",
]
