"""The judging maths: agreement against scikit-learn and hand-computed cases, leaderboard
correlation against scipy, judgments as cells, consistency, length bias, trial spread and
composite Bradley–Terry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from arena.ranking import Outcome, aggregate, bt_ratings, position_bias
from arena.ranking.agreement import (
    agreement,
    kappa_from_confusion,
    kendall_rows,
    rank_correlation,
    separability,
    spearman_rows,
)
from arena.ranking.judging import (
    composite_bt,
    consistency,
    grade_cells,
    judgment_cells,
    length_bias,
    trial_spread,
)


def test_agreement_of_a_hand_computed_case() -> None:
    # 10 items: humans (a) and judge (b). Confusion:
    #            judge LO TIE HI
    # human LO       3   1   0
    # human TIE      1   1   0
    # human HI       0   1   3
    a = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    b = [0, 0, 0, 1, 0, 1, 1, 2, 2, 2]
    result = agreement(a, b, rounds=0)
    assert result.items == 10
    assert result.agree == 7
    assert result.with_ties == pytest.approx(0.7)
    # Decisive by both: LO/LO x3, HI/HI x3, no LO/HI: 6 of 6 agree.
    assert result.decisive == 6
    assert result.without_ties == pytest.approx(1.0)
    # p_o = 0.7; p_e = (0.4*0.4 + 0.2*0.3 + 0.4*0.3) = 0.34; kappa = 0.36 / 0.66.
    assert result.kappa == pytest.approx(0.36 / 0.66)
    assert result.confusion == [[3, 1, 0], [1, 1, 0], [0, 1, 3]]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kappa_matches_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, 300)
    b = np.where(rng.random(300) < 0.5, a, rng.integers(0, 3, 300))
    result = agreement(a, b, rounds=200, seed=seed)
    assert result.kappa == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    lower, upper = result.kappa_ci
    assert lower is not None
    assert upper is not None
    assert lower < result.kappa < upper


def test_weighted_rows_are_the_same_as_repeated_items() -> None:
    a, b, w = [0, 1, 2, 0], [0, 2, 2, 1], [3, 1, 4, 2]
    repeated_a = np.repeat(a, w)
    repeated_b = np.repeat(b, w)
    weighted = agreement(a, b, weights=w, rounds=0)
    assert weighted.kappa == pytest.approx(cohen_kappa_score(repeated_a, repeated_b))
    assert weighted.items == 10


def test_kappa_is_undefined_when_both_always_say_the_same_class() -> None:
    assert np.isnan(kappa_from_confusion(np.array([[5, 0, 0], [0, 0, 0], [0, 0, 0]]))[0])
    assert agreement([0, 0], [0, 0], rounds=10).kappa is None


def test_the_kappa_interval_narrows_with_more_items() -> None:
    rng = np.random.default_rng(5)

    def width(n: int) -> float:
        a = rng.integers(0, 3, n)
        b = np.where(rng.random(n) < 0.6, a, rng.integers(0, 3, n))
        lo, hi = agreement(a, b, rounds=500).kappa_ci
        assert lo is not None
        assert hi is not None
        return hi - lo

    assert width(2000) < width(100)


def test_row_correlations_match_scipy() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(20, 9))
    y = x + rng.normal(size=(20, 9))
    rho = spearman_rows(x, y)
    tau = kendall_rows(x, y)
    for k in range(20):
        assert rho[k] == pytest.approx(stats.spearmanr(x[k], y[k]).statistic)
        assert tau[k] == pytest.approx(stats.kendalltau(x[k], y[k]).statistic)


def test_rank_correlation_of_identical_boards_is_one() -> None:
    x = np.array([1000.0, 1050.0, 980.0, 1100.0])
    samples = x + np.random.default_rng(0).normal(scale=1.0, size=(100, 4))
    result = rank_correlation(x, x + 3.0, samples, samples)
    assert result.spearman == pytest.approx(1.0)
    assert result.kendall == pytest.approx(1.0)
    assert result.kendall_ci[1] == pytest.approx(1.0)
    reversed_result = rank_correlation(x, -x, samples, -samples)
    assert reversed_result.kendall == pytest.approx(-1.0)


def test_separability_counts_pairs_whose_intervals_do_not_overlap() -> None:
    # [0,1], [2,3], [2.5,4]: pairs (0,1) and (0,2) apart, (1,2) overlap.
    assert separability([0, 2, 2.5], [1, 3, 4]) == pytest.approx(2 / 3)
    assert separability([0], [1]) is None


def test_strong_verdicts_count_as_several_wins() -> None:
    # Verdict codes: 0 A>>B, 1 A>B, 2 A=B, 3 B>A, 4 B>>A.
    first, second, verdict = [0, 0, 1, 1], [1, 1, 0, 0], [0, 1, 2, 4]
    plain = judgment_cells(first, second, verdict, 2)
    triple = judgment_cells(first, second, verdict, 2, strong_weight=3)
    assert plain.total == 4
    assert triple.total == 8
    # Side a won A>>B (x3) and A>B; contestant 1 as side a tied once; B>>A by 1 as a: 0 wins x3.
    a_wins = triple.count[(triple.outcome == Outcome.A_WINS)].sum()
    assert a_wins == 4
    assert triple.count[triple.outcome == Outcome.B_WINS].sum() == 3


def test_judge_position_bias_is_the_first_position_win_share() -> None:
    # A judge that always prefers the first answer: every decisive verdict is side a.
    cells = judgment_cells([0, 1, 0, 1], [1, 0, 1, 0], [1, 1, 0, 1], 2)
    bias = position_bias(cells)
    assert bias is not None
    assert bias.share == 1.0
    assert bias.ci_lower > 0.3


def test_consistency_compares_the_two_orders_of_each_pair_and_trial() -> None:
    # Pair 0: lo first says A>B (lo wins); swapped says B>A (lo wins again): consistent.
    # Pair 1: lo first says A>B; swapped says A>B (hi wins): inconsistent (position bias).
    # Pair 2: only one order judged: not counted.
    pair = [0, 0, 1, 1, 2]
    trial = [0, 0, 0, 0, 0]
    first_is_lo = [True, False, True, False, True]
    score_first = [1.0, 0.0, 1.0, 1.0, 1.0]
    result = consistency(pair, trial, first_is_lo, score_first)
    assert result.n == 2
    assert result.hits == 1
    assert result.share == 0.5


def test_length_bias_counts_wins_of_the_longer_answer() -> None:
    result = length_bias([100, 10, 50, 50], [10, 100, 20, 50], [1.0, 0.0, 0.0, 1.0])
    # Decisive with unequal lengths: rows 0, 1, 2; the longer won in 0 and 1.
    assert result.longer_wins.n == 3
    assert result.longer_wins.hits == 2
    assert sum(n for _lo, _hi, n, _rate in result.bins) == 4


def test_grades_become_battles_within_a_question_and_trial() -> None:
    # Question 0, trial 0: contestants 0, 1, 2 graded 9, 5, 5 -> 0 beats 1, 0 beats 2, 1 ties 2.
    cells = grade_cells([0, 0, 0], [0, 0, 0], [0, 1, 2], [9.0, 5.0, 5.0], 3)
    assert not cells.sided
    assert cells.total == 3
    assert cells.count[cells.outcome == Outcome.TIE].sum() == 1
    ratings = bt_ratings(cells)
    assert ratings[0] > ratings[1]


def test_trial_spread_rates_each_trial_on_its_own() -> None:
    rng = np.random.default_rng(3)
    rows = 600
    a = rng.integers(0, 3, rows)
    b = (a + rng.integers(1, 3, rows)) % 3
    strength = np.array([1.0, 0.0, -1.0])
    p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    outcome = np.where(rng.random(rows) < p, Outcome.A_WINS, Outcome.B_WINS)
    trial = np.repeat([0, 1, 2], rows // 3)
    spread = trial_spread(a, b, outcome, np.ones(rows, dtype=np.int64), trial, 3)
    assert spread is not None
    assert spread.ratings.shape == (3, 3)
    for t in range(3):
        keep = trial == t
        expected = bt_ratings(aggregate(a[keep], b[keep], outcome[keep], 3))
        np.testing.assert_allclose(spread.ratings[t], expected)
    assert np.all(spread.lower <= spread.mean)
    assert np.all(spread.mean <= spread.upper)
    assert trial_spread(a, b, outcome, np.ones(rows, dtype=np.int64), np.zeros(rows), 3) is None


def test_composite_of_one_part_is_plain_bradley_terry() -> None:
    cells = aggregate([0, 0, 1, 2, 0], [1, 2, 2, 0, 1], [0, 0, 1, 2, 1], 3)
    combined = composite_bt([(cells, 1.0)], rounds=0)
    np.testing.assert_allclose(combined.ratings, bt_ratings(cells), atol=1e-6)


def test_composite_weights_move_the_ratings_towards_the_heavier_part() -> None:
    humans = aggregate([0] * 20, [1] * 20, [0] * 15 + [1] * 5, 2)  # 0 beats 1 mostly
    judge = aggregate([0] * 20, [1] * 20, [0] * 5 + [1] * 15, 2)  # the judge says the opposite
    light = composite_bt([(humans, 1.0), (judge, 0.1)], rounds=50)
    heavy = composite_bt([(humans, 1.0), (judge, 10.0)], rounds=50)
    assert light.ratings[0] > light.ratings[1]
    assert heavy.ratings[0] < heavy.ratings[1]
    assert np.all(light.lower <= light.ratings + 1e-9)
    assert np.all(light.ratings <= light.upper + 1e-9)
    # Weight 1 on two parts is one fit of all their votes.
    both = composite_bt([(humans, 1.0), (judge, 1.0)], rounds=0)
    union = aggregate([0] * 40, [1] * 40, [0] * 15 + [1] * 5 + [0] * 5 + [1] * 15, 2)
    np.testing.assert_allclose(both.ratings, bt_ratings(union), atol=1e-6)
