"""Rating snapshots: count a campaign's votes in the database, rate them with `arena.ranking`,
store one RatingSnapshot per scope, and tell open leaderboard pages after commit.

Scopes of a campaign (``<value>`` percent-quoted, so ``|`` and ``:`` cannot appear in it):

    campaign:<id>                   every vote
    campaign:<id>|set:<set id>      votes on questions of one question set
    campaign:<id>|category:<c>      … of one category (questions with a category only)
    campaign:<id>|language:<l>      … of one language
    campaign:<id>|days:<n>          votes of the last n days (7 and 30)

Cost: one GROUP BY over the campaign's votes (per answer pair and outcome, with the recent
counts as filtered aggregates), one read of the answers those rows name, and one ordered read of
four integers per vote for online Elo. Every scope is then cut from those in numpy; no vote row
is ever turned into a Python object.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote

import numpy as np
import numpy.typing as npt
import psycopg
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Count, IntegerField, Max, Q, QuerySet, Value, When
from django.utils import timezone

from arena.models import Answer, Campaign, Contestant, Question, RatingSnapshot, Vote
from arena.ranking import (
    STYLE_FEATURES,
    Cells,
    Outcome,
    elo_online,
    leaderboard,
    style_control,
    style_features,
)

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
ScopeKind = Literal["campaign", "set", "category", "language", "days"]

SCHEMA = 1
# A contestant with fewer votes than this in a scope is listed as hidden, not rated: a handful
# of votes gives an interval so wide that its rank would mislead.
MIN_VOTES = 5
DATE_RANGES = (7, 30)
BOOTSTRAP_SEED = 0
OUTCOME_CODES = {
    Vote.Outcome.A: int(Outcome.A_WINS),
    Vote.Outcome.B: int(Outcome.B_WINS),
    Vote.Outcome.TIE: int(Outcome.TIE),
    Vote.Outcome.BOTH_BAD: int(Outcome.BOTH_BAD),
}
_CHUNK = 5000
WORK_MEM = "256MB"


# Scopes --------------------------------------------------------------------------------------


def campaign_scope(campaign_id: int) -> str:
    """The scope key of a campaign's whole leaderboard."""
    return f"campaign:{campaign_id}"


def scope_key(campaign_id: int, kind: ScopeKind = "campaign", value: str = "") -> str:
    """The scope key of a slice of a campaign's votes."""
    if kind == "campaign":
        return campaign_scope(campaign_id)
    return f"{campaign_scope(campaign_id)}|{kind}:{quote(value, safe='')}"


def scope_parse(key: str) -> tuple[int, ScopeKind, str]:
    """(campaign id, kind, value) of a scope key; ValueError if it is not one."""
    head, bar, tail = key.partition("|")
    prefix, _sep, campaign = head.partition(":")
    if prefix != "campaign" or not campaign.isdigit():
        raise ValueError(f"not a scope key: {key!r}")
    if not bar:
        return int(campaign), "campaign", ""
    kind, sep, value = tail.partition(":")
    if not sep or kind not in ("set", "category", "language", "days"):
        raise ValueError(f"not a scope key: {key!r}")
    return int(campaign), kind, unquote(value)  # type: ignore[return-value]


def leaderboard_group(campaign_id: int) -> str:
    """The channel group that hears about a campaign's new snapshots."""
    return f"leaderboard.{campaign_id}"


# Reading the votes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Questions:
    """The questions voted on (sorted by id) and their slice keys."""

    id: IntArray
    question_set: IntArray
    category: npt.NDArray[np.object_]
    language: npt.NDArray[np.object_]
    set_names: dict[int, str]


@dataclass(frozen=True)
class _Answers:
    """Answers that may have been shown in the campaign's battles (sorted by id), with their
    style features, computed once per answer."""

    id: IntArray
    question: IntArray
    contestant: IntArray
    features: FloatArray  # (answers, len(STYLE_FEATURES))


