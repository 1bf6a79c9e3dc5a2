"""Voter quality on simulated crowds with the public Chatbot Arena strengths as the truth: the
flag finds the bad voters, spares the honest ones, and excluding the flagged puts a shilled
model back where it belongs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arena.ranking import bt_fit
from arena.ranking.crowds import Crowd, crowd_simulate, rank_of
from arena.ranking.quality import (
    VoterVotes,
    model_scores,
    sequential_test,
    side_p_values,
    voter_quality,
)

from .conftest import ArenaCounts


@pytest.fixture(scope="module")
def truth(arena_counts: ArenaCounts) -> np.ndarray:
    return bt_fit(arena_counts.cells).theta


@pytest.fixture(scope="module", params=[0, 1])
def crowd(request: pytest.FixtureRequest, truth: np.ndarray) -> Crowd:
    return crowd_simulate(truth, rng=np.random.default_rng(request.param), votes_per_voter=100)


def test_bad_voters_are_found_and_honest_ones_spared(crowd: Crowd) -> None:
    quality = voter_quality(crowd.votes)
    honest = crowd.of_kind("honest")
    bad = np.concatenate([crowd.of_kind(k) for k in ("random", "left", "shill")])
    assert quality.flagged[bad].mean() >= 0.90
    assert quality.flagged[honest].mean() <= 0.05
    # Every flag says why; no reason without a flag.
    for k in range(crowd.votes.n_voters):
        assert bool(quality.reasons[k]) == bool(quality.flagged[k])


def test_each_kind_of_bad_voter_is_caught_by_its_own_signal(crowd: Crowd) -> None:
    quality = voter_quality(crowd.votes)
    assert quality.flagged[crowd.of_kind("shill")].all()
    assert quality.flagged[crowd.of_kind("left")].all()
    assert all(any("side A" in r for r in quality.reasons[k]) for k in crowd.of_kind("left"))
    shill = int(crowd.of_kind("shill")[0])
    assert quality.model.favourite[shill] == crowd.target


def test_excluding_the_flagged_puts_the_shilled_model_back(crowd: Crowd, truth: np.ndarray) -> None:
    votes = crowd.votes
    true_rank = rank_of(truth, crowd.target)
    before = rank_of(bt_fit(votes.cells()).theta, crowd.target)
    quality = voter_quality(votes)
    after = rank_of(bt_fit(votes.select(~quality.flagged[votes.voter]).cells()).theta, crowd.target)
    assert before < true_rank - 50  # ten shills lift the weakest model far up
    assert after == true_rank


def test_the_honest_crowd_alone_is_almost_never_flagged(truth: np.ndarray) -> None:
    crowd = crowd_simulate(
        truth, rng=np.random.default_rng(7), random=0, left=0, shills=0, votes_per_voter=100
    )
    assert voter_quality(crowd.votes).flagged.mean() <= 0.05


def _votes(rows: list[tuple[int, int, int, int]], n_models: int = 3) -> VoterVotes:
    voter, a, b, outcome = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True))
    return VoterVotes(
        voter=voter, a=a, b=b, outcome=outcome, n_models=n_models, n_voters=int(voter.max()) + 1
    )


def test_sequential_test_multiplies_the_factors_by_hand() -> None:
    # Nine others voted 0 over 1 on pair (0, 1); voter 1 votes 1 over 0 three times.
    rows = [(0, 0, 1, 0)] * 9 + [(1, 0, 1, 1)] * 3
    result = sequential_test(_votes(rows), alpha=0.05)
    # w (first won) = (0 + 0.5) / (9 + 1) for voter 1: each vote multiplies by 1/(2(1-w)).
    factor = 1.0 / (2.0 * (1.0 - 9.5 / 10.0))
    assert result.max_log_ratio[1] == pytest.approx(3 * math.log(factor))
    assert result.flagged[1]  # 10**3 > 20
    assert result.votes_to_flag[1] == 2  # 10, then 100 > 20
    # Voter 0 agrees with nobody else (voter 1 disagrees) but started first, with w = 0.5/4.
    assert result.tested.tolist() == [9, 3]


def test_sequential_test_ignores_ties_and_the_voters_own_votes() -> None:
    rows = [(0, 0, 1, 2)] * 20 + [(0, 0, 1, 1)] * 5
    result = sequential_test(_votes(rows))
    # Nobody else voted on the pair: w = 1/2 throughout, no evidence either way.
    assert not result.flagged[0]
    assert result.tested[0] == 5
    assert result.max_log_ratio[0] == pytest.approx(0.0)


def test_model_score_is_a_standardised_log_likelihood() -> None:
    rng = np.random.default_rng(3)
    theta = np.array([1.0, 0.0, -1.0])
    crowd = crowd_simulate(
        theta, rng=rng, honest=40, random=0, left=0, shills=0, votes_per_voter=30, tie_share=0
    )
    scores = model_scores(crowd.votes)
    # Honest voters' z behaves like a standard normal.
    assert abs(float(np.mean(scores.z))) < 0.5
    assert 0.6 < float(np.std(scores.z)) < 1.4
    assert (scores.decisive == 30).all()


def test_side_p_values_are_binomial() -> None:
    p = side_p_values(np.array([5, 10, 0]), np.array([10, 10, 0]))
    assert p[0] == pytest.approx(1.0)
    assert p[1] == pytest.approx(2 * 0.5**10)
    assert p[2] == 1.0


def test_voter_votes_refuse_inconsistent_rows() -> None:
    with pytest.raises(ValueError, match="two different"):
        _votes([(0, 1, 1, 0)])


def test_the_leave_one_out_step_matches_a_refit(truth: np.ndarray) -> None:
    crowd = crowd_simulate(
        truth[:30],
        rng=np.random.default_rng(11),
        honest=60,
        random=2,
        left=0,
        shills=3,
        votes_per_voter=60,
    )
    votes = crowd.votes
    scores = model_scores(votes)
    for voter in (0, int(crowd.of_kind("random")[0]), int(crowd.of_kind("shill")[0])):
        others = votes.select(votes.voter != voter)
        refit = bt_fit(others.cells()).theta
        mine = votes.select((votes.voter == voter) & (votes.outcome <= 1))
        first, second = np.minimum(mine.a, mine.b), np.maximum(mine.a, mine.b)
        won = np.where(mine.outcome == 0, mine.a, mine.b) == first
        diff = refit[first] - refit[second]
        loglik = np.where(won, -np.logaddexp(0, -diff), -np.logaddexp(0, diff))
        assert scores.mean_loglik[voter] == pytest.approx(float(loglik.mean()), abs=2e-3)
