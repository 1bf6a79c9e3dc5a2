"""Style features and the style-controlled fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from arena.ranking import RATING_PER_THETA, style_control, style_features

MARKDOWN = """# Title
Some **bold** text and __more bold__.

## Section
- one
- two
* three
1. first
2) second

```python
# not a header
- not a list
**not bold**
```

~~~
# still code
~~~
Last **word**.
"""


def test_style_features_count_markdown_outside_code_blocks() -> None:
    length, headers, lists, bold = style_features(MARKDOWN)
    assert headers == 2
    assert lists == 5
    assert bold == 3
    assert length > 40


def test_code_blocks_do_not_change_markdown_counts() -> None:
    prose = "# Head\n- item\n**b**\n"
    code = "```\n# Head\n- item\n**b**\n```\n"
    assert style_features(prose + code)[1:] == style_features(prose)[1:]
    assert style_features(code)[1:] == (0, 0, 0)


def test_unclosed_fence_runs_to_the_end() -> None:
    assert style_features("# a\n```\n# b\n- c\n")[1:] == (1, 0, 0)


def test_a_shorter_fence_does_not_close_a_longer_one() -> None:
    text = "````\n```\n# inside\n````\n# outside\n"
    assert style_features(text)[1] == 1


def test_length_counts_words_and_punctuation() -> None:
    assert style_features("Hello, world! 42 times.")[0] == 7
    assert style_features("") == (0, 0, 0, 0)


def test_horizontal_rules_and_hashtags_are_not_markdown_structure() -> None:
    assert style_features("---\n#hashtag\n***\n")[1:] == (0, 0, 0)


def _style_votes(
    n_votes: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Votes where longer answers win more often and some contestants write longer."""
    rng = np.random.default_rng(seed)
    theta = np.array([-0.5, -0.2, 0.0, 0.2, 0.5])
    verbosity = np.array([600.0, 150.0, 400.0, 100.0, 300.0])
    n = theta.size
    a = rng.integers(0, n, n_votes)
    b = (a + rng.integers(1, n, n_votes)) % n
    fa = np.zeros((n_votes, 4))
    fb = np.zeros((n_votes, 4))
    # Lengths vary from answer to answer too, or length would be confounded with the contestant.
    fa[:, 0] = rng.poisson(verbosity[a] * rng.lognormal(0.0, 0.6, n_votes))
    fb[:, 0] = rng.poisson(verbosity[b] * rng.lognormal(0.0, 0.6, n_votes))
    fa[:, 1:] = rng.poisson(2.0, (n_votes, 3))
    fb[:, 1:] = rng.poisson(2.0, (n_votes, 3))
    diff = (fa - fb) / (fa + fb + 1.0)
    z = (diff - diff.mean(axis=0)) / diff.std(axis=0)
    beta_length = 0.6
    p_a = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + beta_length * z[:, 0])))
    outcome = np.where(rng.random(n_votes) < p_a, 0, 1)
    return a, b, outcome, fa, fb, theta, beta_length


def test_style_control_recovers_the_length_effect_and_true_strengths() -> None:
    a, b, outcome, fa, fb, theta, beta_length = _style_votes(30_000, 0)
    names = [f"m{k}" for k in range(theta.size)]
    result = style_control(a, b, outcome, fa, fb, names)
    truth = 1000.0 + RATING_PER_THETA * (theta - theta.mean())
    assert result.coefficients["length"] == pytest.approx(beta_length, abs=0.05)
    for name in ("headers", "lists", "bold"):
        assert abs(result.coefficients[name]) < 0.05
    assert np.abs(result.ratings - truth).max() < 15.0
    # The verbose contestant 0 is flattered by raw BT.
    assert result.raw_ratings[0] - truth[0] > 50.0
    assert np.abs(result.raw_ratings - truth).max() > 3 * np.abs(result.ratings - truth).max()
    payload = result.to_json()
    json.dumps(payload, allow_nan=False)
    assert next(c["name"] for c in payload["contestants"]) == "m4"


def test_style_control_without_style_differences_equals_plain_bt() -> None:
    a, b, outcome, _, _, theta, _ = _style_votes(5_000, 1)
    same = np.ones((a.size, 4))
    result = style_control(a, b, outcome, same, same, [f"m{k}" for k in range(theta.size)])
    assert result.ratings == pytest.approx(result.raw_ratings, abs=1e-3)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in result.coefficients.values())


def test_style_control_anchors_and_drops_both_bad() -> None:
    a, b, outcome, fa, fb, theta, _ = _style_votes(5_000, 2)
    outcome = outcome.copy()
    outcome[::10] = 3
    names = [f"m{k}" for k in range(theta.size)]
    result = style_control(a, b, outcome, fa, fb, names, anchor=("m2", 1114.0), drop_both_bad=True)
    assert result.ratings[2] == pytest.approx(1114.0)
    assert result.raw_ratings[2] == pytest.approx(1114.0)
    assert result.votes == a.size - len(outcome[::10])


def test_style_control_with_no_votes_rates_everyone_at_the_mean() -> None:
    empty = np.zeros((0, 4))
    result = style_control([], [], [], empty, empty, ["x", "y"])
    assert result.ratings.tolist() == [1000.0, 1000.0]
    assert result.votes == 0


def test_counts_weigh_rows_like_repeated_votes() -> None:
    a, b, outcome, fa, fb, theta, _ = _style_votes(2_000, 3)
    counts = np.random.default_rng(4).integers(0, 4, a.size)
    names = [f"m{k}" for k in range(theta.size)]
    weighted = style_control(a, b, outcome, fa, fb, names, counts=counts)
    repeated = style_control(
        np.repeat(a, counts),
        np.repeat(b, counts),
        np.repeat(outcome, counts),
        np.repeat(fa, counts, axis=0),
        np.repeat(fb, counts, axis=0),
        names,
    )
    assert weighted.votes == repeated.votes == counts.sum()
    assert weighted.ratings == pytest.approx(repeated.ratings, abs=1e-6)
    assert weighted.coefficients == pytest.approx(repeated.coefficients, abs=1e-8)
