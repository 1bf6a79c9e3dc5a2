"""Voter-quality benchmark on simulated crowds: ``python -m benchmarks.quality``.

Ground truth: the Bradley–Terry strengths of the 129 models in the public Chatbot Arena counts
of 2024-08-14 (tests/data). Honest voters draw outcomes from them (15% ties); each crowd adds
one kind of bad voter — random clickers, always-left clickers, or shills who vote for the
weakest model whenever it is on screen — and the last mixes all three. Every crowd is drawn at
several votes per voter, a few seeds each. Printed:

  * per kind: recall (bad voters flagged), precision (flagged voters that are bad) and the
    share of honest voters flagged, by the combined flag of `arena.ranking.quality`;
  * per crowd with shills: the target's rank (truth, all votes, after excluding the flagged,
    honest votes only) and the mean absolute rank error over all models before and after;
  * the time of the quality pass against a plain Bradley–Terry fit of the same votes (a ratio
    measured in the same run), on a crowd of 2,000 voters.

Options: ``--seeds N`` (default 3), ``--votes 25,50,100,200``, ``--json`` for machine output.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from arena.ranking import bt_fit, cells_from_pair_counts
from arena.ranking.crowds import Crowd, crowd_simulate, rank_of
from arena.ranking.quality import voter_quality

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
COUNTS_FILE = DATA / "chatbot_arena_20240814_counts.json"
HONEST = 200
BAD = 20

CROWDS: dict[str, dict[str, int]] = {
    "random": {"random": BAD, "left": 0, "shills": 0},
    "left": {"random": 0, "left": BAD, "shills": 0},
    "shill": {"random": 0, "left": 0, "shills": BAD // 2},
    "mixed": {"random": BAD // 2, "left": BAD // 2, "shills": BAD // 2},
}


def truth() -> np.ndarray:
    raw = json.loads(COUNTS_FILE.read_text())
    pairs = np.asarray(raw["X"], dtype=np.int64)
    counts = np.asarray(raw["Y"], dtype=np.int64)
    return bt_fit(cells_from_pair_counts(pairs, counts, len(raw["models"]))).theta


@dataclass
class Result:
    crowd: str
    votes_per_voter: int
    seed: int
    recall: float
    precision: float
    honest_flagged: float
    target_true: int | None = None
    target_all: int | None = None
    target_excluded: int | None = None
    target_honest: int | None = None
    rank_error_all: float | None = None
    rank_error_excluded: float | None = None


def _ranks(theta: np.ndarray) -> np.ndarray:
    order = np.argsort(-theta, kind="stable")
    ranks = np.empty(theta.size, dtype=np.int64)
    ranks[order] = np.arange(1, theta.size + 1)
    return ranks


def run_one(theta: np.ndarray, name: str, votes_per_voter: int, seed: int) -> Result:
    crowd: Crowd = crowd_simulate(
        theta,
        rng=np.random.default_rng(seed),
        honest=HONEST,
        votes_per_voter=votes_per_voter,
        **CROWDS[name],
    )
    quality = voter_quality(crowd.votes)
    kinds = np.array(crowd.kind)
    bad = kinds != "honest"
    flagged = quality.flagged
    result = Result(
        crowd=name,
        votes_per_voter=votes_per_voter,
        seed=seed,
        recall=float(flagged[bad].mean()),
        precision=float(flagged[bad].sum() / flagged.sum()) if flagged.any() else 1.0,
        honest_flagged=float(flagged[~bad].mean()),
    )
    if CROWDS[name]["shills"]:
        votes = crowd.votes
        every = bt_fit(votes.cells()).theta
        kept = bt_fit(votes.select(~flagged[votes.voter]).cells()).theta
        honest = bt_fit(votes.select(kinds[votes.voter] == "honest").cells()).theta
        true_ranks = _ranks(theta)
        result.target_true = rank_of(theta, crowd.target)
        result.target_all = rank_of(every, crowd.target)
        result.target_excluded = rank_of(kept, crowd.target)
        result.target_honest = rank_of(honest, crowd.target)
        result.rank_error_all = float(np.abs(_ranks(every) - true_ranks).mean())
        result.rank_error_excluded = float(np.abs(_ranks(kept) - true_ranks).mean())
    return result


def speed(theta: np.ndarray) -> dict[str, float]:
    crowd = crowd_simulate(
        theta,
        rng=np.random.default_rng(99),
        honest=1900,
        random=40,
        left=30,
        shills=30,
        votes_per_voter=100,
    )
    started = time.perf_counter()
    bt_fit(crowd.votes.cells())
    fit = time.perf_counter() - started
    started = time.perf_counter()
    voter_quality(crowd.votes)
    quality = time.perf_counter() - started
    return {
        "voters": float(crowd.votes.n_voters),
        "votes": float(crowd.votes.voter.size),
        "bt_fit_s": fit,
        "quality_s": quality,
        "ratio": quality / fit,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--votes", default="25,50,100,200")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    theta = truth()
    grid = [int(v) for v in args.votes.split(",")]
    results = [
        run_one(theta, name, per, seed)
        for name in CROWDS
        for per in grid
        for seed in range(args.seeds)
    ]
    timing = speed(theta)
    if args.json:
        print(json.dumps({"results": [r.__dict__ for r in results], "speed": timing}, indent=1))
        return
    print(
        f"Ground truth: BT strengths of {theta.size} Chatbot Arena models; {HONEST} honest "
        f"voters per crowd; means over {args.seeds} seeds."
    )
    print(f"{'crowd':>7} {'votes/voter':>11} {'recall':>7} {'precision':>9} {'honest flagged':>14}")
    for name in CROWDS:
        for per in grid:
            rows = [r for r in results if r.crowd == name and r.votes_per_voter == per]
            print(
                f"{name:>7} {per:>11} {_mean(rows, 'recall'):>7.1%} "
                f"{_mean(rows, 'precision'):>9.1%} {_mean(rows, 'honest_flagged'):>14.1%}"
            )
    print()
    print("Shilled model (the weakest): rank in truth / all votes / after exclusion / honest only;")
    print("mean absolute rank error of all models, all votes -> after exclusion")
    for name in ("shill", "mixed"):
        for per in grid:
            for r in (r for r in results if r.crowd == name and r.votes_per_voter == per):
                print(
                    f"{name:>7} {per:>4} votes/voter seed {r.seed}: rank {r.target_true} / "
                    f"{r.target_all} / {r.target_excluded} / {r.target_honest}; "
                    f"error {r.rank_error_all:.2f} -> {r.rank_error_excluded:.2f}"
                )
    print()
    print(
        f"Speed: quality pass over {timing['voters']:.0f} voters, {timing['votes']:.0f} votes: "
        f"{timing['quality_s']:.2f} s, {timing['ratio']:.0f}x one BT fit of the same votes "
        f"({timing['bt_fit_s'] * 1000:.1f} ms)"
    )


def _mean(rows: list[Result], attribute: str) -> float:
    values: list[Any] = [getattr(r, attribute) for r in rows]
    return float(np.mean(values))


if __name__ == "__main__":
    main()
