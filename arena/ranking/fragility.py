"""How fragile the top of a leaderboard is: the fewest votes whose removal swaps two adjacent
contestants.

A 2025 study of Chatbot Arena found that dropping 2 of 57,477 votes could change its #1. For
each adjacent pair (upper u, lower l) of the top contestants this finds a small set of votes
whose removal puts l above u, in two steps:

1. **Influence** (first order). Removing one vote from the fit moves theta by about
   H^-1 g, with H the Hessian of the penalised negative log-likelihood at the optimum and g
   that vote's gradient; so the gap d = theta_u - theta_l moves by (e_u - e_l)^T H^-1 g. All
   votes of one (pair, class) cell share that number. Cells are taken in order of how much each
   vote narrows the gap, each up to its count, until the predicted moves add up to the gap.
2. **Check by refitting**. The first-order count is only an estimate (removals interact and
   the likelihood is not linear), so the fit is redone without the first k votes of that order
   and the smallest k whose refit really swaps the pair is found by bisection; if even the
   estimate's whole order does not swap it, the influences are taken again at the refit and
   the search goes on.

The answer is an upper bound on the true minimum (found by a greedy order, verified by exact
refits), reported with the order's size; ``None`` means no swap within ``max_share`` of the
votes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from arena.ranking.bt import BTFit, hessian, newton
from arena.ranking.cells import FloatArray, IntArray

# Classes of PairData cells: first won, second won, half a win each way.
_TARGET = np.array([1.0, 0.0, 0.5])
DEFAULT_TOP = 5
DEFAULT_MAX_SHARE = 0.2
_RELINEARISE = 4


@dataclass(frozen=True)
class Fragility:
    """The upper contestant ``upper`` (index into the fit) stays above ``lower`` unless
    ``votes`` of the fit's ``total`` votes are removed (None: not within the searched share);
    ``estimate`` is the first-order count before the refits."""

    upper: int
    lower: int
    votes: int | None
    estimate: int | None
    total: int


def _influence(fit: BTFit, theta: FloatArray, counts: FloatArray, u: int, lo: int) -> FloatArray:
    """Predicted change of theta_u - theta_l per vote removed from each cell, at ``theta``
    fitted to ``counts``."""
    data = fit.data
    w1, w2 = data.fit_wins(counts[None, :])
    h = hessian(theta[None, :], w1, w2, data, fit.alpha)[0]
    direction = np.linalg.solve(h, np.eye(data.n_models)[u] - np.eye(data.n_models)[lo])
    f, s = data.first[data.cell_pair], data.second[data.cell_pair]
    p = 1.0 / (1.0 + np.exp(-(theta[f] - theta[s])))
    # Gradient of one vote's negative log-likelihood: (p - target) at first, the opposite
    # at second; weighted votes weigh their gradient too.
    residual = p - _TARGET[data.cell_class]
    if data.cell_weight is not None:
        residual = residual * data.cell_weight
    result: FloatArray = (direction[f] - direction[s]) * residual
    return result


def _refit_gap(
    fit: BTFit, theta: FloatArray, counts: FloatArray, u: int, lo: int
) -> tuple[float, FloatArray]:
    data = fit.data
    w1, w2 = data.fit_wins(counts[None, :])
    new = newton(theta[None, :], w1, w2, data, fit.alpha)[0]
    return float(new[u] - new[lo]), new


def _removal_order(influence: FloatArray, counts: FloatArray) -> tuple[IntArray, IntArray]:
    """Cells that narrow the gap, most effective first, and how many votes each offers."""
    order = np.argsort(influence, kind="stable")
    order = order[(influence[order] < 0) & (counts[order] > 0)]
    return order.astype(np.int64), np.rint(counts[order]).astype(np.int64)


def _counts_without(counts: FloatArray, order: IntArray, offer: IntArray, k: int) -> FloatArray:
    """``counts`` less the first ``k`` votes of the removal order."""
    taken = np.minimum(offer, np.maximum(0, k - (np.cumsum(offer) - offer)))
    reduced = counts.copy()
    reduced[order] -= taken
    return reduced


def pair_fragility(
    fit: BTFit, upper: int, lower: int, *, max_share: float = DEFAULT_MAX_SHARE
) -> Fragility:
    """The fewest votes found whose removal puts ``lower`` above ``upper`` (see module)."""
    data = fit.data
    total = data.total
    limit = int(max_share * total)
    counts = data.cell_count.astype(np.float64)
    theta = fit.theta
    gap = float(theta[upper] - theta[lower])
    if gap <= 0:
        return Fragility(upper, lower, 0, 0, total)
    removed = 0
    estimate: int | None = None
    for _ in range(_RELINEARISE):
        influence = _influence(fit, theta, counts, upper, lower)
        order, offer = _removal_order(influence, counts)
        if order.size == 0:
            break
        predicted = np.cumsum(influence[order] * offer)
        # Votes the first-order estimate needs: whole cells up to the one that closes the gap.
        enough = int(np.searchsorted(-predicted, gap))
        if enough < order.size:
            before = 0.0 if enough == 0 else float(predicted[enough - 1])
            partial = int(np.ceil((gap + before) / -float(influence[order[enough]])))
            need = int(offer[:enough].sum()) + max(1, partial)
        else:
            need = int(offer.sum())
        need = min(need, limit - removed, int(offer.sum()))
        if estimate is None:
            estimate = removed + need
        if need <= 0:
            break
        new_gap, new_theta = _refit_gap(
            fit, theta, _counts_without(counts, order, offer, need), upper, lower
        )
        if new_gap < 0:
            # Bisect for the smallest k of this order whose refit swaps the pair.
            lo_k, hi_k = 0, need
            while hi_k - lo_k > 1:
                mid = (lo_k + hi_k) // 2
                mid_gap, _t = _refit_gap(
                    fit, theta, _counts_without(counts, order, offer, mid), upper, lower
                )
                if mid_gap < 0:
                    hi_k = mid
                else:
                    lo_k = mid
            return Fragility(upper, lower, removed + hi_k, estimate, total)
        # Not yet: remove these votes for good and take the influences again at the refit.
        counts = _counts_without(counts, order, offer, need)
        theta, gap, removed = new_theta, new_gap, removed + need
        if removed >= limit:
            break
    return Fragility(upper, lower, None, estimate, total)


def top_fragility(
    fit: BTFit,
    order: list[int],
    *,
    top: int = DEFAULT_TOP,
    max_share: float = DEFAULT_MAX_SHARE,
) -> list[Fragility]:
    """`pair_fragility` of each adjacent pair among the first ``top`` contestants of ``order``
    (indices into the fit, best first), skipping pairs in different pieces of the graph."""
    result = []
    for upper, lower in itertools.pairwise(order[:top]):
        if fit.component[upper] != fit.component[lower]:
            continue
        result.append(pair_fragility(fit, upper, lower, max_share=max_share))
    return result
