"""Active pair sampling: how often each contestant pair should be served, from a leaderboard.

Votes are the expensive part, so pairs are drawn with probabilities that favour the votes
which most shrink the uncertainty that matters: the gaps between adjacent-ranked contestants
whose intervals still overlap (the Chatbot Arena paper's proposal, Chiang et al. 2024, §5),
plus a share for every contestant's own interval.

The ratings of actively sampled votes are fitted with inverse-propensity weights
(`pair_ipw`, carried by `Cells.weight`): the weighted likelihood's expected Hessian is the one
of uniform sampling whatever the probabilities, so the sampler cannot pull the estimates
towards the pairs it favours. Under that estimator the variance of a contrast ``c`` is

    sum over pairs a of (c' H^-1 x_a)^2 p_a (1 - p_a) / pi_a        (up to a constant)

with H the uniform design's Fisher information, x_a the pair's +1/-1 vector and p_a the
modelled win probability; it is smallest for ``pi_a`` proportional to the root of the summed
squared terms (Cauchy–Schwarz), which is the rule below. A uniform floor keeps every pair
alive (and every weight bounded by ``1 / floor``); contestants with few votes get a fixed
share of the draws so they are placed fast.

Written here by hand: no maintained library computes sampling weights for Bradley–Terry
leaderboards (choix fits the model; it does not design experiments).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from arena.ranking.bt import RATING_PER_THETA
from arena.ranking.cells import FloatArray, IntArray

# Share of draws spread uniformly over all pairs (DEFAULT_FLOOR, below).
# A contestant with fewer votes than this is new: its pairs share `NEW_SHARE` of the draws.
NEW_VOTES = 50
NEW_SHARE = 0.5
# Weight of every contestant's own interval beside the adjacent gaps (as a fraction of theirs).
OWN_SHARE = 0.1
# The adjacent gaps that matter: those among the first `DEFAULT_TOP` ranks (0: every rank).
DEFAULT_TOP = 3
DEFAULT_FLOOR = 0.1


@dataclass(frozen=True)
class PairPlan:
    """Sampling probabilities of every pair ``(first[k], second[k])`` (first < second, in
    `itertools.combinations` order), summing to 1."""

    n_models: int
    first: IntArray
    second: IntArray
    probability: FloatArray

    def ipw(self) -> FloatArray:
        """Each pair's inverse-propensity weight relative to uniform sampling."""
        return pair_ipw(self.probability)


