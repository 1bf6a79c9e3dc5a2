"""Every database statement of the ratings: count a campaign's votes, read the answers and
questions they name, store and replace snapshots, and tell whether a snapshot is stale.

Cost of a read: one GROUP BY over the campaign's votes (per answer pair and outcome, with the
recent counts as filtered aggregates), one read of the answers those rows name, and one ordered
read of four integers per vote for online Elo. No vote row is ever turned into a Python object.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from django.db import connection, transaction
from django.db.models import Case, Count, IntegerField, Max, Q, QuerySet, Value, When

from arena.models import Answer, Campaign, Contestant, Question, RatingSnapshot, Vote
from arena.ranking import STYLE_FEATURES, Outcome, style_features
from arena.ratings.snapshot import Snapshot, SnapshotError, campaign_scope

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

DATE_RANGES = (7, 30)
OUTCOME_CODES = {
    Vote.Outcome.A: int(Outcome.A_WINS),
    Vote.Outcome.B: int(Outcome.B_WINS),
    Vote.Outcome.TIE: int(Outcome.TIE),
    Vote.Outcome.BOTH_BAD: int(Outcome.BOTH_BAD),
}
_CHUNK = 5000
WORK_MEM = "256MB"


# What the reads return -----------------------------------------------------------------------


@dataclass(frozen=True)
class Questions:
    """The questions voted on (sorted by id) and their slice keys."""

    id: IntArray
    question_set: IntArray
    category: npt.NDArray[np.object_]
    language: npt.NDArray[np.object_]
    set_names: dict[int, str]


@dataclass(frozen=True)
class Answers:
    """Answers that may have been shown in the campaign's battles (sorted by id), with their
    style features, computed once per answer."""

    id: IntArray
    question: IntArray
    contestant: IntArray
    features: FloatArray  # (answers, len(STYLE_FEATURES))


@dataclass(frozen=True)
class Groups:
    """Votes as the database counted them, one row per (question, contestant a, contestant b,
    answer a, answer b, outcome) present; contestants, questions and answers are positions in
    `Votes.names`, `Questions` and `Answers`."""

    ia: IntArray
    ib: IntArray
    outcome: IntArray
    count: IntArray
    recent: dict[int, IntArray]  # days -> how many of those votes are of the last `days` days
    question: IntArray
    answer_a: IntArray
    answer_b: IntArray


@dataclass(frozen=True)
class Ordered:
    """Contestant and question positions and outcome codes per vote, in vote order."""

    ia: IntArray
    ib: IntArray
    outcome: IntArray
    question: IntArray


@dataclass(frozen=True)
class Votes:
    names: list[str]
    questions: Questions
    answers: Answers
    groups: Groups
    ordered: Ordered
    total: int
    last_vote_id: int


# Campaigns -----------------------------------------------------------------------------------


def rating_campaign_get(*, campaign_id: int) -> Campaign:
    """The campaign with its baseline contestant (DoesNotExist if there is none)."""
    return Campaign.objects.select_related("baseline").get(pk=campaign_id)


def active_campaign_ids() -> list[int]:
    return list(Campaign.objects.filter(active=True).values_list("pk", flat=True))


# Reading the votes ---------------------------------------------------------------------------


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


# Which votes a campaign's ratings count, written once in both forms: all of them, or (the
# default, Campaign.tainted_votes) all but those on battles whose answer named a model.
_COUNTED_SQL = {False: "", True: " AND NOT tainted"}


def counted_votes(*, campaign_id: int, exclude_tainted: bool) -> QuerySet[Vote]:
    """The campaign's votes its ratings count (`_COUNTED_SQL` is the same rule in SQL)."""
    votes = Vote.objects.filter(campaign_id=campaign_id)
    return votes.filter(tainted=False) if exclude_tainted else votes


def tainted_excluded(*, campaign_id: int, last_vote_id: int | None) -> int:
    """How many of the campaign's votes up to ``last_vote_id`` (all, for None) are tainted."""
    votes = Vote.objects.filter(campaign_id=campaign_id, tainted=True)
    if last_vote_id is not None:
        votes = votes.filter(id__lte=last_vote_id)
    return votes.count()


