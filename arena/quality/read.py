"""Per-evaluator quality of a campaign, and its agreement figures (read-only).

Which votes the outlier test reads: those the ratings would count with every exclusion lifted
(`arena.ratings.store.counted_votes` with ``include_excluded``: no gold or repeat vote, tainted
ones as the campaign decides), so an excluded evaluator's flag stays visible. Gold and repeat
votes feed gold accuracy and self-agreement only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.conf import settings

from arena.models import Campaign
from arena.quality import rules, store
from arena.ranking import Outcome, wilson_interval
from arena.ranking.quality import (
    FAVOUR_THRESHOLD,
    MIN_DECISIVE,
    SEQUENTIAL_ALPHA,
    SIDE_P,
    Z_THRESHOLD,
    VoterVotes,
    voter_quality,
)
from arena.ranking.raters import BOTH_BAD, FIRST, SECOND, TIE, Alpha, krippendorff_alpha

AGREEMENT_ROUNDS = 500


@dataclass(frozen=True)
class Share:
    """``successes`` of ``trials`` with the share and its 95% Wilson interval (None: no trials)."""

    successes: int
    trials: int
    share: float | None
    ci_lower: float | None
    ci_upper: float | None

    @classmethod
    def of(cls, successes: int, trials: int) -> Share:
        if trials == 0:
            return cls(successes=0, trials=0, share=None, ci_lower=None, ci_upper=None)
        lower, upper = wilson_interval(successes, trials)
        return cls(successes, trials, successes / trials, lower, upper)


@dataclass(frozen=True)
class Outlier:
    """The parts of the flag (`arena.ranking.quality`)."""

    sequential_flagged: bool
    sequential_votes_to_flag: int
    sequential_max_log_ratio: float
    model_z: float | None
    model_mean_loglik: float | None
    favour_z: float | None
    side_p: float


@dataclass(frozen=True)
class EvaluatorQuality:
    evaluator: str
    key: str  # rules.evaluator_key; internal (holds a session key), never printed
    votes: int
    counted: int
    low_confidence: int
    median_ms: float | None
    too_fast: Share
    side_a: Share
    ties: Share
    both_bad: Share
    consensus: Share
    gold: Share
    self_agreement: Share
    outlier: Outlier
    flagged: bool
    reasons: tuple[str, ...]
    excluded: bool  # an active exclusion covers every vote of this evaluator

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["key"]
        data["reasons"] = list(self.reasons)
        result: dict[str, Any] = _finite(data)
        return result


@dataclass(frozen=True)
class AgreementFigure:
    scope: str  # "campaign" or "category:<name>"
    alpha: Alpha


@dataclass(frozen=True)
class QualityReport:
    campaign: str
    evaluators: tuple[EvaluatorQuality, ...]
    agreement: tuple[AgreementFigure, ...]
    settings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "settings": self.settings,
            "evaluators": [e.to_json() for e in self.evaluators],
            "agreement": [{"scope": a.scope, **_finite(asdict(a.alpha))} for a in self.agreement],
        }


def _finite(value: Any) -> Any:
    """NaN and infinities as None, for JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _verdicts(outcome: Any, a: Any, b: Any) -> tuple[Any, Any, Any]:
    """Per vote: the item (the two answers, lower id first) and the verdict in its
    orientation (`arena.ranking.raters` codes)."""
    first, second = np.minimum(a, b), np.maximum(a, b)
    winner = np.where(outcome == Outcome.A_WINS, a, b)
    verdict = np.select(
        [outcome == Outcome.TIE, outcome == Outcome.BOTH_BAD, winner == first],
        [TIE, BOTH_BAD, FIRST],
        default=SECOND,
    )
    return first, second, verdict


def _medians(group: Any, values: Any, n: int) -> list[float | None]:
    """The median of ``values`` within each of ``n`` groups (None for an empty group)."""
    order = np.lexsort((values, group))
    group, values = group[order], values[order]
    starts = np.searchsorted(group, np.arange(n))
    ends = np.searchsorted(group, np.arange(n), side="right")
    out: list[float | None] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if end == start:
            out.append(None)
            continue
        low, high = (start + end - 1) // 2, (start + end) // 2
        out.append(float((values[low] + values[high]) / 2))
    return out


