"""Pair sampling benchmark on simulated campaigns: ``python -m benchmarks.sampling``.

Campaigns of 10 and 30 contestants whose true strengths are ratings of the public Chatbot Arena
table (the models nearest to evenly spaced ratings from its top to its bottom), voted on by
simulated voters who follow Bradley–Terry on those strengths (with ties that keep each vote's
expected score at the model's win probability, so the half-win convention is exact). Three
samplers, each given the same seeds:

  uniform   every pair equally likely;
  balanced  today's sampler: the pair with the fewest battles served, ties at random;
  active    `arena.ranking.active.active_plan` from the latest snapshot, recomputed every
            ``--batch`` votes (as the campaign recomputes its snapshot), and the ratings fitted
            with the inverse-propensity weights of the plan each vote was drawn under.

After every batch the leaderboard is refitted with a bootstrap (``--rounds``) and two goals
are checked: (i) the three highest-rated are the true top 3 in order and the intervals of
ranks 1|2, 2|3 and 3|4 do not overlap; (ii) the mean interval width is at most 20 points.
Printed per campaign size and sampler: the median votes each goal needed over the seeds, the
``active/uniform`` ratios, and the share of intervals (all contestants, all checks, all
seeds) that covered the true strengths (centred like the ratings, on mean 1000).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from arena.ranking import MEAN_RATING, aggregate, bootstrap_ratings, bt_fit, to_ratings
from arena.ranking.active import PairPlan, active_plan, all_pairs, uniform_plan
from arena.ranking.cells import FloatArray, IntArray
from arena.ranking.intervals import percentile_interval

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
TABLE = DATA / "chatbot_arena_published_bt_20240813.csv"
TIE_SHARE = 0.3  # ties as a share of the closer side's probability (see `simulate_votes`)
WIDTH_GOAL = 20.0
TARGET_RATIO = 0.6
TARGET_COVERAGE = 0.90
SAMPLERS = ("uniform", "balanced", "active")


def table_strengths(n: int, path: Path = TABLE) -> FloatArray:
    """Ratings of ``n`` models of the published table: those nearest to ``n`` evenly spaced
    values from its highest rating to its lowest (each model once), highest first."""
    with path.open(encoding="utf-8") as handle:
        ratings = np.array([float(row["rating"]) for row in csv.DictReader(handle)])
    targets = np.linspace(ratings.max(), ratings.min(), n)
    free = np.ones(ratings.size, dtype=bool)
    chosen = []
    for target in targets:
        candidates = np.flatnonzero(free)
        pick = candidates[np.argmin(np.abs(ratings[candidates] - target))]
        free[pick] = False
        chosen.append(ratings[pick])
    return np.sort(np.array(chosen))[::-1]


def simulate_votes(
    rng: np.random.Generator, strengths: FloatArray, first: IntArray, second: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """One vote per battle (``first[k]`` against ``second[k]``): sides at random, outcome codes
    0 a wins, 1 b wins, 2 tie. A tie takes ``TIE_SHARE`` of the less likely side's chance and
    as much of the other's, so a vote's expected score (a tie half a win) is exactly the
    Bradley–Terry probability."""
    swap = rng.random(first.size) < 0.5
    a = np.where(swap, second, first)
    b = np.where(swap, first, second)
    p = 1.0 / (1.0 + 10.0 ** ((strengths[b] - strengths[a]) / 400.0))
    tie = TIE_SHARE * 2.0 * np.minimum(p, 1.0 - p)
    u = rng.random(first.size)
    outcome = np.where(u < p - tie / 2.0, 0, np.where(u < p + tie / 2.0, 2, 1))
    return a, b, outcome.astype(np.int64)


@dataclass
class Board:
    ratings: FloatArray
    lower: FloatArray
    upper: FloatArray
    votes: IntArray


def rate(
    a: IntArray, b: IntArray, outcome: IntArray, weight: FloatArray | None, n: int, rounds: int
) -> Board:
    """Ratings (mean 1000) and 95% bootstrap bounds; weighted by ``weight`` when given."""
    cells = aggregate(a, b, outcome, n, weights=weight)
    fit = bt_fit(cells)
    ratings = to_ratings(fit.theta, fit.component)
    lower, upper = percentile_interval(bootstrap_ratings(fit, rounds=rounds, seed=0))
    return Board(ratings, lower, upper, cells.votes_per_model())


def top3_resolved(board: Board, truth: FloatArray) -> bool:
    """Goal (i): the true top 3 in order, and ranks 1|2, 2|3, 3|4 separated by the intervals."""
    order = np.argsort(-board.ratings, kind="stable")
    if not np.array_equal(order[:3], np.argsort(-truth, kind="stable")[:3]):
        return False
    return all(board.lower[order[k]] > board.upper[order[k + 1]] for k in range(3))


def mean_width(board: Board) -> float:
    return float(np.mean(board.upper - board.lower))


@dataclass
class Run:
    top3_votes: int | None
    width_votes: int | None
    covered: int
    intervals: int


class Sampler:
    """Draws the pairs of one batch; ``plan`` (active only) is refreshed from each board."""

    def __init__(self, kind: str, n: int, rng: np.random.Generator) -> None:
        self.kind = kind
        self.n = n
        self.rng = rng
        self.first, self.second = all_pairs(n)
        self.loads = np.zeros(self.first.size, dtype=np.int64)
        self.plan: PairPlan = uniform_plan(n)

    def refresh(self, board: Board | None) -> None:
        if self.kind == "active" and board is not None:
            self.plan = active_plan(board.ratings, board.lower, board.upper, board.votes)

    def draw(self, size: int) -> tuple[IntArray, FloatArray]:
        """Pair indices of ``size`` battles and each one's inverse-propensity weight."""
        k = self.first.size
        if self.kind == "uniform":
            pairs = self.rng.integers(0, k, size=size)
        elif self.kind == "balanced":
            pairs = np.empty(size, dtype=np.int64)
            for t in range(size):
                fewest = np.flatnonzero(self.loads == self.loads.min())
                pick = int(self.rng.choice(fewest))
                pairs[t] = pick
                self.loads[pick] += 1
            return pairs, np.ones(size)
        else:
            pairs = self.rng.choice(k, size=size, p=self.plan.probability)
            return pairs, self.plan.ipw()[pairs]
        return pairs, np.ones(size)


