"""Judgments as rating input, and the judge's diagnostics: position consistency, length bias,
run-to-run variation over trials, and composite Bradley–Terry with human votes.

A pairwise judgment is a verdict code 0..4 (``A>>B``, ``A>B``, ``A=B``, ``B>A``, ``B>>A``) on
the answer shown first (side a) against the one shown second; its side-a score is 1, 1, 0.5,
0, 0. Judgments of one unordered answer pair share a pair id; ``first_is_lo`` says whether the
pair's lower-id answer was shown first, so both orders of one pair can be compared.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from arena.ranking.bt import ALPHA, Anchor, bt_fit, newton, pair_data, to_ratings
from arena.ranking.cells import Cells, FloatArray, IntArray, Outcome, aggregate
from arena.ranking.intervals import multinomial, percentile_interval
from arena.ranking.stats import wilson_interval

BoolArray = npt.NDArray[np.bool_]

VERDICT_CODES = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
_OUTCOME = np.array([Outcome.A_WINS, Outcome.A_WINS, Outcome.TIE, Outcome.B_WINS, Outcome.B_WINS])
SCORE = np.array([1.0, 1.0, 0.5, 0.0, 0.0])
_STRONG = np.array([True, False, False, False, True])


def judgment_cells(
    first: npt.ArrayLike,
    second: npt.ArrayLike,
    verdict: npt.ArrayLike,
    n_models: int,
    *,
    strong_weight: int = 1,
) -> Cells:
    """Cells of pairwise judgments; a strong verdict (``A>>B``, ``B>>A``) counts as
    ``strong_weight`` wins (arena-hard-auto counts it as 3). Sides are the display order, so
    the cells' position bias is the judge's."""
    code = np.asarray(verdict, dtype=np.int64)
    if code.size and (code.min() < 0 or code.max() >= len(VERDICT_CODES)):
        raise ValueError("unknown verdict code")
    if strong_weight < 1:
        raise ValueError("strong_weight must be at least 1")
    counts = np.where(_STRONG[code], strong_weight, 1).astype(np.int64)
    return aggregate(first, second, _OUTCOME[code], n_models, counts=counts)


def grade_cells(
    question: npt.ArrayLike,
    trial: npt.ArrayLike,
    contestant: npt.ArrayLike,
    grade: npt.ArrayLike,
    n_models: int,
) -> Cells:
    """Single-answer grades turned into pairwise outcomes, MT-Bench style: within one question
    and trial, every two graded contestants are a battle that the higher grade wins (equal
    grades tie). Sides carry no meaning here, so the cells are unsided."""
    q = np.asarray(question, dtype=np.int64)
    t = np.asarray(trial, dtype=np.int64)
    c = np.asarray(contestant, dtype=np.int64)
    g = np.asarray(grade, dtype=np.float64)
    order = np.lexsort((c, t, q))
    q, t, c, g = q[order], t[order], c[order], g[order]
    group = np.flatnonzero(np.r_[True, (q[1:] != q[:-1]) | (t[1:] != t[:-1]), True])
    ia: list[IntArray] = []
    ib: list[IntArray] = []
    out: list[IntArray] = []
    for start, end in itertools.pairwise(group.tolist()):
        if end - start < 2:
            continue
        x, y = np.triu_indices(end - start, k=1)
        cx, cy = c[start:end][x], c[start:end][y]
        gx, gy = g[start:end][x], g[start:end][y]
        keep = cx != cy
        ia.append(cx[keep])
        ib.append(cy[keep])
        out.append(
            np.where(gx > gy, Outcome.A_WINS, np.where(gx < gy, Outcome.B_WINS, Outcome.TIE))[keep]
        )
    if not ia:
        empty = np.zeros(0, dtype=np.int64)
        return Cells(n_models, empty, empty, empty, empty, sided=False)
    cells = aggregate(np.concatenate(ia), np.concatenate(ib), np.concatenate(out), n_models)
    return dataclasses.replace(cells, sided=False)


def lo_scores(score_first: npt.ArrayLike, first_is_lo: npt.ArrayLike) -> FloatArray:
    """The score of each pair's lower-id answer in each judgment (1 won, 0.5 tie, 0 lost)."""
    s = np.asarray(score_first, dtype=np.float64)
    result: FloatArray = np.where(np.asarray(first_is_lo, dtype=np.bool_), s, 1.0 - s)
    return result


def classes(lo_score: npt.ArrayLike) -> IntArray:
    """Agreement classes (0 = lo won, 1 = tie, 2 = hi won) of mean lo scores."""
    s = np.asarray(lo_score, dtype=np.float64)
    result: IntArray = np.where(s > 0.5 + 1e-9, 0, np.where(s < 0.5 - 1e-9, 2, 1)).astype(np.int64)
    return result


