"""Agreement between raters on the same items: Krippendorff's alpha with a bootstrap interval,
and self-agreement on repeated items.

An item is one question shown with the same two answers; each rater's verdict is coded in the
item's own orientation (which answer won, not which side), so swapping sides between raters
changes nothing. Alpha itself comes from the maintained ``krippendorff`` package (nominal
level); only the resampling of items around it is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import krippendorff
import numpy as np

from arena.ranking.cells import FloatArray, IntArray
from arena.ranking.intervals import DEFAULT_ROUNDS

# Verdicts in an item's orientation.
FIRST, SECOND, TIE, BOTH_BAD = 0, 1, 2, 3


@dataclass(frozen=True)
class Alpha:
    """Krippendorff's alpha (nominal) over ``items`` items rated by two or more raters, with
    ``ratings`` verdicts among them, and its 95% percentile interval from resampling items;
    alpha is None when it is undefined (no pairable ratings, or every verdict the same)."""

    alpha: float | None
    ci_lower: float | None
    ci_upper: float | None
    items: int
    ratings: int


def reliability_matrix(item: IntArray, rater: IntArray, verdict: IntArray) -> FloatArray:
    """Raters x items matrix of verdicts (NaN: not rated), over the items with at least two
    ratings; a rater's later verdict on an item replaces an earlier one."""
    if item.size == 0:
        return np.zeros((0, 0))
    # Distinct raters per item first, so the matrix holds only the items that two or more
    # raters rated (a campaign of a million battles may have a few hundred of them).
    pairs = np.unique(np.stack([item, rater], axis=1), axis=0)
    shared, per_item = np.unique(pairs[:, 0], return_counts=True)
    keep = np.isin(item, shared[per_item >= 2])
    item, rater, verdict = item[keep], rater[keep], verdict[keep]
    items, item_pos = np.unique(item, return_inverse=True)
    raters, rater_pos = np.unique(rater, return_inverse=True)
    result: FloatArray = np.full((raters.size, items.size), np.nan)
    result[rater_pos.reshape(-1), item_pos.reshape(-1)] = verdict
    return result


def _alpha(matrix: FloatArray) -> float | None:
    if matrix.shape[1] == 0:
        return None
    values = matrix[~np.isnan(matrix)]
    if np.unique(values).size < 2:
        return None  # no disagreement is possible to measure: alpha is 0/0
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


def krippendorff_alpha(
    item: IntArray,
    rater: IntArray,
    verdict: IntArray,
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> Alpha:
    """Alpha of the verdicts (one row per rating: item id, rater id, verdict code) and its
    interval from ``rounds`` resamples of the items with replacement."""
    matrix = reliability_matrix(item, rater, verdict)
    n_items = matrix.shape[1]
    ratings = int((~np.isnan(matrix)).sum())
    value = _alpha(matrix)
    if value is None or n_items < 2 or rounds == 0:
        return Alpha(alpha=value, ci_lower=None, ci_upper=None, items=n_items, ratings=ratings)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(rounds):
        resampled = _alpha(matrix[:, rng.integers(0, n_items, n_items)])
        if resampled is not None:
            draws.append(resampled)
    if not draws:
        return Alpha(alpha=value, ci_lower=None, ci_upper=None, items=n_items, ratings=ratings)
    lower, upper = np.percentile(np.array(draws), [2.5, 97.5])
    return Alpha(
        alpha=value, ci_lower=float(lower), ci_upper=float(upper), items=n_items, ratings=ratings
    )
