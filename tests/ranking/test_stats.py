"""Wilson intervals, position bias and pair matrices."""

from __future__ import annotations

import numpy as np
import pytest

from arena.ranking import (
    Outcome,
    aggregate,
    battle_matrix,
    cells_from_pair_counts,
    observed_win_rate,
    pair_data,
    position_bias,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("successes", "trials", "expected"),
    [
        (8, 10, (0.4902, 0.9433)),
        (5, 10, (0.2366, 0.7634)),
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (520, 1000, (0.4890, 0.5508)),
    ],
)
def test_wilson_interval_matches_known_values(
    successes: int, trials: int, expected: tuple[float, float]
) -> None:
    assert wilson_interval(successes, trials) == pytest.approx(expected, abs=1e-4)


def test_wilson_interval_without_trials_is_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


def test_position_bias_is_the_share_of_decisive_votes_won_by_side_a() -> None:
    a = [0, 1, 0, 1, 0, 2, 2]
    b = [1, 0, 2, 2, 1, 0, 1]
    o = [Outcome.A_WINS] * 3 + [Outcome.B_WINS, Outcome.TIE, Outcome.BOTH_BAD, Outcome.A_WINS]
    bias = position_bias(aggregate(a, b, o, 3))
    assert bias is not None
    assert (bias.decisive, bias.a_wins) == (5, 4)
    assert bias.share == pytest.approx(0.8)
    assert (bias.ci_lower, bias.ci_upper) == pytest.approx(wilson_interval(4, 5))


def test_position_bias_needs_sides_and_decisive_votes() -> None:
    assert position_bias(cells_from_pair_counts([[0, 1]], [[5, 3, 0, 0]], 2)) is None
    assert position_bias(aggregate([0], [1], [Outcome.TIE], 2)) is None


def test_matrices_count_battles_and_observed_win_rates() -> None:
    cells = cells_from_pair_counts([[0, 1], [1, 2]], [[3, 1, 2, 2], [0, 4, 0, 0]], 3)
    data = pair_data(cells)
    assert battle_matrix(data).tolist() == [[0, 8, 0], [8, 0, 4], [0, 4, 0]]
    rates = observed_win_rate(data)
    assert rates[0, 1] == pytest.approx(5 / 8)
    assert rates[1, 0] == pytest.approx(3 / 8)
    assert rates[2, 1] == pytest.approx(1.0)
    assert np.isnan(rates[0, 2])
    assert np.isnan(rates[1, 1])
    assert battle_matrix(pair_data(cells, drop_both_bad=True))[0, 1] == 6
