"""Online Elo in vote order: shown beside Bradley–Terry, never instead of it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from arena.ranking.cells import N_OUTCOMES, FloatArray, Outcome

ELO_K = 4.0
ELO_BASE = 10.0
ELO_SCALE = 400.0
ELO_START = 1000.0

# Score of side a per outcome code: ties and both-bad are half a win.
_SCORE_A = np.array([1.0, 0.0, 0.5, 0.5])


def elo_online(
    model_a_idx: npt.ArrayLike,
    model_b_idx: npt.ArrayLike,
    outcome_codes: npt.ArrayLike,
    n_models: int,
    *,
    k: float = ELO_K,
    base: float = ELO_BASE,
    scale: float = ELO_SCALE,
    start: float = ELO_START,
    drop_both_bad: bool = False,
) -> FloatArray:
    """Final Elo rating per contestant after replaying the votes in the order given.

    Each vote moves both sides by k * (score - expected), expected = 1 / (1 + base^(diff/scale)).
    """
    a = np.asarray(model_a_idx, dtype=np.int64)
    b = np.asarray(model_b_idx, dtype=np.int64)
    o = np.asarray(outcome_codes, dtype=np.int64)
    if not a.shape == b.shape == o.shape or a.ndim != 1:
        raise ValueError("per-vote arrays must be one-dimensional and of equal length")
    if a.size:
        if min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_models:
            raise ValueError("contestant index out of range")
        if o.min() < 0 or o.max() >= N_OUTCOMES:
            raise ValueError("unknown outcome code")
    if drop_both_bad:
        keep = o != Outcome.BOTH_BAD
        a, b, o = a[keep], b[keep], o[keep]
    # The update is sequential by nature; precompute what numpy can and keep the loop to
    # plain floats in Python lists, which beats numpy scalar indexing several times over.
    ratings = [float(start)] * n_models
    inverse_scale = 1.0 / scale
    for ia, ib, score in zip(a.tolist(), b.tolist(), _SCORE_A[o].tolist(), strict=True):
        ra = ratings[ia]
        rb = ratings[ib]
        expected = 1.0 / (1.0 + base ** ((rb - ra) * inverse_scale))
        step = k * (score - expected)
        ratings[ia] = ra + step
        ratings[ib] = rb - step
    return np.array(ratings, dtype=np.float64)