def evaluator_quality_list(
    *, campaign: Campaign, agreement_rounds: int = AGREEMENT_ROUNDS
) -> QualityReport:
    """Every evaluator who voted in the campaign, most votes first, with the figures of
    ``manage.py evaluator_quality`` and the campaign's inter-rater agreement."""
    rows = store.quality_rows(campaign_id=campaign.pk)
    exclude_tainted = campaign.tainted_votes == Campaign.TaintedVotes.EXCLUDE
    voter, n_voters = rows.voter, len(rows.voter_keys)
    rated = ~rows.control & (~rows.tainted if exclude_tainted else True)
    contestants = np.unique(np.concatenate([rows.contestant_a, rows.contestant_b]))
    a = np.searchsorted(contestants, rows.contestant_a)
    b = np.searchsorted(contestants, rows.contestant_b)
    votes = VoterVotes(
        voter=voter[rated],
        a=a[rated],
        b=b[rated],
        outcome=rows.outcome[rated],
        n_models=int(contestants.size),
        n_voters=n_voters,
    )
    quality = voter_quality(votes)
    gold_right, gold_total = _gold(rows, n_voters)
    repeat_same, repeat_total = _repeats(rows, n_voters)
    position = {key: k for k, key in enumerate(rows.voter_keys)}
    excluded_voters = _excluded_voters(campaign, position)
    floor = settings.ARENA_READING_FLOOR_MS

    def per_voter(mask: Any) -> Any:
        return np.bincount(voter[mask], minlength=n_voters)

    everything = np.ones(rows.size, dtype=np.bool_)
    total = per_voter(everything)
    counted = per_voter(rated & ~rows.excluded)
    low = per_voter(rows.low_confidence)
    timed = rows.time_ms >= 0
    timed_count = per_voter(timed)
    fast = per_voter(timed & (rows.time_ms < floor))
    medians = _medians(voter[timed], rows.time_ms[timed], n_voters)
    model = quality.model
    out = []
    for k, key in enumerate(rows.voter_keys):
        decisive = int(quality.decisive[k])
        out.append(
            EvaluatorQuality(
                evaluator=rows.voter_labels[k],
                key=key,
                votes=int(total[k]),
                counted=int(counted[k]),
                low_confidence=int(low[k]),
                median_ms=medians[k],
                too_fast=Share.of(int(fast[k]), int(timed_count[k])),
                side_a=Share.of(int(quality.a_wins[k]), decisive),
                ties=Share.of(int(quality.ties[k]), int(quality.votes[k])),
                both_bad=Share.of(int(quality.both_bad[k]), int(quality.votes[k])),
                consensus=Share.of(int(model.consensus_agree[k]), int(model.decisive[k]))
                if not math.isnan(model.z[k])
                else Share.of(0, 0),
                gold=Share.of(int(gold_right[k]), int(gold_total[k])),
                self_agreement=Share.of(int(repeat_same[k]), int(repeat_total[k])),
                outlier=Outlier(
                    sequential_flagged=bool(quality.sequential.flagged[k]),
                    sequential_votes_to_flag=int(quality.sequential.votes_to_flag[k]),
                    sequential_max_log_ratio=float(quality.sequential.max_log_ratio[k]),
                    model_z=_num(model.z[k]),
                    model_mean_loglik=_num(model.mean_loglik[k]),
                    favour_z=_num(model.favour_z[k]),
                    side_p=float(quality.side_p[k]),
                ),
                flagged=bool(quality.flagged[k]),
                reasons=quality.reasons[k],
                excluded=k in excluded_voters,
            )
        )
    out.sort(key=lambda e: (-e.votes, e.evaluator))
    return QualityReport(
        campaign=campaign.slug,
        evaluators=tuple(out),
        agreement=_agreement(rows, rated, agreement_rounds),
        settings={
            "sequential_alpha": SEQUENTIAL_ALPHA,
            "z_threshold": Z_THRESHOLD,
            "favour_threshold": FAVOUR_THRESHOLD,
            "side_p": SIDE_P,
            "min_decisive": MIN_DECISIVE,
            "reading_floor_ms": floor,
        },
    )


def _num(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _gold(rows: store.QualityRows, n_voters: int) -> tuple[Any, Any]:
    """Per voter: gold votes that chose the better answer, and gold votes."""
    gold = rows.gold_better >= 0
    chosen = np.where(rows.outcome == Outcome.A_WINS, rows.answer_a, rows.answer_b)
    decisive = (rows.outcome == Outcome.A_WINS) | (rows.outcome == Outcome.B_WINS)
    right = gold & decisive & (chosen == rows.gold_better)
    return (
        np.bincount(rows.voter[right], minlength=n_voters),
        np.bincount(rows.voter[gold], minlength=n_voters),
    )


def _repeats(rows: store.QualityRows, n_voters: int) -> tuple[Any, Any]:
    """Per voter: repeat votes that said what the same voter said the first time, and repeat
    votes whose first vote is there to compare with."""
    same = np.zeros(n_voters, dtype=np.int64)
    total = np.zeros(n_voters, dtype=np.int64)
    repeats = np.flatnonzero((rows.kind == store.KINDS.index("repeat")) & (rows.source >= 0))
    if repeats.size == 0:
        return same, total
    by_battle = {int(b): k for k, b in enumerate(rows.battle.tolist())}
    _f, _s, verdict = _verdicts(rows.outcome, rows.answer_a, rows.answer_b)
    for k in repeats.tolist():
        first = by_battle.get(int(rows.source[k]))
        if first is None or rows.voter[first] != rows.voter[k]:
            continue
        total[rows.voter[k]] += 1
        same[rows.voter[k]] += int(verdict[k] == verdict[first])
    return same, total


def _excluded_voters(campaign: Campaign, position: dict[str, int]) -> set[int]:
    found = set()
    for user_id, session in (
        store.active_exclusions(campaign_id=campaign.pk)
        .filter(votes__isnull=True)
        .values_list("evaluator_id", "session_key")
    ):
        key = rules.evaluator_key(user_id=user_id, session_key=session)
        if key in position:
            found.add(position[key])
    return found


def _agreement(rows: store.QualityRows, rated: Any, rounds: int) -> tuple[AgreementFigure, ...]:
    """Krippendorff's alpha over the items (a question with the same two answers) that two or
    more evaluators rated, for the campaign and each category."""
    first, second, verdict = _verdicts(rows.outcome, rows.answer_a, rows.answer_b)
    keys = np.stack([rows.question, first, second], axis=1)[rated]
    if keys.shape[0] == 0:
        item = np.zeros(0, dtype=np.int64)
    else:
        _unique, item = np.unique(keys, axis=0, return_inverse=True)
        item = item.reshape(-1)
    rater, verdict, category = rows.voter[rated], verdict[rated], rows.category[rated]
    out = [AgreementFigure("campaign", krippendorff_alpha(item, rater, verdict, rounds=rounds))]
    for code, name in sorted(enumerate(rows.categories), key=lambda c: c[1]):
        chosen = category == code
        if not name or not chosen.any():
            continue
        figure = krippendorff_alpha(item[chosen], rater[chosen], verdict[chosen], rounds=rounds)
        if figure.items:
            out.append(AgreementFigure(f"category:{name}", figure))
    return tuple(out)
