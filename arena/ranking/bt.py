"""Bradley–Terry maximum likelihood on aggregated counts, batched over resampled data sets.

Model: P(i beats j) = 1 / (1 + 10^((R_j - R_i) / 400)), i.e. logistic in theta = R * ln(10) / 400.
A tie or a both-bad vote counts as half a win each way. The fit maximises

    sum over pairs of w_ij * log sigma(theta_i - theta_j) + w_ji * log sigma(theta_j - theta_i)
    - alpha * sum(theta ** 2)

The small ridge ``alpha`` keeps ratings finite when a contestant only ever won or only ever lost
(its rating is then very high or very low, not infinite) and fixes the free additive constant:
at the optimum theta sums to zero within every connected piece of the comparison graph, so each
piece is rated on its own and pieces are not comparable with each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

from arena.ranking.cells import Cells, FloatArray, IntArray, Outcome

SCALE = 400.0
BASE = 10.0
# theta (natural-log odds) to rating points.
RATING_PER_THETA = SCALE / math.log(BASE)
MEAN_RATING = 1000.0
ALPHA = 1e-4
# Convergence: largest Newton step, in theta units (1e-10 theta is 2e-8 rating points).
TOL = 1e-10
MAX_NEWTON_ITER = 200

# Merged likelihood classes per unordered pair: first wins, second wins, half a win each way.
_FIRST, _SECOND, _HALF = 0, 1, 2
_N_CLASSES = 3


@dataclass(frozen=True)
class Anchor:
    """Pin contestant ``index`` at ``rating``; the rest of its connected piece follows."""

    index: int
    rating: float


@dataclass(frozen=True)
class PairData:
    """Votes in the form the likelihood sees: unordered pairs ``first < second`` and counts
    per (pair, class) with class 0 = first won, 1 = second won, 2 = half a win each way.

    Merging sides and tie/both-bad does not change the likelihood, and merging multinomial
    categories does not change the resampling distribution of the rest, so bootstrapping these
    cells is exactly bootstrapping votes.
    """

    n_models: int
    first: IntArray
    second: IntArray
    cell_pair: IntArray
    cell_class: IntArray
    cell_count: IntArray
    incidence: Any  # scipy sparse (pairs x models): +1 at first, -1 at second
    abs_incidence: Any
    # Mean inverse-propensity weight per vote of each cell (`Cells.weight`); None: all 1.
    cell_weight: FloatArray | None = None

    @property
    def n_pairs(self) -> int:
        """Number of pairs with at least one counted vote."""
        return int(self.first.size)

    @property
    def total(self) -> int:
        """Number of votes counted."""
        return int(self.cell_count.sum())

    def wins(self, cell_counts: npt.NDArray[Any]) -> tuple[FloatArray, FloatArray]:
        """Effective wins (first over second, second over first) per pair, for each row of
        ``cell_counts`` (shape ``(rounds, cells)``)."""
        rounds = cell_counts.shape[0]
        dense = np.zeros((rounds, self.n_pairs * _N_CLASSES), dtype=np.float64)
        dense[:, self.cell_pair * _N_CLASSES + self.cell_class] = cell_counts
        per_class = dense.reshape(rounds, self.n_pairs, _N_CLASSES)
        half = 0.5 * per_class[:, :, _HALF]
        return per_class[:, :, _FIRST] + half, per_class[:, :, _SECOND] + half

    def fit_wins(self, cell_counts: npt.NDArray[Any]) -> tuple[FloatArray, FloatArray]:
        """`wins` as the likelihood weighs them: each vote times its cell's inverse-propensity
        weight, when the cells carry weights (the plain wins otherwise)."""
        if self.cell_weight is None:
            return self.wins(cell_counts)
        return self.wins(cell_counts * self.cell_weight[None, :])


def pair_data(cells: Cells, *, drop_both_bad: bool = False) -> PairData:
    """The likelihood's view of ``cells``; both-bad votes are left out when ``drop_both_bad``."""
    if drop_both_bad:
        cells = cells.without_both_bad()
    n = cells.n_models
    first = np.minimum(cells.i, cells.j)
    second = np.maximum(cells.i, cells.j)
    winner_is_i = cells.outcome == Outcome.A_WINS
    winner_is_j = cells.outcome == Outcome.B_WINS
    i_is_first = cells.i == first
    klass = np.full(cells.i.shape, _HALF, dtype=np.int64)
    klass[(winner_is_i & i_is_first) | (winner_is_j & ~i_is_first)] = _FIRST
    klass[(winner_is_i & ~i_is_first) | (winner_is_j & i_is_first)] = _SECOND
    keys = (first * n + second) * _N_CLASSES + klass
    # Cells are already aggregated, so this is a pass over cells, not votes.
    present, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=cells.count, minlength=present.size)
    nonzero = counts > 0
    cell_weight = None
    if cells.weight is not None:
        weighted = np.bincount(
            inverse.reshape(-1), weights=cells.count * cells.weight, minlength=present.size
        )
        cell_weight = (weighted[nonzero] / counts[nonzero]).astype(np.float64)
    present, counts = present[nonzero], counts[nonzero].astype(np.int64)
    pair_key, cell_class = np.divmod(present, _N_CLASSES)
    unique_pairs, cell_pair = np.unique(pair_key, return_inverse=True)
    p_first, p_second = np.divmod(unique_pairs, max(n, 1))
    n_pairs = unique_pairs.size
    rows = np.concatenate([np.arange(n_pairs), np.arange(n_pairs)])
    cols = np.concatenate([p_first, p_second])
    signs = np.concatenate([np.ones(n_pairs), -np.ones(n_pairs)])
    incidence = sparse.csr_array((signs, (rows, cols)), shape=(n_pairs, n))
    return PairData(
        n_models=n,
        first=p_first.astype(np.int64),
        second=p_second.astype(np.int64),
        cell_pair=cell_pair.astype(np.int64).reshape(-1),
        cell_class=cell_class.astype(np.int64),
        cell_count=counts,
        incidence=incidence,
        abs_incidence=abs(incidence),
        cell_weight=cell_weight,
    )