def all_pairs(n: int) -> tuple[IntArray, IntArray]:
    """Every pair of ``n`` contestants, lower index first, in `combinations` order."""
    pairs = np.array(list(combinations(range(n), 2)), dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def pair_ipw(probability: FloatArray) -> FloatArray:
    """Inverse-propensity weights ``1 / (K * pi)``: 1 for a pair drawn as often as under
    uniform sampling over the ``K`` pairs, above 1 for one drawn less often."""
    result: FloatArray = 1.0 / (probability.size * probability)
    return result


def uniform_plan(n: int) -> PairPlan:
    first, second = all_pairs(n)
    return PairPlan(n, first, second, np.full(first.size, 1.0 / max(first.size, 1)))


def active_plan(
    ratings: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    votes: IntArray,
    *,
    floor: float = DEFAULT_FLOOR,
    new_votes: int = NEW_VOTES,
    new_share: float = NEW_SHARE,
    own_share: float = OWN_SHARE,
    top: int = DEFAULT_TOP,
) -> PairPlan:
    """Sampling probabilities for every pair of the ``len(ratings)`` contestants.

    ``ratings``, ``lower`` and ``upper`` are the latest leaderboard's points and 95% bounds
    (NaN for a contestant it did not rate) and ``votes`` how many votes each took part in.
    Contestants under ``new_votes`` votes (or unrated) are new: their pairs share
    ``new_share`` of the draws evenly; the rest follows the variance rule of the module over
    the adjacent gaps, mixed with ``floor`` of uniform draws.
    """
    n = int(ratings.size)
    if not ratings.shape == lower.shape == upper.shape == votes.shape == (n,):
        raise ValueError("one rating, bound and vote count per contestant is required")
    if not 0.0 < floor <= 1.0 or not 0.0 <= new_share < 1.0:
        raise ValueError("floor must be in (0, 1] and new_share in [0, 1)")
    first, second = all_pairs(n)
    k = first.size
    if k == 0:
        return PairPlan(n, first, second, np.zeros(0))
    uniform = np.full(k, 1.0 / k)
    rated = np.isfinite(ratings) & np.isfinite(lower) & np.isfinite(upper)
    new = ~rated | (votes < new_votes)
    settled = np.flatnonzero(~new)
    if settled.size < 2:
        return PairPlan(n, first, second, uniform)
    score = _variance_scores(
        ratings, lower, upper, settled, first, second, top=top, own_share=own_share
    )
    touches_new = new[first] | new[second]
    active = np.where(touches_new, 0.0, score)
    total = active.sum()
    active = active / total if total > 0 else np.where(touches_new, 0.0, 1.0) / (~touches_new).sum()
    probability = (1.0 - floor) * active + floor * uniform
    if touches_new.any() and new_share > 0:
        # New contestants' pairs get at least ``new_share`` of the draws between them.
        probability[~touches_new] *= (1.0 - new_share) / probability[~touches_new].sum()
        probability[touches_new] = new_share / touches_new.sum()
    result: FloatArray = probability / probability.sum()
    return PairPlan(n, first, second, result)


def _variance_scores(
    ratings: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    settled: IntArray,
    first: IntArray,
    second: IntArray,
    *,
    top: int,
    own_share: float,
) -> FloatArray:
    """Per pair, the root of its summed squared share in the variances that matter, each
    weighted by how much it still matters (see the module): the intervals of the two
    contestants at each adjacent gap of the first ``top`` ranks (every rank for 0), more while
    the two intervals overlap, and ``own_share`` as much for every contestant's own."""
    n = ratings.size
    theta = np.zeros(n)
    theta[settled] = (ratings[settled] - ratings[settled].mean()) / RATING_PER_THETA
    p = 1.0 / (1.0 + np.exp(-(theta[first] - theta[second])))
    information = p * (1.0 - p)
    keep = np.isin(first, settled) & np.isin(second, settled)
    position = np.full(n, -1, dtype=np.int64)
    position[settled] = np.arange(settled.size)
    # The uniform design's Fisher information over the settled contestants; its
    # pseudo-inverse maps a pair's score onto the centred ratings.
    xs = np.zeros((int(keep.sum()), settled.size))
    rows = np.arange(xs.shape[0])
    xs[rows, position[first[keep]]] = 1.0
    xs[rows, position[second[keep]]] = -1.0
    hessian = (xs * information[keep, None]).T @ xs / xs.shape[0]
    share = (np.linalg.pinv(hessian) @ xs.T) ** 2 * information[keep]  # contestants x pairs
    order = settled[np.argsort(-ratings[settled], kind="stable")]
    half = (upper - lower) / 2.0
    gaps = min(top, order.size - 1) if top > 0 else order.size - 1
    focus = np.zeros(settled.size)
    for rank in range(gaps):
        hi, lo = order[rank], order[rank + 1]
        reach = half[hi] + half[lo]
        overlap = (reach - (ratings[hi] - ratings[lo])) / max(float(reach), 1e-9)
        # About 1 while the intervals overlap, falling off fast once they are apart.
        weight = 1.0 / (1.0 + np.exp(-8.0 * overlap))
        focus[position[hi]] += weight
        focus[position[lo]] += weight
    own = share.sum(axis=0)
    wanted = focus @ share
    if wanted.sum() > 0:
        own = own * (own_share * wanted.sum() / own.sum())
    score = np.zeros(first.size)
    score[keep] = np.sqrt(wanted + own)
    return score