@dataclass(frozen=True)
class Share:
    """``hits`` of ``n`` with a 95% Wilson interval."""

    n: int
    hits: int
    share: float | None
    ci_lower: float
    ci_upper: float

    @classmethod
    def of(cls, hits: int, n: int) -> Share:
        lower, upper = wilson_interval(hits, n)
        return cls(n=n, hits=hits, share=hits / n if n else None, ci_lower=lower, ci_upper=upper)

    def to_json(self) -> dict[str, object]:
        return {
            "n": self.n,
            "hits": self.hits,
            "share": self.share,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
        }


def consistency(
    pair: npt.ArrayLike,
    trial: npt.ArrayLike,
    first_is_lo: npt.ArrayLike,
    score_first: npt.ArrayLike,
) -> Share:
    """Of the (pair, trial)s judged in both orders, the share whose two verdicts name the same
    winner (or both a tie) once the swap is undone; strong and weak count as the same."""
    p = np.asarray(pair, dtype=np.int64)
    t = np.asarray(trial, dtype=np.int64)
    lo_first = np.asarray(first_is_lo, dtype=np.bool_)
    cls = classes(lo_scores(score_first, lo_first))
    if p.size == 0:
        return Share.of(0, 0)
    key = p * (int(t.max()) + 1) + t
    # One class per (key, order); a key judged in both orders has two entries.
    a_key, a_cls = key[lo_first], cls[lo_first]
    b_key, b_cls = key[~lo_first], cls[~lo_first]
    ia = np.argsort(a_key, kind="stable")
    ib = np.argsort(b_key, kind="stable")
    a_key, a_cls, b_key, b_cls = a_key[ia], a_cls[ia], b_key[ib], b_cls[ib]
    common, pa, pb = np.intersect1d(a_key, b_key, assume_unique=False, return_indices=True)
    return Share.of(int((a_cls[pa] == b_cls[pb]).sum()), int(common.size))


@dataclass(frozen=True)
class LengthBias:
    """Win share of the longer answer among decisive judgments of answers of unequal length,
    and the first answer's win rate per bin of the normalised length difference
    (a - b) / (a + b + 1)."""

    longer_wins: Share
    bins: tuple[tuple[float, float, int, float | None], ...]  # (from, to, judgments, win rate)

    def to_json(self) -> dict[str, object]:
        return {
            "longer_wins": self.longer_wins.to_json(),
            "bins": [
                {"from": lo, "to": hi, "judgments": n, "win_rate": rate}
                for lo, hi, n, rate in self.bins
            ],
        }


def length_bias(
    len_first: npt.ArrayLike,
    len_second: npt.ArrayLike,
    score_first: npt.ArrayLike,
    *,
    n_bins: int = 5,
) -> LengthBias:
    a = np.asarray(len_first, dtype=np.float64)
    b = np.asarray(len_second, dtype=np.float64)
    s = np.asarray(score_first, dtype=np.float64)
    decisive = (s != 0.5) & (a != b)
    longer_won = ((a > b) & (s == 1.0)) | ((b > a) & (s == 0.0))
    share = Share.of(int((longer_won & decisive).sum()), int(decisive.sum()))
    diff = (a - b) / (a + b + 1.0)
    bins: list[tuple[float, float, int, float | None]] = []
    if diff.size:
        edges = np.unique(np.quantile(diff, np.linspace(0.0, 1.0, n_bins + 1)))
        if edges.size == 1:
            edges = np.array([edges[0], edges[0]])
        which = np.clip(np.searchsorted(edges, diff, side="right") - 1, 0, edges.size - 2)
        for k in range(edges.size - 1):
            chosen = which == k
            n = int(chosen.sum())
            bins.append(
                (float(edges[k]), float(edges[k + 1]), n, float(s[chosen].mean()) if n else None)
            )
    return LengthBias(longer_wins=share, bins=tuple(bins))


@dataclass(frozen=True)
class TrialSpread:
    """Ratings of each trial fitted on its own: per contestant the mean, standard deviation and
    the 2.5–97.5 percentile range over trials (how far one run of the judge moves)."""

    ratings: FloatArray  # (trials, models)
    mean: FloatArray
    std: FloatArray
    lower: FloatArray
    upper: FloatArray


def trial_spread(
    first: npt.ArrayLike,
    second: npt.ArrayLike,
    outcome: npt.ArrayLike,
    counts: npt.ArrayLike,
    trial: npt.ArrayLike,
    n_models: int,
    *,
    anchor: Anchor | None = None,
    alpha: float = ALPHA,
) -> TrialSpread | None:
    """`TrialSpread` of judgments with ``trial`` numbers; None with fewer than two trials."""
    t = np.asarray(trial, dtype=np.int64)
    trials = np.unique(t)
    if trials.size < 2:
        return None
    a, b = np.asarray(first), np.asarray(second)
    o, c = np.asarray(outcome), np.asarray(counts)
    rows = []
    for value in trials.tolist():
        keep = t == value
        cells = aggregate(a[keep], b[keep], o[keep], n_models, counts=c[keep])
        fit = bt_fit(cells, alpha=alpha)
        rows.append(to_ratings(fit.theta, fit.component, anchor))
    return spread_of(np.vstack(rows))