def components(data: PairData) -> IntArray:
    """Connected-piece id per contestant; pieces numbered by size (largest first), then by
    their smallest member."""
    n = data.n_models
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = sparse.csr_array((np.ones(data.n_pairs), (data.first, data.second)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels)
    smallest = np.full(sizes.size, n, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n))
    order = np.lexsort((smallest, -sizes))
    relabel = np.empty_like(order)
    relabel[order] = np.arange(order.size)
    result: IntArray = relabel[labels].astype(np.int64)
    return result


def _differences(theta: FloatArray, data: PairData) -> FloatArray:
    return theta[:, data.first] - theta[:, data.second]


def objective(
    theta: FloatArray, w1: FloatArray, w2: FloatArray, data: PairData, alpha: float
) -> FloatArray:
    """Penalised negative log-likelihood per row of ``theta`` (shape ``(rounds, models)``)."""
    d = _differences(theta, data)
    nll = (w1 * np.logaddexp(0.0, -d) + w2 * np.logaddexp(0.0, d)).sum(axis=1)
    result: FloatArray = nll + alpha * (theta**2).sum(axis=1)
    return result


def gradient(
    theta: FloatArray, w1: FloatArray, w2: FloatArray, data: PairData, alpha: float
) -> FloatArray:
    """Gradient of `objective`, one row per round."""
    residual = (w1 + w2) * expit(_differences(theta, data)) - w1
    scattered = np.asarray(data.incidence.T @ residual.T, dtype=np.float64).T
    result: FloatArray = scattered + 2.0 * alpha * theta
    return result


def hessian(
    theta: FloatArray, w1: FloatArray, w2: FloatArray, data: PairData, alpha: float
) -> FloatArray:
    """Hessian of `objective`, shape ``(rounds, models, models)``."""
    rounds, n = theta.shape
    p = expit(_differences(theta, data))
    curvature = (w1 + w2) * p * (1.0 - p)
    result = np.zeros((rounds, n, n), dtype=np.float64)
    result[:, data.first, data.second] = -curvature
    result[:, data.second, data.first] = -curvature
    diagonal = np.asarray(data.abs_incidence.T @ curvature.T, dtype=np.float64).T
    result[:, np.arange(n), np.arange(n)] = diagonal + 2.0 * alpha
    return result


def newton(
    theta0: FloatArray,
    w1: FloatArray,
    w2: FloatArray,
    data: PairData,
    alpha: float,
    *,
    tol: float = TOL,
) -> FloatArray:
    """Minimise `objective` for every row by damped Newton (halving steps that do not descend).

    The objective is strictly convex for ``alpha > 0``, so this converges from any start.
    """
    theta = theta0.astype(np.float64, copy=True)
    if theta.shape[1] == 0:
        return theta
    active = np.arange(theta.shape[0])
    value = objective(theta, w1, w2, data, alpha)
    for _ in range(MAX_NEWTON_ITER):
        if active.size == 0:
            break
        th, a1, a2 = theta[active], w1[active], w2[active]
        grad = gradient(th, a1, a2, data, alpha)
        step = np.linalg.solve(hessian(th, a1, a2, data, alpha), grad[:, :, None])[:, :, 0]
        start = value[active]
        # Rounding makes tiny objective rises meaningless; accept those.
        slack = 1e-12 * np.abs(start) + 1e-12
        size = np.ones(active.size)
        trial = th - step
        trial_value = objective(trial, a1, a2, data, alpha)
        for _ in range(60):
            rising = trial_value > start + slack
            if not rising.any():
                break
            size[rising] *= 0.5
            trial[rising] = th[rising] - size[rising, None] * step[rising]
            trial_value[rising] = objective(trial[rising], a1[rising], a2[rising], data, alpha)
        theta[active] = trial
        value[active] = trial_value
        moved = np.abs(size[:, None] * step).max(axis=1, initial=0.0)
        active = active[moved > tol]
    return theta


