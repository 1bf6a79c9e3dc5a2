"""Online Elo against a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest

from arena.ranking import Outcome, elo_online


def test_three_votes_match_the_hand_computation() -> None:
    # 1. 0 beats 1 from 1000 each: expected 0.5, so 0 gains 4 * 0.5 = 2 -> 1002 / 998.
    # 2. 1 (998) ties 2 (1000): expected for 1 = 1 / (1 + 10^(2/400)) = 0.4971218;
    #    1 gains 4 * (0.5 - 0.4971218) = 0.0115128 -> 998.0115128 / 999.9884872.
    # 3. 0 (1002, side b) beats 2 (999.9884872, side a): expected for 2 = 0.4971052;
    #    2 loses 4 * 0.4971052 = 1.9884209 -> 998.0000663, and 0 -> 1003.9884209.
    ratings = elo_online([0, 1, 2], [1, 2, 0], [Outcome.A_WINS, Outcome.TIE, Outcome.B_WINS], 3)
    assert ratings == pytest.approx([1003.9884209, 998.0115128, 998.0000663], abs=1e-6)


def test_both_bad_counts_as_a_tie_unless_dropped() -> None:
    tie = elo_online([0], [1], [Outcome.TIE], 2)
    both_bad = elo_online([0, 0], [1, 1], [Outcome.A_WINS, Outcome.BOTH_BAD], 2)
    dropped = elo_online([0, 0], [1, 1], [Outcome.A_WINS, Outcome.BOTH_BAD], 2, drop_both_bad=True)
    assert tie.tolist() == [1000.0, 1000.0]
    assert dropped.tolist() == [1002.0, 998.0]
    # After 1002 / 998 a half score pulls the leader back.
    assert both_bad[0] < 1002.0
    assert both_bad.sum() == pytest.approx(2000.0)


def test_order_matters_and_points_are_conserved() -> None:
    forward = elo_online([0, 0], [1, 2], [0, 1], 3)
    backward = elo_online([0, 0], [2, 1], [1, 0], 3)
    assert not np.allclose(forward, backward)
    assert forward.sum() == pytest.approx(3000.0)


def test_no_votes_leave_everyone_at_the_start() -> None:
    assert elo_online([], [], [], 2).tolist() == [1000.0, 1000.0]


def test_parameters_are_honoured() -> None:
    ratings = elo_online([0], [1], [0], 2, k=32.0, start=1500.0)
    assert ratings.tolist() == [1516.0, 1484.0]


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="range"):
        elo_online([0], [2], [0], 2)
    with pytest.raises(ValueError, match="outcome"):
        elo_online([0], [1], [4], 2)


def test_compiled_replay_gives_exactly_the_python_rule() -> None:
    """numba compiles `_replay_python`; on 20,000 random votes (ties and both-bad included)
    the compiled replay and the rule run as Python end on bitwise the same ratings."""
    from arena.ranking.elo import _SCORE_A, _replay_python

    rng = np.random.default_rng(7)
    a = rng.integers(0, 12, 20_000)
    b = (a + rng.integers(1, 12, 20_000)) % 12
    outcome = rng.integers(0, 4, 20_000)
    expected = np.full(12, 1000.0)
    _replay_python(a, b, _SCORE_A[outcome], expected, 4.0, 10.0, 1 / 400)
    assert np.array_equal(elo_online(a, b, outcome, 12), expected)
    assert len(set(expected.tolist())) == 12  # the votes moved every rating


def test_without_a_writable_cache_folder_the_replay_still_compiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """numba refuses ``cache=True`` where no cache folder is writable (a read-only install
    with no home directory): the replay is then compiled without a cache, not lost."""
    import numba

    from arena.ranking import elo

    real = numba.njit

    def njit(*args: object, cache: bool = False, **kwargs: object) -> object:
        if cache:
            raise RuntimeError("cannot cache function '_replay_python': no locator available")
        return real(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit)
    elo._replay.cache_clear()
    try:
        assert elo._replay() is not elo._replay_python
        assert elo_online([0], [1], [Outcome.A_WINS], 2).tolist() == [1002.0, 998.0]
    finally:
        elo._replay.cache_clear()
