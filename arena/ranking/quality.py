"""Voter quality: which voters disagree with everyone else more than chance allows.

Two tests look at each voter's decisive votes (a or b won; ties and both-bad say nothing about
who is better, so neither test reads them):

* **Sequential test** — the one Chatbot Arena's pipeline runs (FastChat's ``outlier_detect``):
  each vote is compared with the *other* voters' decisive votes on the same pair. With ``w`` the
  share of those that the pair's first contestant won, a vote for the first multiplies the
  "too pro-first" martingale by 1 / (2w) and a vote for the second multiplies the "too
  pro-second" one by 1 / (2(1 - w)); the other martingale is halved. Under the null (the voter
  draws from the same distribution as the rest) each is a nonnegative supermartingale, so by
  Ville's inequality the chance that either ever passes 1/α is at most α. We count half a
  pseudo-vote each way in ``w`` (a pair nobody else voted on gives w = 1/2: no evidence) so a
  lone disagreement on a thinly voted pair cannot make the product infinite, and like FastChat
  we read at most ``max_votes`` votes per voter.
* **Model score** — each voter's votes under the Bradley–Terry fit *without that voter*: the
  sum of log-likelihoods, standardised by its mean and variance under that same fit
  (z = (LL - E[LL]) / sd[LL]). A careless or dishonest voter agrees with the consensus less
  than an honest one would on the same pairs, so a very negative z is evidence against them;
  standardising by the pairs each voter actually saw keeps voters of lopsided and of close
  pairs on the same footing. Each leave-one-out fit is one exact Newton step from the full
  fit (see `model_scores`), many voters at a time. The same fit gives a second score, per
  contestant: the standardised excess of wins the voter gave any one contestant over what it
  expects (a shill's signature).

**The flag** is raised when the sequential test passes 1/α **or** z < -``z_threshold`` **or**
the voter's side-a share of decisive votes is implausible for an honest voter (a two-sided
binomial test against 1/2 below ``side_p``; an always-left clicker is, to the other two tests,
a random clicker, and this catches them sooner). Defaults were chosen on simulated crowds
(`arena.ranking.crowds`, tests/ranking/test_quality.py, ``python -m benchmarks.quality``):
α = 0.05, ``z_threshold`` = 3, ``side_p`` = 1e-4, at least 10 decisive votes to be judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import expit, log_expit
from scipy.stats import binomtest

from arena.ranking.bt import ALPHA, bt_fit
from arena.ranking.cells import Cells, FloatArray, IntArray, Outcome
from arena.ranking.stats import wilson_interval

SEQUENTIAL_ALPHA = 0.05
SEQUENTIAL_MAX_VOTES = 100
Z_THRESHOLD = 2.5
SIDE_P = 1e-4
MIN_DECISIVE = 10
FAVOUR_THRESHOLD = 4.5
# The consensus counts a voter's votes on any one contestant up to this many times their
# expected share (`capped_reference`), and at least MIN_CAP of them.
CAP_FACTOR = 3.0
MIN_CAP = 5
MIN_FAVOUR = 10
# Voters scored at once: each batch holds voters x contestants^2 floats.
_LOO_BATCH = 64

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class VoterVotes:
    """One row per vote: who cast it (a position in 0..n_voters-1), the contestants on sides a
    and b, the outcome code, in the order the votes were cast."""

    voter: IntArray
    a: IntArray
    b: IntArray
    outcome: IntArray
    n_models: int
    n_voters: int

    def __post_init__(self) -> None:
        size = self.voter.size
        if not (self.a.size == self.b.size == self.outcome.size == size):
            raise ValueError("voter, a, b and outcome must have one entry per vote")
        if size and (self.voter.min() < 0 or self.voter.max() >= self.n_voters):
            raise ValueError("voter positions must lie in 0..n_voters-1")
        if size and np.any(self.a == self.b):
            raise ValueError("a vote needs two different contestants")

    def select(self, keep: BoolArray) -> VoterVotes:
        return VoterVotes(
            voter=self.voter[keep],
            a=self.a[keep],
            b=self.b[keep],
            outcome=self.outcome[keep],
            n_models=self.n_models,
            n_voters=self.n_voters,
        )

    def cells(self) -> Cells:
        """The votes aggregated per (a, b, outcome)."""
        n = self.n_models
        keys = (self.a * n + self.b) * len(Outcome) + self.outcome
        present, count = np.unique(keys, return_counts=True)
        pair, code = np.divmod(present, len(Outcome))
        i, j = np.divmod(pair, max(n, 1))
        return Cells(
            n_models=n,
            i=i.astype(np.int64),
            j=j.astype(np.int64),
            outcome=code.astype(np.int64),
            count=count.astype(np.int64),
        )


@dataclass(frozen=True)
class SequentialResult:
    """Per voter: whether the running likelihood ratio passed 1/α, after how many of their
    tested votes (0: never), and the largest log of either martingale reached."""

    flagged: BoolArray
    votes_to_flag: IntArray
    max_log_ratio: FloatArray
    tested: IntArray


@dataclass(frozen=True)
class ModelScore:
    """Per voter, under the fit without them: decisive votes scored, their mean log-likelihood,
    the standardised score z (NaN when not scored), and how many of their decisive votes went
    to the contestant that fit rates higher (the consensus winner)."""

    decisive: IntArray
    mean_loglik: FloatArray
    z: FloatArray
    consensus_agree: IntArray
    favour_z: FloatArray
    favourite: IntArray


@dataclass(frozen=True)
class VoterQuality:
    """Everything the flag is made of, per voter (positions as in `VoterVotes`)."""

    votes: IntArray
    decisive: IntArray
    a_wins: IntArray
    ties: IntArray
    both_bad: IntArray
    side_p: FloatArray
    sequential: SequentialResult
    model: ModelScore
    flagged: BoolArray
    reasons: tuple[tuple[str, ...], ...]


def _decisive_first(votes: VoterVotes) -> tuple[BoolArray, IntArray, IntArray, IntArray]:
    """Which votes are decisive; for those, the pair as (first < second) and 1 when the first
    won."""
    decisive = (votes.outcome == Outcome.A_WINS) | (votes.outcome == Outcome.B_WINS)
    a, b, outcome = votes.a[decisive], votes.b[decisive], votes.outcome[decisive]
    first, second = np.minimum(a, b), np.maximum(a, b)
    winner = np.where(outcome == Outcome.A_WINS, a, b)
    return decisive, first, second, (winner == first).astype(np.int64)


def sequential_test(
    votes: VoterVotes,
    *,
    alpha: float = SEQUENTIAL_ALPHA,
    max_votes: int = SEQUENTIAL_MAX_VOTES,
    reference: BoolArray | None = None,
) -> SequentialResult:
    """FastChat's sequential outlier test on every voter at once (see the module docstring).

    ``reference``: which votes the other voters' consensus is made of (default: all); a
    voter's own votes never count in their reference.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")
    n_voters, n = votes.n_voters, votes.n_models
    ref_mask = np.ones(votes.voter.size, dtype=np.bool_) if reference is None else reference
    decisive, first, second, first_won = _decisive_first(votes)
    voter = votes.voter[decisive]
    in_ref = ref_mask[decisive].astype(np.int64)
    pair = first * n + second
    # Reference counts per pair, less the voter's own votes on that pair.
    pairs, pair_index = np.unique(pair, return_inverse=True)
    pair_index = pair_index.reshape(-1)
    pair_total = np.bincount(pair_index, weights=in_ref, minlength=pairs.size)
    pair_first = np.bincount(pair_index, weights=in_ref * first_won, minlength=pairs.size)
    own_key = voter * pairs.size + pair_index
    owns, own_index = np.unique(own_key, return_inverse=True)
    own_index = own_index.reshape(-1)
    own_total = np.bincount(own_index, weights=in_ref, minlength=owns.size)
    own_first = np.bincount(own_index, weights=in_ref * first_won, minlength=owns.size)
    others = pair_total[pair_index] - own_total[own_index]
    others_first = pair_first[pair_index] - own_first[own_index]
    w = (others_first + 0.5) / (others + 1.0)
    # log factors of the two martingales: "too pro-first" and "too pro-second".
    log_pro_first = np.where(first_won == 1, -np.log(2.0 * w), -math.log(2.0))
    log_pro_second = np.where(first_won == 0, -np.log(2.0 * (1.0 - w)), -math.log(2.0))
    # Votes are in cast order; keep each voter's first `max_votes` decisive ones.
    order = np.argsort(voter, kind="stable")
    voter_sorted = voter[order]
    starts = np.searchsorted(voter_sorted, np.arange(n_voters))
    position = np.arange(voter_sorted.size) - starts[voter_sorted]
    keep = position < max_votes
    order, voter_sorted, position = order[keep], voter_sorted[keep], position[keep]
    tested = np.bincount(voter_sorted, minlength=n_voters).astype(np.int64)
    threshold = math.log(1.0 / alpha)
    max_log = np.full(n_voters, -np.inf)
    first_pass = np.full(n_voters, np.iinfo(np.int64).max, dtype=np.int64)
    for factors in (log_pro_first[order], log_pro_second[order]):
        running = _group_cumsum(factors, voter_sorted, n_voters)
        np.maximum.at(max_log, voter_sorted, running)
        passed = running > threshold
        np.minimum.at(first_pass, voter_sorted[passed], position[passed] + 1)
    flagged = first_pass < np.iinfo(np.int64).max
    max_log[tested == 0] = 0.0
    return SequentialResult(
        flagged=flagged,
        votes_to_flag=np.where(flagged, first_pass, 0).astype(np.int64),
        max_log_ratio=max_log,
        tested=tested,
    )


