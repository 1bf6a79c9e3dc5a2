"""Votes aggregated per (pair, outcome) cell: the one input every rating function takes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Above this many possible cells a dense bincount wastes memory; fall back to sorting.
_DENSE_BINCOUNT_LIMIT = 1 << 24


class Outcome(IntEnum):
    """Outcome codes of a vote, as stored per vote and per cell."""

    A_WINS = 0
    B_WINS = 1
    TIE = 2
    BOTH_BAD = 3


N_OUTCOMES = len(Outcome)


@dataclass(frozen=True)
class Cells:
    """Vote counts per (side-a contestant ``i``, side-b contestant ``j``, outcome).

    ``sided`` is False when the sides were not recorded (e.g. public pair counts); then ``i`` is
    merely the first contestant of the pair and position bias cannot be measured.

    ``weight``, when given, is each cell's mean inverse-propensity weight per vote (1 = the
    pair was as likely as under uniform sampling): the Bradley–Terry fit and its intervals
    weight the votes by it, so that actively sampled pairs do not bias the ratings. Counts,
    battle matrices and win rates stay the plain votes. None: every vote weighs 1.
    """

    n_models: int
    i: IntArray
    j: IntArray
    outcome: IntArray
    count: IntArray
    sided: bool = True
    weight: FloatArray | None = None

    @property
    def total(self) -> int:
        """Number of votes."""
        return int(self.count.sum())

    def votes_per_model(self) -> IntArray:
        """Votes each contestant took part in, on either side."""
        per = np.bincount(self.i, weights=self.count, minlength=self.n_models)
        per += np.bincount(self.j, weights=self.count, minlength=self.n_models)
        return per.astype(np.int64)

    def without_both_bad(self) -> Cells:
        """The same votes less the both-bad ones."""
        keep = self.outcome != Outcome.BOTH_BAD
        return self.select(keep)

    def select(self, keep: npt.NDArray[np.bool_]) -> Cells:
        """The cells where ``keep`` is true."""
        return Cells(
            n_models=self.n_models,
            i=self.i[keep],
            j=self.j[keep],
            outcome=self.outcome[keep],
            count=self.count[keep],
            sided=self.sided,
            weight=None if self.weight is None else self.weight[keep],
        )

    def restrict(self, models: IntArray) -> Cells:
        """Votes among ``models`` only, re-indexed to positions in ``models``."""
        new_index = np.full(self.n_models, -1, dtype=np.int64)
        new_index[models] = np.arange(len(models), dtype=np.int64)
        keep = (new_index[self.i] >= 0) & (new_index[self.j] >= 0)
        return Cells(
            n_models=len(models),
            i=new_index[self.i[keep]],
            j=new_index[self.j[keep]],
            outcome=self.outcome[keep],
            count=self.count[keep],
            sided=self.sided,
            weight=None if self.weight is None else self.weight[keep],
        )


def _as_index_array(values: npt.ArrayLike, name: str) -> IntArray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers")
    return array.astype(np.int64, copy=False)


def count_keys(
    keys: IntArray, n_keys: int, weights: IntArray | None = None
) -> tuple[IntArray, IntArray]:
    """Distinct values of ``keys`` (all in ``[0, n_keys)``) and how often each occurs (or the
    sum of their ``weights``), sorted; keys whose total is zero are left out."""
    if n_keys <= max(_DENSE_BINCOUNT_LIMIT, 4 * keys.size):
        totals = np.bincount(keys, weights=weights, minlength=n_keys)
        present = np.flatnonzero(totals)
        return present.astype(np.int64), np.rint(totals[present]).astype(np.int64)
    present, inverse = np.unique(keys, return_inverse=True)
    totals = np.bincount(inverse.reshape(-1), weights=weights, minlength=present.size)
    nonzero = totals > 0
    return present[nonzero].astype(np.int64), np.rint(totals[nonzero]).astype(np.int64)


def aggregate(
    model_a_idx: npt.ArrayLike,
    model_b_idx: npt.ArrayLike,
    outcome_codes: npt.ArrayLike,
    n_models: int,
    *,
    counts: npt.ArrayLike | None = None,
    weights: npt.ArrayLike | None = None,
) -> Cells:
    """Aggregate per-vote arrays (side-a index, side-b index, `Outcome` code) into cells.

    ``counts``, if given, says how many votes each row stands for (rows a database already
    grouped). ``weights``, if given, is each row's inverse-propensity weight per vote (see
    `Cells.weight`; a cell keeps the mean over its votes). Raises ValueError on mismatched
    lengths, out-of-range codes, negative counts, non-positive weights or a contestant facing
    itself.
    """
    a = _as_index_array(model_a_idx, "model_a_idx")
    b = _as_index_array(model_b_idx, "model_b_idx")
    o = _as_index_array(outcome_codes, "outcome_codes")
    row_counts = None if counts is None else _as_index_array(counts, "counts")
    ipw = None if weights is None else np.asarray(weights, dtype=np.float64)
    if not a.size == b.size == o.size or (row_counts is not None and row_counts.size != a.size):
        raise ValueError("per-vote arrays differ in length")
    if ipw is not None and (ipw.shape != a.shape or not np.all(np.isfinite(ipw) & (ipw > 0))):
        raise ValueError("weights must be positive, one per row")
    if n_models < 0:
        raise ValueError("n_models must not be negative")
    if a.size:
        if min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_models:
            raise ValueError("contestant index out of range")
        if o.min() < 0 or o.max() >= N_OUTCOMES:
            raise ValueError("unknown outcome code")
        if np.any(a == b):
            raise ValueError("a contestant cannot face itself")
        if row_counts is not None and row_counts.min() < 0:
            raise ValueError("counts must not be negative")
    # In place: at a million votes each temporary array costs about a millisecond.
    keys = a * (n_models * N_OUTCOMES)
    keys += b * N_OUTCOMES
    keys += o
    present, totals = count_keys(keys, n_models * n_models * N_OUTCOMES, row_counts)
    pair, outcome = np.divmod(present, N_OUTCOMES)
    i, j = np.divmod(pair, max(n_models, 1))
    mean_weight = None
    if ipw is not None:
        mean_weight = _mean_weight(keys, present, totals, ipw, row_counts)
    return Cells(
        n_models=n_models, i=i, j=j, outcome=outcome, count=totals, sided=True, weight=mean_weight
    )


def _mean_weight(
    keys: IntArray,
    present: IntArray,
    totals: IntArray,
    ipw: FloatArray,
    counts: IntArray | None,
) -> FloatArray:
    """Mean of ``ipw`` per present key, each row counted ``counts`` times (once without)."""
    votes = ipw if counts is None else ipw * counts
    where = np.searchsorted(present, keys)
    found = where < present.size
    found[found] = present[where[found]] == keys[found]
    sums = np.bincount(where[found], weights=votes[found], minlength=present.size)
    result: FloatArray = sums / np.maximum(totals, 1)
    return result


def cells_from_pair_counts(
    pairs: npt.ArrayLike,
    counts: npt.ArrayLike,
    n_models: int,
) -> Cells:
    """Cells from per-pair counts ``[wins of i, wins of j, ties, both-bad]`` for pairs ``[i, j]``.

    Sides are unknown in this form, so the result has ``sided=False``.
    """
    pair_array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    count_array = np.asarray(counts, dtype=np.int64).reshape(-1, N_OUTCOMES)
    if pair_array.shape[0] != count_array.shape[0]:
        raise ValueError("pairs and counts differ in length")
    if pair_array.size and (pair_array.min() < 0 or pair_array.max() >= n_models):
        raise ValueError("contestant index out of range")
    if np.any(pair_array[:, 0] == pair_array[:, 1]):
        raise ValueError("a contestant cannot face itself")
    if np.any(count_array < 0):
        raise ValueError("counts must not be negative")
    n_pairs = pair_array.shape[0]
    # Column k of the counts is exactly outcome code k with i on side a.
    i = np.repeat(pair_array[:, 0], N_OUTCOMES)
    j = np.repeat(pair_array[:, 1], N_OUTCOMES)
    outcome = np.tile(np.arange(N_OUTCOMES, dtype=np.int64), n_pairs)
    count = count_array.reshape(-1)
    keep = count > 0
    return Cells(
        n_models=n_models,
        i=i[keep],
        j=j[keep],
        outcome=outcome[keep],
        count=count[keep],
        sided=False,
    )
