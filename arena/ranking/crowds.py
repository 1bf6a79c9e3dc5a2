"""Simulated crowds with known bad voters, for choosing and checking the voter-quality defaults
(`arena.ranking.quality`): tests and ``python -m benchmarks.quality`` draw from here.

Honest voters draw outcomes from Bradley–Terry with known strengths (ties at a fixed rate);
random clickers pick a or b by a coin; always-left clickers always pick side a; shills skip every
battle without their target and vote for the target whenever it is on screen. Sides are at
random per battle, as the sampler assigns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from arena.ranking.cells import FloatArray, IntArray, Outcome
from arena.ranking.quality import VoterVotes

Kind = Literal["honest", "random", "left", "shill"]
KINDS: tuple[Kind, ...] = ("honest", "random", "left", "shill")


@dataclass(frozen=True)
class Crowd:
    votes: VoterVotes
    kind: tuple[Kind, ...]  # per voter
    target: int  # the shills' contestant

    def of_kind(self, kind: Kind) -> IntArray:
        return np.array([k for k, v in enumerate(self.kind) if v == kind], dtype=np.int64)


def crowd_simulate(
    theta: FloatArray,
    *,
    rng: np.random.Generator,
    honest: int = 200,
    random: int = 10,
    left: int = 10,
    shills: int = 10,
    votes_per_voter: int = 60,
    tie_share: float = 0.15,
    target: int | None = None,
) -> Crowd:
    """A crowd voting on contestants of strengths ``theta`` (natural-log odds). ``target``
    (default: the weakest contestant) is the one the shills push. Voters vote in turns, so
    every voter's votes are spread over the whole campaign."""
    n = theta.size
    if n < 3:
        raise ValueError("a crowd needs at least three contestants")
    goal = int(np.argmin(theta)) if target is None else target
    kinds: list[Kind] = []
    for kind, count in zip(KINDS, (honest, random, left, shills), strict=True):
        kinds += [kind] * count
    n_voters = len(kinds)
    voter = np.tile(np.arange(n_voters), votes_per_voter)
    size = voter.size
    a = rng.integers(0, n, size)
    b = (a + rng.integers(1, n, size)) % n
    kind_of = np.array(kinds)[voter]
    shill = kind_of == "shill"
    # A shill's battles are the ones with the target on screen (they skip the rest).
    other = (goal + rng.integers(1, n, int(shill.sum()))) % n
    target_on_a = rng.random(int(shill.sum())) < 0.5
    a[shill] = np.where(target_on_a, goal, other)
    b[shill] = np.where(target_on_a, other, goal)
    p_a = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
    honest_outcome = np.where(rng.random(size) < p_a, Outcome.A_WINS, Outcome.B_WINS)
    honest_outcome = np.where(rng.random(size) < tie_share, Outcome.TIE, honest_outcome)
    coin = np.where(rng.random(size) < 0.5, Outcome.A_WINS, Outcome.B_WINS)
    outcome = np.select(
        [kind_of == "honest", kind_of == "random", kind_of == "left", shill],
        [
            honest_outcome,
            coin,
            np.full(size, Outcome.A_WINS),
            np.where(a == goal, Outcome.A_WINS, Outcome.B_WINS),
        ],
    ).astype(np.int64)
    votes = VoterVotes(
        voter=voter.astype(np.int64),
        a=a.astype(np.int64),
        b=b.astype(np.int64),
        outcome=outcome,
        n_models=n,
        n_voters=n_voters,
    )
    return Crowd(votes=votes, kind=tuple(kinds), target=goal)


def rank_of(theta: FloatArray, index: int) -> int:
    """1 + how many contestants are rated above ``index``."""
    return 1 + int((theta > theta[index]).sum())