def campaign(
    strengths: FloatArray,
    kind: str,
    *,
    seed: int,
    batch: int,
    max_votes: int,
    rounds: int,
    stop_when_done: bool = True,
) -> Run:
    """One simulated campaign: votes in batches until both goals are met (or ``max_votes``)."""
    n = strengths.size
    rng = np.random.default_rng(seed)
    sampler = Sampler(kind, n, rng)
    truth = strengths - strengths.mean() + MEAN_RATING
    parts: list[tuple[IntArray, IntArray, IntArray, FloatArray]] = []
    top3 = width = None
    covered = intervals = 0
    board: Board | None = None
    votes = 0
    while votes < max_votes:
        sampler.refresh(board)
        pairs, weight = sampler.draw(batch)
        parts.append(
            (*simulate_votes(rng, strengths, sampler.first[pairs], sampler.second[pairs]), weight)
        )
        votes += batch
        a, b, o, w = (np.concatenate(column) for column in zip(*parts, strict=True))
        board = rate(a, b, o, w if kind == "active" else None, n, rounds)
        covered += int(((board.lower <= truth) & (truth <= board.upper)).sum())
        intervals += n
        if top3 is None and top3_resolved(board, truth):
            top3 = votes
        if width is None and mean_width(board) <= WIDTH_GOAL:
            width = votes
        if stop_when_done and top3 is not None and width is not None:
            break
    return Run(top3, width, covered, intervals)


def _median(values: list[int | None], cap: int) -> tuple[float, int]:
    """Median votes (a run that never reached the goal counts as ``cap``) and how many did."""
    reached = sum(v is not None for v in values)
    return statistics.median(v if v is not None else cap for v in values), reached