@dataclass(frozen=True)
class _Groups:
    """Votes as the database counted them, one row per (question, contestant a, contestant b,
    answer a, answer b, outcome) present; contestants, questions and answers are positions in
    `_Votes.names`, `_Questions` and `_Answers`."""

    ia: IntArray
    ib: IntArray
    outcome: IntArray
    count: IntArray
    recent: dict[int, IntArray]  # days -> how many of those votes are of the last `days` days
    question: IntArray
    answer_a: IntArray
    answer_b: IntArray


@dataclass(frozen=True)
class _Ordered:
    """Contestant and question positions and outcome codes per vote, in vote order."""

    ia: IntArray
    ib: IntArray
    outcome: IntArray
    question: IntArray


@dataclass(frozen=True)
class _Votes:
    names: list[str]
    questions: _Questions
    answers: _Answers
    groups: _Groups
    ordered: _Ordered
    total: int
    last_vote_id: int


def _outcome_code() -> Case:
    return Case(
        *(When(outcome=value, then=Value(code)) for value, code in OUTCOME_CODES.items()),
        output_field=IntegerField(),
    )


def _count(votes: QuerySet[Vote], keys: Sequence[str], recent: dict[str, Count]) -> IntArray:
    """GROUP BY ``keys`` and outcome: columns ``keys``, outcome code, votes, recent votes."""
    rows = (
        votes.order_by()
        .annotate(code=_outcome_code())
        .values(*keys, "code")
        .annotate(n=Count("id"), **recent)
        .values_list(*keys, "code", "n", *recent)
    )
    return np.array(list(rows), dtype=np.int64).reshape(-1, len(keys) + 2 + len(recent))


def _chunks(ids: IntArray) -> Iterable[list[int]]:
    values = ids.tolist()
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _read_votes(campaign_id: int, *, now: dt.datetime) -> _Votes | None:
    """Everything the ratings need, counted by the database. Votes are grouped by question and
    contestants, which the vote carries itself; only on questions where a contestant has more
    than one answer (its settings changed) does the count join the battles to learn which
    answer each side showed."""
    votes = Vote.objects.filter(campaign_id=campaign_id)
    last_vote_id = votes.aggregate(last=Max("id"))["last"]
    if last_vote_id is None:
        return None
    # Bound every read by the last id seen, so votes arriving meanwhile stay out of all of them.
    votes = votes.filter(id__lte=last_vote_id)
    recent = {
        f"d{days}": Count("id", filter=Q(created_at__gte=now - dt.timedelta(days=days)))
        for days in DATE_RANGES
    }
    _tune_session()
    table = _count(votes, ("question", "contestant_a", "contestant_b"), recent)
    contestant_ids = np.unique(table[:, 1:3])
    questions = _read_questions(np.unique(table[:, 0]))
    answers = _read_answers(questions.id, contestant_ids)
    # The one answer of each (question, contestant), where there is exactly one.
    stride = int(contestant_ids.max()) + 1
    answer_key = answers.question * stride + answers.contestant
    by_key = np.argsort(answer_key, kind="stable")
    keys, first, per_key = np.unique(answer_key[by_key], return_index=True, return_counts=True)
    answer_a, found_a = _lookup(keys, table[:, 0] * stride + table[:, 1])
    answer_b, found_b = _lookup(keys, table[:, 0] * stride + table[:, 2])
    clear = found_a & found_b
    clear[clear] = (per_key[answer_a[clear]] == 1) & (per_key[answer_b[clear]] == 1)
    ids_a = answers.id[by_key[first[answer_a[clear]]]]
    ids_b = answers.id[by_key[first[answer_b[clear]]]]
    rows = table[clear]
    if not clear.all():
        unclear = np.unique(table[~clear, 0])
        fine = _count(
            votes.filter(question_id__in=unclear.tolist()),
            ("question", "contestant_a", "contestant_b", "battle__answer_a", "battle__answer_b"),
            recent,
        )
        answers = _with_answers(answers, np.unique(fine[:, 3:5]))
        ids_a = np.concatenate([ids_a, fine[:, 3]])
        ids_b = np.concatenate([ids_b, fine[:, 4]])
        rows = np.concatenate([rows, np.delete(fine, [3, 4], axis=1)])
    groups = _Groups(
        ia=np.searchsorted(contestant_ids, rows[:, 1]),
        ib=np.searchsorted(contestant_ids, rows[:, 2]),
        outcome=rows[:, 3].copy(),
        count=rows[:, 4].copy(),
        recent={days: rows[:, 5 + k].copy() for k, days in enumerate(DATE_RANGES)},
        question=np.searchsorted(questions.id, rows[:, 0]),
        answer_a=np.searchsorted(answers.id, ids_a),
        answer_b=np.searchsorted(answers.id, ids_b),
    )
    names_by_id = dict(
        Contestant.objects.filter(pk__in=contestant_ids.tolist()).values_list("id", "name")
    )
    ordered = _read_ordered(campaign_id, int(last_vote_id), contestant_ids, questions.id)
    return _Votes(
        names=[names_by_id[pk] for pk in contestant_ids.tolist()],
        questions=questions,
        answers=answers,
        groups=groups,
        ordered=ordered,
        total=int(groups.count.sum()),
        last_vote_id=int(last_vote_id),
    )


