"""Agreement of two raters on the same items (a judge and the human votes of one battle), and
correlation of two leaderboards, with bootstrap intervals.

Items are labelled with three classes, ``LO`` (the pair's first answer won), ``TIE`` and ``HI``.
Like the rating bootstrap, resampling N items with replacement is drawing multinomial(N, p)
over the nine cells of the confusion matrix, so a round costs nine numbers, not N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from arena.ranking.cells import FloatArray, IntArray
from arena.ranking.intervals import DEFAULT_ROUNDS
from arena.ranking.stats import wilson_interval

LO, TIE, HI = 0, 1, 2
N_CLASSES = 3


def confusion(
    a: npt.ArrayLike, b: npt.ArrayLike, *, weights: npt.ArrayLike | None = None
) -> IntArray:
    """3 x 3 counts of (class by rater a, class by rater b)."""
    x = np.asarray(a, dtype=np.int64)
    y = np.asarray(b, dtype=np.int64)
    if x.shape != y.shape:
        raise ValueError("both raters need one label per item")
    if x.size and (min(x.min(), y.min()) < 0 or max(x.max(), y.max()) >= N_CLASSES):
        raise ValueError("labels must be 0, 1 or 2")
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.bincount(x * N_CLASSES + y, weights=w, minlength=N_CLASSES * N_CLASSES)
    result: IntArray = np.rint(counts).astype(np.int64).reshape(N_CLASSES, N_CLASSES)
    return result


def kappa_from_confusion(matrix: npt.ArrayLike) -> FloatArray:
    """Cohen's kappa of one confusion matrix (shape (3, 3)) or of a batch ((rounds, 3, 3)).
    NaN where it is undefined (no items, or both raters always gave the same one class)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 2:
        m = m[None]
    total = m.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.trace(m, axis1=1, axis2=2) / total
        expected = (m.sum(axis=2) * m.sum(axis=1)).sum(axis=1) / total**2
        kappa: FloatArray = (observed - expected) / (1.0 - expected)
    kappa[~np.isfinite(kappa)] = np.nan
    return kappa


@dataclass(frozen=True)
class Agreement:
    """How often two raters agree on the same items.

    ``with_ties``: share of items on which both gave the same class (ties included);
    ``without_ties``: share of the items both called decisively (no tie from either) on which
    they named the same winner. Shares carry 95% Wilson intervals, kappa a bootstrap one."""

    items: int
    agree: int
    with_ties: float | None
    with_ties_ci: tuple[float, float]
    decisive: int
    agree_decisive: int
    without_ties: float | None
    without_ties_ci: tuple[float, float]
    kappa: float | None
    kappa_ci: tuple[float | None, float | None]
    confusion: list[list[int]]

    def to_json(self) -> dict[str, object]:
        return {
            "items": self.items,
            "agree": self.agree,
            "with_ties": self.with_ties,
            "with_ties_ci": list(self.with_ties_ci),
            "decisive": self.decisive,
            "agree_decisive": self.agree_decisive,
            "without_ties": self.without_ties,
            "without_ties_ci": list(self.without_ties_ci),
            "kappa": self.kappa,
            "kappa_ci": list(self.kappa_ci),
            "confusion": self.confusion,
        }