def votes_read(*, campaign_id: int, now: dt.datetime, exclude_tainted: bool) -> Votes | None:
    """Everything the ratings need, counted by the database (None without votes). Votes are
    grouped by question and contestants, which the vote carries itself; only on questions
    where a contestant has more than one answer (its settings changed) does the count join the
    battles to learn which answer each side showed. Call it inside a transaction, so that the
    session settings of `_tune_session` apply to all its reads. ``exclude_tainted``: count
    only untainted votes (`counted_votes`)."""
    votes = counted_votes(campaign_id=campaign_id, exclude_tainted=exclude_tainted)
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
    groups = Groups(
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
    ordered = _read_ordered(
        campaign_id, int(last_vote_id), contestant_ids, questions.id, exclude_tainted
    )
    return Votes(
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


def _read_questions(question_ids: IntArray) -> Questions:
    found: dict[int, tuple[int, str, str, str]] = {}
    for chunk in _chunks(question_ids):
        rows = Question.objects.filter(pk__in=chunk).values_list(
            "id", "question_set_id", "question_set__name", "category", "language"
        )
        found.update({pk: (qset, name, cat, lang) for pk, qset, name, cat, lang in rows})
    ordered = [found[pk] for pk in question_ids.tolist()]
    return Questions(
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


def _answers(rows: Iterable[tuple[int, int, int, str, Any]]) -> Answers:
    found = sorted(
        (pk, question, contestant, style_features(_answer_text(shown, followups)))
        for pk, question, contestant, shown, followups in rows
    )
    return Answers(
        id=np.array([r[0] for r in found], dtype=np.int64),
        question=np.array([r[1] for r in found], dtype=np.int64),
        contestant=np.array([r[2] for r in found], dtype=np.int64),
        features=np.array([r[3] for r in found], dtype=np.float64).reshape(-1, len(STYLE_FEATURES)),
    )


_ANSWER_FIELDS = ("id", "question_id", "contestant_id", "shown_text", "followups")


def _read_answers(question_ids: IntArray, contestant_ids: IntArray) -> Answers:
    """Every answer of these contestants to these questions."""
    contestants = contestant_ids.tolist()
    rows: list[tuple[int, int, int, str, Any]] = []
    for chunk in _chunks(question_ids):
        rows += Answer.objects.filter(
            question_id__in=chunk, contestant_id__in=contestants
        ).values_list(*_ANSWER_FIELDS)
    return _answers(rows)


def _with_answers(answers: Answers, answer_ids: IntArray) -> Answers:
    """``answers`` plus any of ``answer_ids`` it lacks (an answer to another question)."""
    missing = np.setdiff1d(answer_ids, answers.id)
    if missing.size == 0:
        return answers
    extra = _answers(Answer.objects.filter(pk__in=missing.tolist()).values_list(*_ANSWER_FIELDS))
    order = np.argsort(np.concatenate([answers.id, extra.id]))
    return Answers(
        id=np.concatenate([answers.id, extra.id])[order],
        question=np.concatenate([answers.question, extra.question])[order],
        contestant=np.concatenate([answers.contestant, extra.contestant])[order],
        features=np.concatenate([answers.features, extra.features])[order],
    )


def _read_ordered(
    campaign_id: int,
    last_vote_id: int,
    contestant_ids: IntArray,
    question_ids: IntArray,
    exclude_tainted: bool,
) -> Ordered:
    """Contestants, question and outcome code of every vote in (created_at, id) order."""
    if connection.vendor == "postgresql":
        data = _fetch_packed(campaign_id, last_vote_id, exclude_tainted)
    else:  # SQLite, the zero-setup `make run`: small campaigns, plain rows are fine
        rows = (
            counted_votes(campaign_id=campaign_id, exclude_tainted=exclude_tainted)
            .filter(id__lte=last_vote_id)
            .order_by("created_at", "id")
            .annotate(code=_outcome_code())
            .values_list("contestant_a_id", "contestant_b_id", "question_id", "code")
        )
        data = np.array(list(rows), dtype=np.int64).reshape(-1, 4)
    return Ordered(
        ia=np.searchsorted(contestant_ids, data[:, 0]),
        ib=np.searchsorted(contestant_ids, data[:, 1]),
        question=np.searchsorted(question_ids, data[:, 2]),
        outcome=data[:, 3].copy(),
    )


_PACKED = np.dtype([("a", ">i8"), ("b", ">i8"), ("q", ">i8"), ("o", ">i2")])


def _fetch_packed(campaign_id: int, last_vote_id: int, exclude_tainted: bool) -> IntArray:
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
        f"{_COUNTED_SQL[exclude_tainted]}"
    )
    connection.ensure_connection()
    # Django's psycopg cursors bind parameters client-side, which rules out binary results.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql.encode(), [campaign_id, last_vote_id], binary=True)
        row = cursor.fetchone()
    records = np.frombuffer(row[0] if row and row[0] else b"", dtype=_PACKED)
    return np.column_stack([records[name].astype(np.int64) for name in ("a", "b", "q", "o")])


# Snapshots -----------------------------------------------------------------------------------


def _computed_at(payload: Any) -> dt.datetime | None:
    """When the stored payload's recompute started; None for one this schema cannot read
    (which any new recompute may then replace)."""
    try:
        return Snapshot.from_json(payload).computed_at
    except SnapshotError:
        return None


def snapshots_replace(
    *, campaign_id: int, snapshots: Sequence[Snapshot], started: dt.datetime
) -> dt.datetime | None:
    """Replace every snapshot of the campaign with ``snapshots`` (the campaign's own first),
    unless a recompute that started after ``started`` already stored its figures. Returns
    the stored rows' ``computed_at``, or None when nothing was written."""
    main_key = campaign_scope(campaign_id)
    with transaction.atomic():
        # Serialise writers of one campaign; the compute before this ran without any lock.
        Campaign.objects.select_for_update().filter(pk=campaign_id).values_list("pk").first()
        current = (
            RatingSnapshot.objects.filter(campaign_id=campaign_id, scope=main_key)
            .order_by("-computed_at", "-id")
            .values_list("payload", flat=True)
            .first()
        )
        # A run that started later read at least the votes this one read: keep its figures.
        stored = None if current is None else _computed_at(current)
        if stored is not None and stored > started:
            return None
        # Pages read only the latest snapshot of a scope, so older ones are dropped here.
        RatingSnapshot.objects.filter(campaign_id=campaign_id).delete()
        rows = RatingSnapshot.objects.bulk_create(
            RatingSnapshot(
                scope=s.scope, campaign_id=campaign_id, vote_count=s.vote_count, payload=s.to_json()
            )
            for s in snapshots
        )
    return rows[0].computed_at


def snapshot_is_stale(*, campaign_id: int) -> bool:
    """Whether the campaign's votes changed since its latest snapshot (or it has none, or one
    of another schema): a vote newer than the snapshot, a vote id past the last one it
    counted, or a different number of votes."""
    snapshot = (
        RatingSnapshot.objects.filter(campaign_id=campaign_id, scope=campaign_scope(campaign_id))
        .order_by("-computed_at", "-id")
        .only("vote_count", "payload", "computed_at")
        .first()
    )
    if snapshot is None:
        return True
    try:
        last_counted = Snapshot.from_json(snapshot.payload).last_vote_id
    except SnapshotError:
        return True
    policy = Campaign.objects.filter(pk=campaign_id).values_list("tainted_votes", flat=True)
    exclude = policy.first() == Campaign.TaintedVotes.EXCLUDE
    votes = counted_votes(campaign_id=campaign_id, exclude_tainted=exclude).aggregate(
        n=Count("id"), last=Max("id")
    )
    # Any vote, counted or not, changes the snapshot (a tainted one changes what it excluded).
    newest = Vote.objects.filter(campaign_id=campaign_id).aggregate(newest=Max("created_at"))
    # Ids catch imported votes (whose created_at lies in the past), the count catches deletions.
    return (
        votes["n"] != snapshot.vote_count
        or (votes["last"] or None) != last_counted
        or (newest["newest"] is not None and newest["newest"] > snapshot.computed_at)
    )