def _group_cumsum(values: FloatArray, group: IntArray, n_groups: int) -> FloatArray:
    """Running sums within each group of a group-sorted array."""
    total = np.cumsum(values)
    counts = np.bincount(group, minlength=n_groups)
    ends = np.cumsum(counts)
    before = np.concatenate([[0.0], total])[ends - counts]
    result: FloatArray = total - before[group]
    return result


def model_scores(
    votes: VoterVotes,
    *,
    reference: BoolArray | None = None,
    voters: IntArray | None = None,
    alpha: float = ALPHA,
    min_favour: int = MIN_FAVOUR,
) -> ModelScore:
    """Each voter's decisive votes scored under the BT fit of the ``reference`` votes (default:
    all) less their own. ``voters``: which to score (default: all); the rest get NaN."""
    n_voters = votes.n_voters
    ref_mask = np.ones(votes.voter.size, dtype=np.bool_) if reference is None else reference
    reference_votes = votes.select(ref_mask)
    fit = bt_fit(reference_votes.cells(), alpha=alpha)
    data = fit.data
    decisive, first, second, first_won = _decisive_first(votes)
    d_voter = votes.voter[decisive]
    count = np.bincount(d_voter, minlength=n_voters).astype(np.int64)
    mean_loglik = np.full(n_voters, np.nan)
    z = np.full(n_voters, np.nan)
    agree = np.zeros(n_voters, dtype=np.int64)
    favour = np.full(n_voters, np.nan)
    favourite = np.full(n_voters, -1, dtype=np.int64)
    wanted = np.arange(n_voters) if voters is None else np.asarray(voters, dtype=np.int64)
    wanted = wanted[count[wanted] > 0]
    if wanted.size == 0 or data.n_models == 0:
        return ModelScore(
            decisive=count,
            mean_loglik=mean_loglik,
            z=z,
            consensus_agree=agree,
            favour_z=favour,
            favourite=favourite,
        )
    # Each reference vote's cell, to take a voter's own votes out of the counts.
    # One exact Newton step from the full fit to the fit without the voter: the full
    # objective's gradient is zero at its optimum, so the step solves
    # (H - H_v) delta = g_v with g_v and H_v the gradient and Hessian of the voter's own
    # reference votes. The leave-one-out optimum lies within a small fraction of a rating
    # point of that step for any voter holding a small share of a contestant's votes (the
    # cap sees to it), at the cost of one small solve per voter instead of a refit.
    ref_voter = reference_votes.voter
    ref_first = np.minimum(reference_votes.a, reference_votes.b)
    ref_second = np.maximum(reference_votes.a, reference_votes.b)
    ref_outcome = reference_votes.outcome
    winner = np.where(ref_outcome == Outcome.A_WINS, reference_votes.a, reference_votes.b)
    ref_won = np.where(
        (ref_outcome == Outcome.A_WINS) | (ref_outcome == Outcome.B_WINS),
        (winner == ref_first).astype(np.float64),
        0.5,
    )
    ref_p = expit(fit.theta[ref_first] - fit.theta[ref_second])
    ref_grad = ref_p - ref_won  # d NLL / d theta_first (minus that for theta_second)
    ref_curv = ref_p * (1.0 - ref_p)
    n = data.n_models
    by_voter = np.argsort(d_voter, kind="stable")
    bounds = np.searchsorted(d_voter[by_voter], np.arange(n_voters + 1))
    for start in range(0, wanted.size, _LOO_BATCH):
        batch = wanted[start : start + _LOO_BATCH]
        local = np.full(n_voters, -1, dtype=np.int64)
        local[batch] = np.arange(batch.size)
        own = np.flatnonzero(local[ref_voter] >= 0)
        row_of, i, j = local[ref_voter[own]], ref_first[own], ref_second[own]
        grad = np.zeros((batch.size, n))
        np.add.at(grad, (row_of, i), ref_grad[own])
        np.add.at(grad, (row_of, j), -ref_grad[own])
        hess = np.broadcast_to(fit.hessian, (batch.size, n, n)).copy()
        np.subtract.at(hess, (row_of, i, i), ref_curv[own])
        np.subtract.at(hess, (row_of, j, j), ref_curv[own])
        np.add.at(hess, (row_of, i, j), ref_curv[own])
        np.add.at(hess, (row_of, j, i), ref_curv[own])
        theta = fit.theta[None, :] + np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        for row, who in enumerate(batch.tolist()):
            mine = by_voter[bounds[who] : bounds[who + 1]]
            diff = theta[row, first[mine]] - theta[row, second[mine]]
            won = first_won[mine]
            # log-likelihood of what the voter said, and its mean and variance had they voted
            # by this fit.
            loglik = np.where(won == 1, log_expit(diff), log_expit(-diff))
            p = expit(diff)
            expected = p * log_expit(diff) + (1.0 - p) * log_expit(-diff)
            variance = p * (1.0 - p) * diff**2
            mean_loglik[who] = float(loglik.mean())
            spread = math.sqrt(float(variance.sum()))
            z[who] = float((loglik.sum() - expected.sum()) / spread) if spread > 0 else 0.0
            agree[who] = int(((diff > 0) == (won == 1)).sum())
            favour[who], favourite[who] = _favouritism(
                first[mine], second[mine], won, p, votes.n_models, min_favour
            )
    return ModelScore(
        decisive=count,
        mean_loglik=mean_loglik,
        z=z,
        consensus_agree=agree,
        favour_z=favour,
        favourite=favourite,
    )