def _finite(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def agreement(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    weights: npt.ArrayLike | None = None,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> Agreement:
    """Agreement of labels ``a`` and ``b`` (one per item; ``weights`` items per row)."""
    return agreement_from_confusion(confusion(a, b, weights=weights), rounds=rounds, seed=seed)


def agreement_from_confusion(
    m: IntArray, *, rounds: int = DEFAULT_ROUNDS, seed: int = 0
) -> Agreement:
    """`agreement` of the items a confusion matrix counts."""
    total = int(m.sum())
    agree = int(np.trace(m))
    decisive_cells = m[np.ix_([LO, HI], [LO, HI])]
    decisive = int(decisive_cells.sum())
    agree_decisive = int(np.trace(decisive_cells))
    kappa = float(kappa_from_confusion(m)[0])
    lower: float | None = None
    upper: float | None = None
    if total and rounds > 0 and np.isfinite(kappa):
        rng = np.random.default_rng(seed)
        p = m.reshape(-1) / total
        # Nine cells: numpy's own multinomial is cheap here (`multinomial` pays off for many).
        draws = rng.multinomial(total, p, size=rounds).reshape(rounds, N_CLASSES, N_CLASSES)
        samples = kappa_from_confusion(draws)
        samples = samples[np.isfinite(samples)]
        if samples.size:
            lo, hi = np.percentile(samples, [2.5, 97.5])
            lower, upper = float(lo), float(hi)
    return Agreement(
        items=total,
        agree=agree,
        with_ties=agree / total if total else None,
        with_ties_ci=wilson_interval(agree, total),
        decisive=decisive,
        agree_decisive=agree_decisive,
        without_ties=agree_decisive / decisive if decisive else None,
        without_ties_ci=wilson_interval(agree_decisive, decisive),
        kappa=_finite(kappa),
        kappa_ci=(lower, upper),
        confusion=m.tolist(),
    )


# Correlation of two leaderboards --------------------------------------------------------------


def spearman_rows(x: FloatArray, y: FloatArray) -> FloatArray:
    """Spearman's rho of each row pair of ``x`` and ``y`` (shape (rounds, items))."""
    rx = np.asarray(stats.rankdata(x, axis=1), dtype=np.float64)
    ry = np.asarray(stats.rankdata(y, axis=1), dtype=np.float64)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho: FloatArray = (rx * ry).sum(axis=1) / np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    return rho


def kendall_rows(x: FloatArray, y: FloatArray) -> FloatArray:
    """Kendall's tau-b of each row pair of ``x`` and ``y`` (as `scipy.stats.kendalltau`)."""
    n = x.shape[1]
    upper = np.triu_indices(n, k=1)
    sx = np.sign(x[:, :, None] - x[:, None, :])[:, upper[0], upper[1]]
    sy = np.sign(y[:, :, None] - y[:, None, :])[:, upper[0], upper[1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        tau: FloatArray = (sx * sy).sum(axis=1) / np.sqrt(
            (sx != 0).sum(axis=1) * (sy != 0).sum(axis=1)
        )
    return tau


@dataclass(frozen=True)
class Correlation:
    """Spearman and Kendall correlation of two leaderboards over the contestants both rate,
    with 95% intervals from pairing the two boards' bootstrap rounds."""

    contestants: int
    spearman: float | None
    spearman_ci: tuple[float | None, float | None]
    kendall: float | None
    kendall_ci: tuple[float | None, float | None]

    def to_json(self) -> dict[str, object]:
        return {
            "contestants": self.contestants,
            "spearman": self.spearman,
            "spearman_ci": list(self.spearman_ci),
            "kendall": self.kendall,
            "kendall_ci": list(self.kendall_ci),
        }


def _interval(samples: FloatArray) -> tuple[float | None, float | None]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None, None
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return float(lo), float(hi)


def rank_correlation(
    x: FloatArray, y: FloatArray, x_samples: FloatArray, y_samples: FloatArray
) -> Correlation:
    """Correlation of ratings ``x`` and ``y`` (the same contestants in the same order), point
    estimates by `scipy.stats.spearmanr` and `scipy.stats.kendalltau`, and intervals over the
    paired bootstrap rounds ``x_samples``, ``y_samples`` (rounds x items; the smaller number of
    rounds is used)."""
    n = int(x.size)
    if n < 2:
        return Correlation(n, None, (None, None), None, (None, None))
    rho = float(stats.spearmanr(x, y).statistic)
    tau = float(stats.kendalltau(x, y).statistic)
    rounds = min(x_samples.shape[0], y_samples.shape[0])
    xs, ys = x_samples[:rounds], y_samples[:rounds]
    return Correlation(
        contestants=n,
        spearman=_finite(rho),
        spearman_ci=_interval(spearman_rows(xs, ys)),
        kendall=_finite(tau),
        kendall_ci=_interval(kendall_rows(xs, ys)),
    )


def separability(lower: npt.ArrayLike, upper: npt.ArrayLike) -> float | None:
    """Share of contestant pairs whose intervals do not overlap (arena-hard's separability);
    None with fewer than two contestants."""
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    n = lo.size
    if n < 2:
        return None
    apart = (lo[:, None] > hi[None, :]) | (lo[None, :] > hi[:, None])
    pairs = np.triu_indices(n, k=1)
    return float(apart[pairs].mean())
