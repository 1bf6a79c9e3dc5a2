"""Absolute grades (1–10): per-contestant means with bootstrap intervals, and agreement between
graders (Krippendorff's alpha at the interval level, from the maintained ``krippendorff``
package; the raters x items matrix is `arena.ranking.raters.reliability_matrix`).

The bootstrap resamples each contestant's grades with replacement, as the cell bootstrap of
the ratings does: drawing n grades from the grades 1..10 with their observed shares is a
multinomial over ten cells, so a round costs ten draws per contestant, not n.
"""

from __future__ import annotations

from dataclasses import dataclass

import krippendorff
import numpy as np

from arena.ranking.cells import FloatArray, IntArray
from arena.ranking.intervals import DEFAULT_ROUNDS, percentile_interval
from arena.ranking.raters import reliability_matrix

LOWEST, HIGHEST = 1, 10


@dataclass(frozen=True)
class MeanGrades:
    """Per contestant: grades counted, mean grade and its 95% bootstrap interval (NaN
    without grades)."""

    count: IntArray
    mean: FloatArray
    ci_lower: FloatArray
    ci_upper: FloatArray


def mean_grades(
    contestant: IntArray,
    grade: IntArray,
    n_models: int,
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> MeanGrades:
    """Mean of each contestant's grades (``grade[k]`` given to ``contestant[k]``, 1..10) with a
    percentile interval from ``rounds`` resamples of its grades."""
    contestant = np.asarray(contestant, dtype=np.int64)
    grade = np.asarray(grade, dtype=np.int64)
    if contestant.shape != grade.shape:
        raise ValueError("one contestant per grade is required")
    if grade.size and (grade.min() < LOWEST or grade.max() > HIGHEST):
        raise ValueError("grades run from 1 to 10")
    if contestant.size and (contestant.min() < 0 or contestant.max() >= n_models):
        raise ValueError("contestant index out of range")
    levels = np.arange(LOWEST, HIGHEST + 1, dtype=np.float64)
    table = np.zeros((n_models, levels.size), dtype=np.int64)
    np.add.at(table, (contestant, grade - LOWEST), 1)
    count = table.sum(axis=1)
    mean = np.full(n_models, np.nan)
    lower = np.full(n_models, np.nan)
    upper = np.full(n_models, np.nan)
    rng = np.random.default_rng(seed)
    for k in np.flatnonzero(count):
        n = int(count[k])
        mean[k] = float(table[k] @ levels) / n
        if rounds < 1:
            continue
        draws = rng.multinomial(n, table[k] / n, size=rounds)
        lo, hi = percentile_interval((draws @ levels / n)[:, None])
        lower[k], upper[k] = float(lo[0]), float(hi[0])
    return MeanGrades(count=count, mean=mean, ci_lower=lower, ci_upper=upper)


def grade_alpha(item: IntArray, rater: IntArray, grade: IntArray) -> float | None:
    """Krippendorff's alpha, interval level, of the grades (one row per grade: the item graded,
    e.g. an answer, the grader, the grade), over items graded at least twice; None when it is
    undefined (no such item, or every grade the same)."""
    matrix = reliability_matrix(
        np.asarray(item, dtype=np.int64),
        np.asarray(rater, dtype=np.int64),
        np.asarray(grade, dtype=np.int64),
    )
    if matrix.shape[1] == 0:
        return None
    values = matrix[~np.isnan(matrix)]
    if np.unique(values).size < 2:
        return None
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval"))
