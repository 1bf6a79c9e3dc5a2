"""The reads and writes of vote quality. Everything here is ORM; the only SQL a vote's quality
touches on the hot path is in `arena.battles.store` (the vote row's ``control`` and
``low_confidence`` columns)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from django.db.models import QuerySet

from arena.models import Battle, Campaign, Exclusion, GoldItem, Vote
from arena.quality import rules

IntArray = npt.NDArray[np.int64]

_FIELDS = (
    "id",
    "battle_id",
    "evaluator_id",
    "evaluator__username",
    "battle__session_key",
    "contestant_a_id",
    "contestant_b_id",
    "outcome",
    "time_to_vote_ms",
    "control",
    "excluded",
    "low_confidence",
    "tainted",
    "battle__kind",
    "battle__gold__better_id",
    "battle__source_id",
    "battle__answer_a_id",
    "battle__answer_b_id",
    "question_id",
    "question__category",
)
_OUTCOMES = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}  # arena.ranking.Outcome's codes
KINDS = ("regular", "gold", "repeat", "overlap")  # Battle.Kind, by code
_KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}
_CHUNK = 5000


@dataclass(frozen=True)
class QualityRows:
    """Every vote of a campaign in vote order, one numpy array per column: the voter as a
    position in ``voter_keys`` (`rules.evaluator_key`; ``voter_labels`` name them), outcome
    codes of `arena.ranking.Outcome`, the battle's kind as a position in `KINDS`, the
    question's category as a position in ``categories``; -1 for a missing id or time."""

    voter: IntArray
    voter_keys: list[str]
    voter_labels: list[str]
    vote: IntArray
    battle: IntArray
    contestant_a: IntArray
    contestant_b: IntArray
    outcome: IntArray
    time_ms: IntArray
    control: npt.NDArray[np.bool_]
    excluded: npt.NDArray[np.bool_]
    low_confidence: npt.NDArray[np.bool_]
    tainted: npt.NDArray[np.bool_]
    kind: IntArray
    gold_better: IntArray
    source: IntArray
    answer_a: IntArray
    answer_b: IntArray
    question: IntArray
    category: IntArray
    categories: list[str]

    @property
    def size(self) -> int:
        return int(self.vote.size)


def quality_rows(*, campaign_id: int) -> QualityRows:
    """Every vote of the campaign with who cast it and on what kind of battle, read in chunks
    that become numbers at once (a campaign of millions of votes holds arrays, not rows)."""
    voters: dict[str, int] = {}
    labels: list[str] = []
    categories: dict[str, int] = {}
    chunks: list[IntArray] = []
    rows = (
        Vote.objects.filter(campaign_id=campaign_id)
        .order_by("created_at", "id")
        .values_list(*_FIELDS)
        .iterator(chunk_size=_CHUNK)
    )
    batch: list[list[int]] = []
    for row in rows:
        (vote, battle, user, username, session, ca, cb, outcome, ms) = row[:9]
        (control, excluded, low, tainted, kind, better, source, aa, ab, question) = row[9:19]
        key = rules.evaluator_key(user_id=user, session_key=session or "")
        voter = voters.get(key)
        if voter is None:
            voter = voters[key] = len(labels)
            labels.append(rules.evaluator_label(username=username, session_key=session or ""))
        category = categories.setdefault(row[19] or "", len(categories))
        batch.append(
            [
                voter,
                vote,
                battle,
                ca,
                cb,
                _OUTCOMES[outcome],
                -1 if ms is None else ms,
                control,
                excluded,
                low,
                tainted,
                _KIND_CODES.get(kind, 0),
                -1 if better is None else better,
                -1 if source is None else source,
                aa,
                ab,
                question,
                category,
            ]
        )
        if len(batch) == _CHUNK:
            chunks.append(np.array(batch, dtype=np.int64))
            batch = []
    if batch:
        chunks.append(np.array(batch, dtype=np.int64))
    table = np.concatenate(chunks) if chunks else np.zeros((0, 18), dtype=np.int64)
    col = [table[:, k].copy() for k in range(18)]
    return QualityRows(
        voter=col[0],
        voter_keys=list(voters),
        voter_labels=labels,
        vote=col[1],
        battle=col[2],
        contestant_a=col[3],
        contestant_b=col[4],
        outcome=col[5],
        time_ms=col[6],
        control=col[7].astype(np.bool_),
        excluded=col[8].astype(np.bool_),
        low_confidence=col[9].astype(np.bool_),
        tainted=col[10].astype(np.bool_),
        kind=col[11],
        gold_better=col[12],
        source=col[13],
        answer_a=col[14],
        answer_b=col[15],
        question=col[16],
        category=col[17],
        categories=list(categories),
    )


def active_exclusions(*, campaign_id: int) -> QuerySet[Exclusion]:
    return Exclusion.objects.filter(campaign_id=campaign_id, revoked_at__isnull=True)


def campaign_session_keys(*, campaign_id: int) -> list[str]:
    """The session keys that own the campaign's voted battles (anonymous and imported)."""
    return list(
        Battle.objects.filter(campaign_id=campaign_id, evaluator__isnull=True, vote__isnull=False)
        .order_by()
        .values_list("session_key", flat=True)
        .distinct()
    )


def gold_items(*, campaign: Campaign) -> QuerySet[GoldItem]:
    return GoldItem.objects.filter(campaign=campaign, active=True)