def _favouritism(
    first: IntArray, second: IntArray, first_won: IntArray, p_first: FloatArray, n: int, least: int
) -> tuple[float, int]:
    """The largest standardised excess of wins the voter gave any one contestant over what the
    fit expects, among contestants in at least ``least`` of their votes; and that contestant
    (-1: none qualified)."""
    # Each vote seen from both contestants: wins given minus wins expected, and the variance.
    who = np.concatenate([first, second])
    excess = np.concatenate([first_won - p_first, (1 - first_won) - (1.0 - p_first)])
    variance = np.concatenate([p_first * (1.0 - p_first)] * 2)
    seen = np.bincount(who, minlength=n)
    total = np.bincount(who, weights=excess, minlength=n)
    spread = np.sqrt(np.bincount(who, weights=variance, minlength=n))
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where((seen >= least) & (spread > 0), total / spread, -np.inf)
    best = int(np.argmax(score))
    if not np.isfinite(score[best]):
        return math.nan, -1
    return float(score[best]), best


def side_p_values(a_wins: IntArray, decisive: IntArray) -> FloatArray:
    """Two-sided exact binomial p-value of each voter's side-a share of decisive votes
    against 1/2 (1 without decisive votes)."""
    result = np.ones(a_wins.size)
    cache: dict[tuple[int, int], float] = {}
    for k, (wins, total) in enumerate(zip(a_wins.tolist(), decisive.tolist(), strict=True)):
        if total > 0:
            key = (wins, total)
            if key not in cache:
                cache[key] = float(binomtest(wins, total, 0.5).pvalue)
            result[k] = cache[key]
    return result