def bias(
    strengths: FloatArray, kind: str, *, seeds: int, votes: int, batch: int, weighted: bool = True
) -> tuple[FloatArray, FloatArray]:
    """Mean error of the final point ratings against the truth over ``seeds`` campaigns of
    ``votes`` votes, and the standard error of that mean (the unbiasedness check)."""
    n = strengths.size
    truth = strengths - strengths.mean() + MEAN_RATING
    errors = []
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        sampler = Sampler(kind, n, rng)
        parts = []
        board = None
        for _ in range(votes // batch):
            sampler.refresh(board)
            pairs, weight = sampler.draw(batch)
            a, b, o = simulate_votes(rng, strengths, sampler.first[pairs], sampler.second[pairs])
            parts.append((a, b, o, weight))
            a, b, o, w = (np.concatenate(column) for column in zip(*parts, strict=True))
            board = rate(a, b, o, w if weighted else None, n, rounds=50)
        assert board is not None
        errors.append(board.ratings - truth)
    stacked = np.array(errors)
    return stacked.mean(axis=0), stacked.std(axis=0, ddof=1) / np.sqrt(seeds)


def ipw_bounds(strengths: FloatArray) -> tuple[float, float]:
    """The smallest votes ratio against uniform sampling that any plan can reach under the
    inverse-propensity correction, near the truth: for goal (i) (the summed variances of the
    top 4 ratings) and goal (ii) (of every rating). Under the weighted fit a rating's variance
    is sum over pairs of q_a / pi_a, so the best plan gives (sum sqrt q)^2 / (K sum q)."""
    n = strengths.size
    theta = (strengths - strengths.mean()) * np.log(10.0) / 400.0
    first, second = all_pairs(n)
    p = 1.0 / (1.0 + np.exp(-(theta[first] - theta[second])))
    info = p * (1.0 - p)
    x = np.zeros((first.size, n))
    x[np.arange(first.size), first] = 1.0
    x[np.arange(first.size), second] = -1.0
    share = (np.linalg.pinv((x * info[:, None]).T @ x / first.size) @ x.T) ** 2 * info
    order = np.argsort(-strengths)

    def bound(q: FloatArray) -> float:
        return float(np.sqrt(q).sum() ** 2 / (q.size * q.sum()))

    return bound(share[order[:4]].sum(axis=0)), bound(share.sum(axis=0))


def likelihood_bound(strengths: FloatArray, *, iterations: int = 2000) -> float:
    """For comparison only: the smallest votes ratio against uniform sampling for goal (i)
    (summed variances of the top 4 ratings) that a plan could reach if the ratings were fitted
    *without* the inverse-propensity correction (plain maximum likelihood, whose variance is
    c' (sum pi_a p_a (1 - p_a) x_a x_a')^+ c), found by the multiplicative algorithm for
    A-optimal designs. Shows how much of the gap to the target the correction costs."""
    n = strengths.size
    theta = (strengths - strengths.mean()) * np.log(10.0) / 400.0
    first, second = all_pairs(n)
    p = 1.0 / (1.0 + np.exp(-(theta[first] - theta[second])))
    info = p * (1.0 - p)
    x = np.zeros((first.size, n))
    x[np.arange(first.size), first] = 1.0
    x[np.arange(first.size), second] = -1.0
    centre = np.eye(n) - 1.0 / n
    top = centre[np.argsort(-strengths)[:4]]

    def cost(pi: FloatArray) -> tuple[float, FloatArray]:
        inverse = np.linalg.pinv((x * (pi * info)[:, None]).T @ x)
        return float(np.trace(top @ inverse @ top.T)), inverse

    uniform = np.full(first.size, 1.0 / first.size)
    pi = uniform.copy()
    for _ in range(iterations):
        _cost, inverse = cost(pi)
        gain = info * ((x @ inverse @ top.T) ** 2).sum(axis=1)
        pi = pi * np.sqrt(gain / (pi * gain).sum())
        pi /= pi.sum()
    return cost(pi)[0] / cost(uniform)[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30])
    parser.add_argument(
        "--seeds", type=int, default=0, help="campaigns per sampler (0: 25 of 10, 5 of 30)"
    )
    parser.add_argument("--rounds", type=int, default=200, help="bootstrap rounds per check")
    parser.add_argument("--max-votes", type=int, default=60_000)
    args = parser.parse_args(argv)
    print(f"true strengths: public Chatbot Arena table ({TABLE.name})")
    for n in args.sizes:
        seeds = args.seeds or (25 if n <= 10 else 5)
        strengths = table_strengths(n)
        batch = 100 if n <= 10 else 1000
        cap = args.max_votes if n <= 10 else 4 * args.max_votes
        print(f"\n{n} contestants, strengths {', '.join(f'{s:.0f}' for s in strengths)}")
        print(
            f"{seeds} seeds; checks every {batch} votes, {args.rounds} bootstrap rounds, "
            f"at most {cap} votes"
        )
        best_top, best_width = ipw_bounds(strengths)
        print(
            f"  best votes ratio any plan can reach under the inverse-propensity correction: "
            f"(i) {best_top:.2f}, (ii) {best_width:.2f}; for (i) without the correction "
            f"(plain likelihood, not what the site fits): {likelihood_bound(strengths):.2f}"
        )
        medians: dict[str, tuple[float, float]] = {}
        for kind in SAMPLERS:
            started = time.perf_counter()
            runs = [
                campaign(strengths, kind, seed=s, batch=batch, max_votes=cap, rounds=args.rounds)
                for s in range(seeds)
            ]
            top3, top3_ok = _median([r.top3_votes for r in runs], cap)
            width, width_ok = _median([r.width_votes for r in runs], cap)
            coverage = sum(r.covered for r in runs) / sum(r.intervals for r in runs)
            medians[kind] = (top3, width)
            print(
                f"  {kind:<9} (i) top 3 resolved: median {top3:>8.0f} votes ({top3_ok}/{seeds}"
                f" reached)  (ii) mean width <= {WIDTH_GOAL:.0f}: median {width:>8.0f} votes"
                f" ({width_ok}/{seeds})  coverage {coverage:.1%}"
                f"  [{time.perf_counter() - started:.1f} s]"
            )
        for goal, index in (("(i) top 3", 0), ("(ii) width", 1)):
            ratio = medians["active"][index] / medians["uniform"][index]
            balanced = medians["balanced"][index] / medians["uniform"][index]
            verdict = "met" if ratio <= TARGET_RATIO else "not met"
            print(
                f"  {n} contestants {goal}: active/uniform = {ratio:.2f} "
                f"(target <= {TARGET_RATIO}: {verdict}); balanced/uniform = {balanced:.2f}"
            )


ENTRY: Callable[[], None] = main

if __name__ == "__main__":
    main()