def _lookup(keys: IntArray, wanted: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Positions of ``wanted`` in the sorted ``keys``, and whether each was there."""
    if keys.size == 0:
        return np.zeros(wanted.size, dtype=np.int64), np.zeros(wanted.size, dtype=np.bool_)
    position = np.searchsorted(keys, wanted).clip(0, keys.size - 1)
    return position, keys[position] == wanted


def _tune_session() -> None:
    """PostgreSQL: enough work memory for the sorts and hashes below to stay off disk (the
    default 4 MB spills at a few hundred thousand votes). Lasts until the transaction ends."""
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [WORK_MEM])


def _read_questions(question_ids: IntArray) -> _Questions:
    found: dict[int, tuple[int, str, str, str]] = {}
    for chunk in _chunks(question_ids):
        rows = Question.objects.filter(pk__in=chunk).values_list(
            "id", "question_set_id", "question_set__name", "category", "language"
        )
        found.update({pk: (qset, name, cat, lang) for pk, qset, name, cat, lang in rows})
    ordered = [found[pk] for pk in question_ids.tolist()]
    return _Questions(
        id=question_ids,
        question_set=np.array([r[0] for r in ordered], dtype=np.int64),
        category=np.array([r[2] for r in ordered], dtype=object),
        language=np.array([r[3] for r in ordered], dtype=object),
        set_names={r[0]: r[1] for r in ordered},
    )


def _answer_text(shown: str, followups: Any) -> str:
    """Everything the evaluator read from one side: the first reply and the follow-ups."""
    parts = [shown]
    if isinstance(followups, list):
        parts += [str(f.get("shown", "")) for f in followups if isinstance(f, dict)]
    return "\n\n".join(parts)


def _answers(rows: Iterable[tuple[int, int, int, str, Any]]) -> _Answers:
    found = sorted(
        (pk, question, contestant, style_features(_answer_text(shown, followups)))
        for pk, question, contestant, shown, followups in rows
    )
    return _Answers(
        id=np.array([r[0] for r in found], dtype=np.int64),
        question=np.array([r[1] for r in found], dtype=np.int64),
        contestant=np.array([r[2] for r in found], dtype=np.int64),
        features=np.array([r[3] for r in found], dtype=np.float64).reshape(-1, len(STYLE_FEATURES)),
    )


_ANSWER_FIELDS = ("id", "question_id", "contestant_id", "shown_text", "followups")


def _read_answers(question_ids: IntArray, contestant_ids: IntArray) -> _Answers:
    """Every answer of these contestants to these questions."""
    contestants = contestant_ids.tolist()
    rows: list[tuple[int, int, int, str, Any]] = []
    for chunk in _chunks(question_ids):
        rows += Answer.objects.filter(
            question_id__in=chunk, contestant_id__in=contestants
        ).values_list(*_ANSWER_FIELDS)
    return _answers(rows)


def _with_answers(answers: _Answers, answer_ids: IntArray) -> _Answers:
    """``answers`` plus any of ``answer_ids`` it lacks (an answer to another question)."""
    missing = np.setdiff1d(answer_ids, answers.id)
    if missing.size == 0:
        return answers
    extra = _answers(Answer.objects.filter(pk__in=missing.tolist()).values_list(*_ANSWER_FIELDS))
    order = np.argsort(np.concatenate([answers.id, extra.id]))
    return _Answers(
        id=np.concatenate([answers.id, extra.id])[order],
        question=np.concatenate([answers.question, extra.question])[order],
        contestant=np.concatenate([answers.contestant, extra.contestant])[order],
        features=np.concatenate([answers.features, extra.features])[order],
    )


def _read_ordered(
    campaign_id: int, last_vote_id: int, contestant_ids: IntArray, question_ids: IntArray
) -> _Ordered:
    """Contestants, question and outcome code of every vote in (created_at, id) order."""
    if connection.vendor == "postgresql":
        data = _fetch_packed(campaign_id, last_vote_id)
    else:  # SQLite, the zero-setup `make run`: small campaigns, plain rows are fine
        rows = (
            Vote.objects.filter(campaign_id=campaign_id, id__lte=last_vote_id)
            .order_by("created_at", "id")
            .annotate(code=_outcome_code())
            .values_list("contestant_a_id", "contestant_b_id", "question_id", "code")
        )
        data = np.array(list(rows), dtype=np.int64).reshape(-1, 4)
    return _Ordered(
        ia=np.searchsorted(contestant_ids, data[:, 0]),
        ib=np.searchsorted(contestant_ids, data[:, 1]),
        question=np.searchsorted(question_ids, data[:, 2]),
        outcome=data[:, 3].copy(),
    )


_PACKED = np.dtype([("a", ">i8"), ("b", ">i8"), ("q", ">i8"), ("o", ">i2")])


def _fetch_packed(campaign_id: int, last_vote_id: int) -> IntArray:
    """PostgreSQL packs the four numbers of each vote into one bytea in vote order, fetched in
    binary: 1.7 M votes arrive as one 43 MB value in about a second, where as many Python tuples
    take twice as long (and the text protocol's hex encoding of the bytea nearly as long)."""
    codes = " ".join(f"WHEN '{value}' THEN {code}" for value, code in OUTCOME_CODES.items())
    table = Vote._meta.db_table
    # Only constants are formatted in: the outcome codes above and the model's table name.
    sql = (
        "SELECT string_agg(int8send(contestant_a_id) || int8send(contestant_b_id)"  # noqa: S608
        f" || int8send(question_id) || int2send((CASE outcome {codes} END)::int2),"
        f" ''::bytea ORDER BY created_at, id) FROM {table} WHERE campaign_id = %s AND id <= %s"
    )
    connection.ensure_connection()
    # Django's psycopg cursors bind parameters client-side, which rules out binary results.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql.encode(), [campaign_id, last_vote_id], binary=True)
        row = cursor.fetchone()
    records = np.frombuffer(row[0] if row and row[0] else b"", dtype=_PACKED)
    return np.column_stack([records[name].astype(np.int64) for name in ("a", "b", "q", "o")])


# Rating one scope ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slice:
    kind: ScopeKind
    value: str
    label: str
    weight: IntArray  # votes of each group that fall in this slice
    in_order: npt.NDArray[np.bool_]  # which of the ordered votes fall in it

    @property
    def votes(self) -> int:
        return int(self.weight.sum())


def _slices(data: _Votes) -> list[_Slice]:
    """The campaign, then each question set, category and language, then the date ranges."""
    groups, questions, ordered = data.groups, data.questions, data.ordered
    result = [_Slice("campaign", "", "", groups.count, np.ones(ordered.ia.size, dtype=np.bool_))]
    keys: list[tuple[ScopeKind, npt.NDArray[Any]]] = [
        ("set", questions.question_set),
        ("category", questions.category),
        ("language", questions.language),
    ]
    for kind, per_question in keys:
        for value in sorted({v for v in per_question.tolist() if v != ""}, key=str):
            chosen = per_question == value
            label = questions.set_names.get(value, "") if kind == "set" else str(value)
            weight = np.where(chosen[groups.question], groups.count, 0)
            result.append(_Slice(kind, str(value), label, weight, chosen[ordered.question]))
    for days in DATE_RANGES:
        recent = groups.recent[days]
        # Votes are ordered by time, so those of the last `days` days are a suffix of them.
        tail = np.zeros(ordered.ia.size, dtype=np.bool_)
        tail[ordered.ia.size - int(recent.sum()) :] = True
        result.append(_Slice("days", str(days), str(days), recent, tail))
    return result


def _cells(ia: IntArray, ib: IntArray, outcome: IntArray, weight: IntArray, n: int) -> Cells:
    """Cells from rows the database already counted (several rows may share a cell)."""
    keys = (ia * n + ib) * len(Outcome) + outcome
    present, inverse = np.unique(keys, return_inverse=True)
    count = np.bincount(inverse.reshape(-1), weights=weight, minlength=present.size)
    pair, code = np.divmod(present, len(Outcome))
    i, j = np.divmod(pair, max(n, 1))
    return Cells(
        n_models=n,
        i=i.astype(np.int64),
        j=j.astype(np.int64),
        outcome=code.astype(np.int64),
        count=np.rint(count).astype(np.int64),
        sided=True,
    )


@dataclass(frozen=True)
class _Settings:
    rounds: int
    drop_both_bad: bool
    anchor: tuple[str, float] | None


def _rate(data: _Votes, piece: _Slice, how: _Settings) -> dict[str, Any]:
    """The raw leaderboard (with online Elo) and the style-controlled ratings of one slice."""
    groups, ordered = data.groups, data.ordered
    keep = piece.weight > 0
    ia, ib, outcome, weight = (
        groups.ia[keep],
        groups.ib[keep],
        groups.outcome[keep],
        piece.weight[keep],
    )
    present = np.unique(np.concatenate([ia, ib]))
    local = np.full(len(data.names), -1, dtype=np.int64)
    local[present] = np.arange(present.size)
    names = [data.names[k] for k in present.tolist()]
    cells = _cells(local[ia], local[ib], outcome, weight, present.size)
    elo = elo_online(
        local[ordered.ia[piece.in_order]],
        local[ordered.ib[piece.in_order]],
        ordered.outcome[piece.in_order],
        present.size,
        drop_both_bad=how.drop_both_bad,
    )
    board = leaderboard(
        cells,
        names,
        rounds=how.rounds,
        seed=BOOTSTRAP_SEED,
        anchor=how.anchor,
        drop_both_bad=how.drop_both_bad,
        min_votes=MIN_VOTES,
        online_elo=elo,
    )
    style = None
    shown = list(board.names)
    if len(shown) >= 2 and board.votes > 0:
        style = _style(data, keep, piece.weight, shown, how)
    return {"leaderboard": board.to_json(), "style": style}


def _style(
    data: _Votes,
    keep: npt.NDArray[np.bool_],
    weight: IntArray,
    shown: Sequence[str],
    how: _Settings,
) -> dict[str, Any]:
    """Style-controlled ratings over the shown contestants' votes, from the counted groups
    (each row weighted by its vote count); the answers' features were computed once."""
    groups, answers = data.groups, data.answers
    index = {name: k for k, name in enumerate(shown)}
    position = np.array([index.get(data.names[k], -1) for k in range(len(data.names))])
    ia, ib = position[groups.ia], position[groups.ib]
    rows = keep & (ia >= 0) & (ib >= 0)
    anchor = how.anchor if how.anchor is not None and how.anchor[0] in index else None
    result = style_control(
        ia[rows],
        ib[rows],
        groups.outcome[rows],
        answers.features[groups.answer_a[rows]],
        answers.features[groups.answer_b[rows]],
        shown,
        counts=weight[rows],
        drop_both_bad=how.drop_both_bad,
        anchor=anchor,
    )
    return result.to_json()


# Storing and announcing ----------------------------------------------------------------------


@dataclass(frozen=True)
class RecomputeResult:
    """What a recompute stored: ``written`` is False when a newer snapshot was already there."""

    campaign_id: int
    scopes: list[str]
    vote_count: int
    computed_at: dt.datetime
    seconds: float
    written: bool
    timings: dict[str, float] = field(default_factory=dict)


def _settings_for(campaign: Campaign) -> _Settings:
    anchor = None
    if campaign.baseline is not None:
        anchor = (campaign.baseline.name, float(campaign.baseline_rating))
    return _Settings(
        rounds=int(settings.ARENA_BOOTSTRAP_ROUNDS),
        drop_both_bad=campaign.both_bad == Campaign.BothBad.DROP,
        anchor=anchor,
    )


def _common(campaign: Campaign, how: _Settings, computed_at: dt.datetime) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "campaign": {"id": campaign.pk, "slug": campaign.slug, "name": campaign.name},
        "computed_at": computed_at.isoformat(),
        "min_votes": MIN_VOTES,
        "both_bad": campaign.both_bad,
        "baseline": None
        if how.anchor is None
        else {"name": how.anchor[0], "rating": how.anchor[1]},
        "rounds": how.rounds,
    }


def _payloads(
    campaign: Campaign,
    data: _Votes | None,
    how: _Settings,
    computed_at: dt.datetime,
    timings: dict[str, float],
) -> list[tuple[str, int, dict[str, Any]]]:
    """(scope, votes, payload) per scope, the campaign's own first; seconds per rated scope
    go into ``timings``."""
    common = _common(campaign, how, computed_at)
    main_key = campaign_scope(campaign.pk)
    if data is None:
        payload = {
            **common,
            "scope": main_key,
            "kind": "campaign",
            "value": "",
            "label": "",
            "status": "no_votes",
            "vote_count": 0,
            "last_vote_id": None,
            "same_as_campaign": True,
            "leaderboard": None,
            "style": None,
            "scopes": [
                {"scope": main_key, "kind": "campaign", "value": "", "label": "", "votes": 0}
            ],
        }
        return [(main_key, 0, payload)]
    out: list[tuple[str, int, dict[str, Any]]] = []
    campaign_result: dict[str, Any] | None = None
    for piece in _slices(data):
        key = scope_key(campaign.pk, piece.kind, piece.value)
        # A slice holding every vote is the campaign itself: same votes, same order, same seed.
        same = piece.votes == data.total
        if piece.votes == 0:
            continue
        if same and campaign_result is not None:
            result = campaign_result
        else:
            started = time.perf_counter()
            result = _rate(data, piece, how)
            timings[key] = time.perf_counter() - started
            if piece.kind == "campaign":
                campaign_result = result
        out.append(
            (
                key,
                piece.votes,
                {
                    **common,
                    "scope": key,
                    "kind": piece.kind,
                    "value": piece.value,
                    "label": piece.label,
                    "status": "ok",
                    "vote_count": piece.votes,
                    "same_as_campaign": same,
                    **result,
                },
            )
        )
    index = [
        {
            "scope": key,
            "kind": payload["kind"],
            "value": payload["value"],
            "label": payload["label"],
            "votes": votes,
        }
        for key, votes, payload in out
    ]
    out[0][2]["scopes"] = index
    out[0][2]["last_vote_id"] = data.last_vote_id
    return out


def ratings_recompute(*, campaign_id: int) -> RecomputeResult:
    """Recompute every scope of one campaign and replace its snapshots in one transaction.

    Reads only aggregated rows (see the module docstring). If another recompute stored a
    snapshot of later votes meanwhile, nothing is written. After commit a
    ``leaderboard.updated`` event goes to `leaderboard_group`.
    """
    started = time.perf_counter()
    campaign = Campaign.objects.select_related("baseline").get(pk=campaign_id)
    how = _settings_for(campaign)
    now = timezone.now()
    with transaction.atomic():  # one transaction, so the session settings apply to all reads
        data = _read_votes(campaign_id, now=now)
    read = time.perf_counter()
    timings: dict[str, float] = {}
    payloads = _payloads(campaign, data, how, now, timings)
    rated = time.perf_counter()
    written = _store(campaign_id, payloads, started=now)
    done = time.perf_counter()
    return RecomputeResult(
        campaign_id=campaign_id,
        scopes=[key for key, _votes, _payload in payloads],
        vote_count=data.total if data else 0,
        computed_at=now,
        seconds=done - started,
        written=written,
        timings={"read": read - started, "rate": rated - read, "store": done - rated, **timings},
    )


def _store(
    campaign_id: int, payloads: list[tuple[str, int, dict[str, Any]]], *, started: dt.datetime
) -> bool:
    main_key = campaign_scope(campaign_id)
    with transaction.atomic():
        # Serialise writers of one campaign; the compute above ran without any lock.
        Campaign.objects.select_for_update().filter(pk=campaign_id).values_list("pk").first()
        current = (
            RatingSnapshot.objects.filter(campaign_id=campaign_id, scope=main_key)
            .order_by("-computed_at", "-id")
            .values_list("payload", flat=True)
            .first()
        )
        # A run that started later read at least the votes this one read: keep its figures.
        stored = current.get("computed_at") if isinstance(current, dict) else None
        if isinstance(stored, str) and dt.datetime.fromisoformat(stored) > started:
            return False
        # Pages read only the latest snapshot of a scope, so older ones are dropped here.
        RatingSnapshot.objects.filter(campaign_id=campaign_id).delete()
        snapshots = RatingSnapshot.objects.bulk_create(
            RatingSnapshot(scope=key, campaign_id=campaign_id, vote_count=votes, payload=payload)
            for key, votes, payload in payloads
        )
        computed_at = snapshots[0].computed_at
        transaction.on_commit(
            lambda: leaderboard_notify(
                campaign_id=campaign_id, scope=main_key, computed_at=computed_at
            )
        )
    return True


def leaderboard_notify(*, campaign_id: int, scope: str, computed_at: dt.datetime) -> None:
    """Tell open leaderboard pages that new snapshots exist. Best effort: a page that misses
    the event shows the new figures on its next load."""
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"type": "leaderboard.updated", "scope": scope, "computed_at": computed_at.isoformat()}
    try:
        async_to_sync(layer.group_send)(leaderboard_group(campaign_id), event)
    except (redis.RedisError, OSError):
        logger.warning("leaderboard event for campaign %s not sent: Redis unreachable", campaign_id)


def _is_stale(campaign_id: int) -> bool:
    snapshot = (
        RatingSnapshot.objects.filter(campaign_id=campaign_id, scope=campaign_scope(campaign_id))
        .order_by("-computed_at", "-id")
        .only("vote_count", "payload", "computed_at")
        .first()
    )
    if snapshot is None:
        return True
    votes = Vote.objects.filter(campaign_id=campaign_id).aggregate(
        n=Count("id"), last=Max("id"), newest=Max("created_at")
    )
    # Ids catch imported votes (whose created_at lies in the past), the count catches deletions.
    return (
        votes["n"] != snapshot.vote_count
        or (votes["last"] or None) != snapshot.payload.get("last_vote_id")
        or (votes["newest"] is not None and votes["newest"] > snapshot.computed_at)
    )


def ratings_recompute_all() -> list[RecomputeResult]:
    """Recompute each active campaign whose votes changed since its latest snapshot (or that has
    none): a vote newer than the snapshot, a vote id past the last one it counted, or a
    different number of votes."""
    campaign_ids: Iterable[int] = Campaign.objects.filter(active=True).values_list("pk", flat=True)
    return [ratings_recompute(campaign_id=pk) for pk in list(campaign_ids) if _is_stale(pk)]