def capped_reference(votes: VoterVotes, *, factor: float = CAP_FACTOR) -> BoolArray:
    """Which votes the consensus is made of: each voter's votes, in cast order, as long as
    neither contestant of the vote has already appeared in more than ``factor`` times that
    voter's expected share (2 m / n of their m votes among n contestants, at least
    MIN_CAP) of them. Honest voters, whose battles the sampler spreads over the contestants,
    are almost never capped; a voter whose every battle holds one contestant is, after the
    first few."""
    n, size = votes.n_models, votes.voter.size
    keep = np.ones(size, dtype=np.bool_)
    if size == 0 or n < 2:
        return keep
    per_voter = np.bincount(votes.voter, minlength=votes.n_voters)
    cap = np.maximum(MIN_CAP, np.ceil(factor * 2.0 * per_voter / n)).astype(np.int64)
    # Running count of each (voter, contestant) over the votes in order, both sides together.
    key = np.concatenate([votes.voter * n + votes.a, votes.voter * n + votes.b])
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.searchsorted(sorted_key, sorted_key, side="left")
    running = np.empty(key.size, dtype=np.int64)
    running[order] = np.arange(key.size) - starts + 1
    limit = np.concatenate([cap[votes.voter]] * 2)
    within = running <= limit
    keep &= within[:size] & within[size:]
    return keep


