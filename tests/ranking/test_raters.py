"""Krippendorff's alpha through the ``krippendorff`` package, checked against hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from arena.ranking.raters import krippendorff_alpha, reliability_matrix


def _alpha_by_hand(units: list[list[int]]) -> float:
    """Nominal alpha from the coincidence matrix (Krippendorff 2011, section C)."""
    values = sorted({v for unit in units for v in unit})
    index = {v: k for k, v in enumerate(values)}
    coincidence = np.zeros((len(values), len(values)))
    for unit in units:
        m = len(unit)
        for x in range(m):
            for y in range(m):
                if x != y:
                    coincidence[index[unit[x]], index[unit[y]]] += 1.0 / (m - 1)
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    observed = coincidence.sum() - np.trace(coincidence)
    expected = (n_c.sum() ** 2 - (n_c**2).sum()) / (n - 1)
    return float(1.0 - observed / expected)


def _rows(units: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    item, rater, verdict = [], [], []
    for u, unit in enumerate(units):
        for r, v in enumerate(unit):
            item.append(u)
            rater.append(r)
            verdict.append(v)
    return np.array(item), np.array(rater), np.array(verdict)


def test_two_raters_four_items_match_the_hand_count() -> None:
    units = [[0, 0], [0, 0], [1, 1], [0, 1]]
    result = krippendorff_alpha(*_rows(units), rounds=0)
    assert result.alpha == pytest.approx(8 / 15)
    assert result.alpha == pytest.approx(_alpha_by_hand(units))


def test_three_raters_with_gaps_match_the_hand_count() -> None:
    units = [[0, 0, 0], [1, 1], [0, 2, 2], [3, 3, 1], [2, 2, 2], [0, 1]]
    item, rater, verdict = _rows(units)
    assert krippendorff_alpha(item, rater, verdict, rounds=0).alpha == pytest.approx(
        _alpha_by_hand(units)
    )


def test_perfect_agreement_is_one_and_the_interval_holds_the_estimate() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 60)
    units = [[int(t)] * 3 for t in truth]
    units[0] = [0, 1, 2]
    result = krippendorff_alpha(*_rows(units), rounds=200)
    assert result.alpha is not None
    assert 0.9 < result.alpha < 1.0
    assert result.ci_lower is not None
    assert result.ci_upper is not None
    assert result.ci_lower <= result.alpha <= result.ci_upper
    assert result.items == 60


def test_items_rated_once_are_left_out_and_no_variation_is_undefined() -> None:
    matrix = reliability_matrix(np.array([1, 1, 2]), np.array([5, 6, 5]), np.array([0, 0, 1]))
    assert matrix.shape == (2, 1)
    result = krippendorff_alpha(np.array([1, 1]), np.array([5, 6]), np.array([0, 0]))
    assert result.alpha is None
    assert result.items == 1