def spread_of(ratings: FloatArray) -> TrialSpread:
    """The `TrialSpread` of per-trial ratings, shape (trials >= 2, models)."""
    lower, upper = percentile_interval(ratings)
    return TrialSpread(
        ratings=ratings,
        mean=ratings.mean(axis=0),
        std=ratings.std(axis=0, ddof=1),
        lower=lower,
        upper=upper,
    )


def grade_trial_spread(
    question: npt.ArrayLike,
    trial: npt.ArrayLike,
    contestant: npt.ArrayLike,
    grade: npt.ArrayLike,
    n_models: int,
    *,
    anchor: Anchor | None = None,
    alpha: float = ALPHA,
) -> TrialSpread | None:
    """`trial_spread` of single-answer grades (each trial's `grade_cells` rated on its own)."""
    t = np.asarray(trial, dtype=np.int64)
    trials = np.unique(t)
    if trials.size < 2:
        return None
    q, c, g = np.asarray(question), np.asarray(contestant), np.asarray(grade)
    rows = []
    for value in trials.tolist():
        keep = t == value
        fit = bt_fit(grade_cells(q[keep], t[keep], c[keep], g[keep], n_models), alpha=alpha)
        rows.append(to_ratings(fit.theta, fit.component, anchor))
    return spread_of(np.vstack(rows))


@dataclass(frozen=True)
class Composite:
    """One Bradley–Terry rating vector fitted to several weighted sets of votes, with a
    bootstrap interval that resamples each set on its own."""

    ratings: FloatArray
    lower: FloatArray
    upper: FloatArray
    component: IntArray
    weights: tuple[float, ...]


def composite_bt(
    parts: Sequence[tuple[Cells, float]],
    *,
    rounds: int = 200,
    seed: int = 0,
    anchor: Anchor | None = None,
    alpha: float = ALPHA,
) -> Composite:
    """Composite Bradley–Terry (as lmarena's arena-rank offers): maximise the sum over parts
    of ``weight`` x the part's log-likelihood, one rating per contestant. All parts index the
    same contestants."""
    if not parts:
        raise ValueError("need at least one part")
    n = parts[0][0].n_models
    if any(cells.n_models != n for cells, _ in parts):
        raise ValueError("every part must index the same contestants")
    if any(w < 0 for _, w in parts):
        raise ValueError("weights must not be negative")
    union = Cells(
        n_models=n,
        i=np.concatenate([c.i for c, _ in parts]),
        j=np.concatenate([c.j for c, _ in parts]),
        outcome=np.concatenate([c.outcome for c, _ in parts]),
        count=np.concatenate([c.count for c, _ in parts]),
    )
    whole = pair_data(union)
    whole_keys = whole.first * max(n, 1) + whole.second
    pieces = []
    for cells, weight in parts:
        data = pair_data(cells)
        where = np.searchsorted(whole_keys, data.first * max(n, 1) + data.second)
        pieces.append((data, where, weight))

    def wins(draws: list[npt.NDArray[np.int64]]) -> tuple[FloatArray, FloatArray]:
        size = draws[0].shape[0]
        w1 = np.zeros((size, whole.n_pairs))
        w2 = np.zeros((size, whole.n_pairs))
        for (data, where, weight), counts in zip(pieces, draws, strict=True):
            p1, p2 = data.fit_wins(counts)  # a part's inverse-propensity weights, if any
            w1[:, where] += weight * p1
            w2[:, where] += weight * p2
        return w1, w2

    point1, point2 = wins([d.cell_count[None, :] for d, _, _ in pieces])
    theta = newton(np.zeros((1, n)), point1, point2, whole, alpha)[0]
    fit = bt_fit(union, alpha=alpha)  # only for the comparison graph's pieces
    ratings = to_ratings(theta, fit.component, anchor)
    if rounds > 0:
        rng = np.random.default_rng(seed)
        draws = [
            multinomial(rng, d.total, d.cell_count / max(d.total, 1), size=rounds)
            if d.total
            else np.zeros((rounds, d.cell_count.size), dtype=np.int64)
            for d, _, _ in pieces
        ]
        w1, w2 = wins(draws)
        samples = newton(np.broadcast_to(theta, (rounds, n)), w1, w2, whole, alpha, tol=1e-7)
        lower, upper = percentile_interval(to_ratings(samples, fit.component, anchor))
    else:
        lower, upper = ratings.copy(), ratings.copy()
    return Composite(
        ratings=ratings,
        lower=lower,
        upper=upper,
        component=fit.component,
        weights=tuple(float(w) for _, w in parts),
    )