def voter_quality(
    votes: VoterVotes,
    *,
    alpha: float = SEQUENTIAL_ALPHA,
    max_votes: int = SEQUENTIAL_MAX_VOTES,
    z_threshold: float = Z_THRESHOLD,
    favour_threshold: float = FAVOUR_THRESHOLD,
    side_p: float = SIDE_P,
    min_decisive: int = MIN_DECISIVE,
    passes: int = 2,
    cap_factor: float = CAP_FACTOR,
) -> VoterQuality:
    """The combined flag of the module docstring, with its parts and reasons per voter.

    Voters with fewer than ``min_decisive`` decisive votes are reported but never flagged.
    The consensus is made of everyone else's votes with each voter's say about any one
    contestant capped (`capped_reference`), so a bloc of shills who vote only when their model
    is on screen cannot outvote the crowd on it; each later pass also leaves out the voters
    the pass before flagged, and the last pass's flags are the result.
    """
    if passes < 1:
        raise ValueError("passes must be at least 1")
    n_voters = votes.n_voters
    outcome = votes.outcome
    per = {
        code: np.bincount(votes.voter[outcome == code], minlength=n_voters).astype(np.int64)
        for code in Outcome
    }
    total = np.bincount(votes.voter, minlength=n_voters).astype(np.int64)
    decisive = per[Outcome.A_WINS] + per[Outcome.B_WINS]
    judged = decisive >= min_decisive
    side = side_p_values(per[Outcome.A_WINS], decisive)
    side_flag = judged & (side < side_p)
    capped = capped_reference(votes, factor=cap_factor)
    reference = capped
    for _ in range(passes):
        sequential = sequential_test(votes, alpha=alpha, max_votes=max_votes, reference=reference)
        model = model_scores(votes, voters=np.flatnonzero(judged), reference=reference)
        seq_flag = sequential.flagged & judged
        model_flag = judged & (np.nan_to_num(model.z, nan=0.0) < -z_threshold)
        favour_flag = judged & (np.nan_to_num(model.favour_z, nan=0.0) > favour_threshold)
        flagged = seq_flag | model_flag | favour_flag | side_flag
        reference = capped & ~flagged[votes.voter]
    reasons: list[tuple[str, ...]] = []
    for k in range(n_voters):
        why: list[str] = []
        if seq_flag[k]:
            why.append(
                f"sequential test: likelihood ratio passed 1/α = {1 / alpha:g} after "
                f"{int(sequential.votes_to_flag[k])} of {int(sequential.tested[k])} votes"
            )
        if model_flag[k]:
            why.append(
                f"model score z = {model.z[k]:.2f} < -{z_threshold:g} under the fit without "
                "this voter"
            )
        if favour_flag[k]:
            why.append(
                f"favours one contestant: z = {model.favour_z[k]:.2f} > {favour_threshold:g} "
                "more wins than the fit without this voter expects"
            )
        if side_flag[k]:
            share = per[Outcome.A_WINS][k] / decisive[k]
            why.append(
                f"side A won {share:.0%} of {int(decisive[k])} decisive votes (p = {side[k]:.1e})"
            )
        reasons.append(tuple(why))
    return VoterQuality(
        votes=total,
        decisive=decisive,
        a_wins=per[Outcome.A_WINS],
        ties=per[Outcome.TIE],
        both_bad=per[Outcome.BOTH_BAD],
        side_p=side,
        sequential=sequential,
        model=model,
        flagged=flagged,
        reasons=tuple(reasons),
    )


def share_interval(successes: int, trials: int) -> tuple[float | None, float, float]:
    """A share with its 95% Wilson interval; None for the share without trials."""
    lower, upper = wilson_interval(successes, trials)
    return (successes / trials if trials else None), lower, upper