def chord(
    theta0: FloatArray,
    w1: FloatArray,
    w2: FloatArray,
    data: PairData,
    alpha: float,
    inverse_hessian: FloatArray,
    *,
    tol: float,
    max_iter: int = 60,
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Newton iterations that reuse one inverse Hessian for every row (the chord method).

    Resampled data sets have nearly the Hessian of the original, so near the original optimum
    this converges fast at the cost of a matrix product instead of a factorisation per round.
    Returns the estimates and which rows met ``tol``; the rest need `newton`.
    """
    theta = theta0.astype(np.float64, copy=True)
    active = np.arange(theta.shape[0])
    previous = np.full(theta.shape[0], np.inf)
    for _ in range(max_iter):
        if active.size == 0:
            break
        th = theta[active]
        step = gradient(th, w1[active], w2[active], data, alpha) @ inverse_hessian
        theta[active] = th - step
        moved = np.abs(step).max(axis=1, initial=0.0)
        # A round whose steps stop shrinking is left to the damped Newton method.
        keep = (moved > tol) & (moved < previous[active])
        previous[active] = moved
        active = active[keep]
    converged = previous <= tol
    return theta, converged


@dataclass(frozen=True)
class BTFit:
    """A fitted Bradley–Terry model: ``theta`` in natural-log odds, zero-sum per piece."""

    data: PairData
    theta: FloatArray
    component: IntArray
    hessian: FloatArray
    alpha: float

    @property
    def n_components(self) -> int:
        """Number of connected pieces of the comparison graph."""
        return int(self.component.max()) + 1 if self.component.size else 0


def bt_fit(cells: Cells, *, drop_both_bad: bool = False, alpha: float = ALPHA) -> BTFit:
    """Maximum-likelihood Bradley–Terry fit of ``cells`` (ridge ``alpha`` > 0, see module);
    with `Cells.weight`, the inverse-propensity weighted likelihood."""
    if alpha <= 0:
        raise ValueError("alpha must be positive")
    data = pair_data(cells, drop_both_bad=drop_both_bad)
    counts = data.cell_count[None, :]
    w1, w2 = data.fit_wins(counts)
    theta0 = np.zeros((1, data.n_models))
    theta = newton(theta0, w1, w2, data, alpha)
    return BTFit(
        data=data,
        theta=theta[0],
        component=components(data),
        hessian=hessian(theta, w1, w2, data, alpha)[0],
        alpha=alpha,
    )


def to_ratings(
    theta: FloatArray,
    component: IntArray,
    anchor: Anchor | None = None,
) -> FloatArray:
    """Ratings on the Elo scale for ``theta`` of shape ``(models,)`` or ``(rounds, models)``.

    The anchor's piece is shifted to put the anchor at its rating; every other piece has mean
    rating 1000.
    """
    points = np.atleast_2d(theta) * RATING_PER_THETA
    n = points.shape[1]
    if n == 0:
        return points.reshape(theta.shape)
    n_pieces = int(component.max()) + 1
    membership = np.zeros((n, n_pieces))
    membership[np.arange(n), component] = 1.0
    means = (points @ membership) / membership.sum(axis=0)
    offset = MEAN_RATING - means
    if anchor is not None:
        piece = component[anchor.index]
        offset[:, piece] = anchor.rating - points[:, anchor.index]
    ratings: FloatArray = points + offset[:, component]
    return ratings.reshape(theta.shape)


def bt_ratings(
    cells: Cells,
    *,
    anchor: Anchor | None = None,
    drop_both_bad: bool = False,
    alpha: float = ALPHA,
) -> FloatArray:
    """Point-estimate ratings of ``cells``; see `to_ratings` for the anchoring."""
    fit = bt_fit(cells, drop_both_bad=drop_both_bad, alpha=alpha)
    return to_ratings(fit.theta, fit.component, anchor)


def predicted_win_rate(theta: FloatArray, component: IntArray) -> npt.NDArray[np.float64]:
    """Model probability that row beats column; NaN across pieces and on the diagonal."""
    result: FloatArray = expit(theta[:, None] - theta[None, :])
    result[component[:, None] != component[None, :]] = np.nan
    np.fill_diagonal(result, np.nan)
    return result
