"""Every database statement of the ratings: count a campaign's votes, read the answers and
questions they name, store and replace snapshots, and tell whether a snapshot is stale.

Cost of a read on PostgreSQL: one scan of the campaign's counted votes packed in binary
(`_scan_rows`), grouped and ordered in numpy, then one read of the answers and questions they
name. A rating worker keeps the scan (`ARENA_KEPT_VOTES`): its next recompute checks in one
aggregate that the kept votes are unchanged and reads only the votes after them. SQLite (the
zero-setup `make run`) counts with a GROUP BY and reads the vote order as rows. No vote row is
ever turned into a Python object on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    IntegerField,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from arena.models import (
    Answer,
    Battle,
    Campaign,
    Contestant,
    EvaluatorProfile,
    Exclusion,
    Question,
    RatingSnapshot,
    Vote,
)
from arena.ranking import STYLE_FEATURES, Outcome, style_features
from arena.ratings.history import history_keep
from arena.ratings.snapshot import (
    SCHEMA,
    ExclusionEntry,
    ExclusionSet,
    Snapshot,
    campaign_scope,
    dump_shared,
)

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
    # Mean weight per vote of each row (inverse-propensity times expert weight); None: all 1.
    weight: FloatArray | None = None


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
# default, Campaign.tainted_votes) all but those on battles whose answer named a model; never
# a control vote (gold and repeat battles); and, unless ``include_excluded`` (the leaderboard's
# "everything" view), none that an active exclusion covers (Vote.excluded, kept in step with
# the Exclusion rows by `votes_exclusion_sync`).
_COUNTED_SQL = {False: "", True: " AND NOT tainted"}
_QUALITY_SQL = {False: " AND NOT control AND NOT excluded", True: " AND NOT control"}


def counted_votes(
    *, campaign_id: int, exclude_tainted: bool, include_excluded: bool = False
) -> QuerySet[Vote]:
    """The campaign's votes its ratings count (`_COUNTED_SQL` and `_QUALITY_SQL` are the same
    rule in SQL)."""
    votes = Vote.objects.filter(campaign_id=campaign_id, control=False)
    if not include_excluded:
        votes = votes.filter(excluded=False)
    return votes.filter(tainted=False) if exclude_tainted else votes


def votes_exclusion_sync(*, campaign_id: int) -> int:
    """Mark exactly the campaign's votes that an active exclusion covers as excluded (every vote
    of an excluded user or session, and the chosen votes of vote exclusions); returns how many
    votes changed. Exclusions decided earlier also cover an excluded evaluator's later votes:
    every recompute runs this first."""
    active = Exclusion.objects.filter(campaign_id=campaign_id, revoked_at__isnull=True)
    votes = Vote.objects.filter(campaign_id=campaign_id)
    if not active.exists():
        # The common case, answered from two indexes without reading the campaign's votes.
        return votes.filter(excluded=True).update(excluded=False)
    whole = active.filter(votes__isnull=True)
    users = whole.filter(evaluator__isnull=False).values("evaluator_id")
    sessions = whole.filter(evaluator__isnull=True).exclude(session_key="").values("session_key")
    chosen = Exclusion.votes.through.objects.filter(
        exclusion__campaign_id=campaign_id, exclusion__revoked_at__isnull=True
    ).values("vote_id")
    covered = (
        Q(evaluator_id__in=users)
        | Q(evaluator__isnull=True, battle__session_key__in=sessions)
        | Q(pk__in=chosen)
    )
    marked = votes.filter(covered, excluded=False).update(excluded=True)
    return marked + votes.filter(excluded=True).exclude(covered).update(excluded=False)


def tainted_excluded(*, campaign_id: int, last_vote_id: int | None) -> int:
    """How many of the campaign's votes up to ``last_vote_id`` (all, for None) are tainted."""
    votes = Vote.objects.filter(campaign_id=campaign_id, tainted=True, control=False)
    if last_vote_id is not None:
        votes = votes.filter(id__lte=last_vote_id)
    return votes.count()


def exclusion_set_read(
    *, campaign_id: int, exclude_tainted: bool, last_vote_id: int | None = None
) -> ExclusionSet | None:
    """What exclusions leave out of the campaign's ratings (votes up to ``last_vote_id``, all
    for None): votes that would otherwise count, from how many evaluators, and every active
    exclusion with the votes it covers. None when nothing is left out."""
    everything = counted_votes(
        campaign_id=campaign_id, exclude_tainted=exclude_tainted, include_excluded=True
    )
    if last_vote_id is not None:
        everything = everything.filter(id__lte=last_vote_id)
    left_out = everything.filter(excluded=True)
    totals = left_out.aggregate(
        votes=Count("id"),
        users=Count("evaluator", distinct=True),
        sessions=Count("battle__session_key", distinct=True, filter=Q(evaluator__isnull=True)),
    )
    if not totals["votes"]:
        return None
    entries = []
    active = Exclusion.objects.filter(campaign_id=campaign_id, revoked_at__isnull=True)
    for row in active.order_by("created_at", "id").annotate(chosen=Count("votes")):
        if row.chosen:
            covered = left_out.filter(exclusions=row)
        elif row.evaluator_id is not None:
            covered = left_out.filter(evaluator_id=row.evaluator_id)
        else:
            covered = left_out.filter(evaluator__isnull=True, battle__session_key=row.session_key)
        entries.append(
            ExclusionEntry(
                id=row.pk,
                rule=row.rule,
                reason=row.reason,
                evaluator=not row.chosen,
                votes=covered.count(),
            )
        )
    return ExclusionSet(
        votes=int(totals["votes"]),
        evaluators=int(totals["users"]) + int(totals["sessions"]),
        exclusions=tuple(entries),
    )


def votes_read(
    *,
    campaign_id: int,
    now: dt.datetime,
    exclude_tainted: bool,
    include_excluded: bool = False,
    weights: VoteWeights | None = None,
) -> Votes | None:
    """Everything the ratings need, counted by the database (None without votes). Votes are
    grouped by question and contestants, which the vote carries itself; only on questions
    where a contestant has more than one answer (its settings changed) does the count join the
    battles to learn which answer each side showed. Call it inside a transaction, so that the
    session settings of `_tune_session` apply to all its reads. ``exclude_tainted``: count
    only untainted votes; ``include_excluded``: count excluded votes too (`counted_votes`).
    ``weights``: also read each row's mean vote weight (`vote_weights`: active sampling,
    expert votes)."""
    votes = counted_votes(
        campaign_id=campaign_id,
        exclude_tainted=exclude_tainted,
        include_excluded=include_excluded,
    )
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
    scanned: IntArray | None = None
    if connection.vendor == "postgresql":
        # One scan of the votes gives both the counts and the vote order (`_scan`).
        scanned, table = _scan(
            campaign_id, int(last_vote_id), now, exclude_tainted, include_excluded
        )
    else:
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
    mean_weight = None if weights is None else _row_weights(votes, rows, weights)
    names_by_id = dict(
        Contestant.objects.filter(pk__in=contestant_ids.tolist()).values_list("id", "name")
    )
    # Contestants are numbered in name order, not id order: the ratings (the bootstrap's
    # draws follow the order of the cells) are then a function of the votes by name alone, so
    # `manage.py rate_file` re-derives them from an exported file, ids unknown.
    by_name = sorted(range(contestant_ids.size), key=lambda k: names_by_id[int(contestant_ids[k])])
    position = np.empty(contestant_ids.size, dtype=np.int64)
    position[by_name] = np.arange(contestant_ids.size)
    groups = Groups(
        ia=position[np.searchsorted(contestant_ids, rows[:, 1])],
        ib=position[np.searchsorted(contestant_ids, rows[:, 2])],
        outcome=rows[:, 3].copy(),
        count=rows[:, 4].copy(),
        recent={days: rows[:, 5 + k].copy() for k, days in enumerate(DATE_RANGES)},
        question=np.searchsorted(questions.id, rows[:, 0]),
        answer_a=np.searchsorted(answers.id, ids_a),
        answer_b=np.searchsorted(answers.id, ids_b),
        weight=mean_weight,
    )
    ordered = _read_ordered(
        campaign_id,
        int(last_vote_id),
        contestant_ids,
        questions.id,
        exclude_tainted,
        include_excluded,
        scanned=scanned,
    )
    ordered = replace(ordered, ia=position[ordered.ia], ib=position[ordered.ib])
    return Votes(
        names=[names_by_id[int(contestant_ids[k])] for k in by_name],
        questions=questions,
        answers=answers,
        groups=groups,
        ordered=ordered,
        total=int(groups.count.sum()),
        last_vote_id=int(last_vote_id),
    )


@dataclass(frozen=True)
class VoteWeights:
    """How much one vote counts: its battle's inverse-propensity weight
    (`Battle.sampling_weight`, 1 when not actively sampled), times ``expert`` when the voter's
    skills hold the question's category (``experts``: category -> user ids)."""

    expert: float
    experts: dict[str, frozenset[int]]


def vote_weights(*, campaign: Campaign) -> VoteWeights | None:
    """The campaign's vote weights, or None when every vote weighs 1 (no battle was actively
    sampled and experts count once)."""
    sampled = Battle.objects.filter(campaign_id=campaign.pk, sampling_weight__isnull=False)
    expert = float(campaign.expert_weight)
    if expert == 1.0 and not sampled.exists():
        return None
    experts: dict[str, set[int]] = {}
    if expert != 1.0:
        for user_id, skills in EvaluatorProfile.objects.values_list("user_id", "skills"):
            for skill in skills if isinstance(skills, list) else []:
                experts.setdefault(str(skill), set()).add(int(user_id))
    return VoteWeights(expert=expert, experts={k: frozenset(v) for k, v in experts.items()})


def vote_weight_expression(weights: VoteWeights) -> Any:
    """One vote's weight (`VoteWeights`) as an expression over `Vote` rows, for a Sum beside
    a GROUP BY's Count: the ratings' cells and the judge report's human board weigh votes by
    this one rule."""
    weight: Any = Coalesce(F("battle__sampling_weight"), Value(1.0), output_field=FloatField())
    if weights.experts:
        expert = Q()
        for skill, users in weights.experts.items():
            expert |= Q(question__category=skill, evaluator_id__in=sorted(users))
        weight = weight * Case(
            When(expert, then=Value(weights.expert)),
            default=Value(1.0),
            output_field=FloatField(),
        )
    return weight


def _row_weights(votes: QuerySet[Vote], rows: IntArray, weights: VoteWeights) -> FloatArray:
    """Mean vote weight of each counted row (question, contestant a, contestant b, outcome,
    ...): one more GROUP BY, summing the weights instead of counting."""
    weight = vote_weight_expression(weights)
    found = (
        votes.order_by()
        .annotate(code=_outcome_code())
        .values("question", "contestant_a", "contestant_b", "code")
        .annotate(total=Sum(weight), n=Count("id"))
        .values_list("question", "contestant_a", "contestant_b", "code", "total", "n")
    )
    mean = {(q, a, b, o): float(total) / n for q, a, b, o, total, n in found}
    return np.array([mean.get(tuple(k), 1.0) for k in rows[:, :4].tolist()], dtype=np.float64)


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
    include_excluded: bool = False,
    *,
    scanned: IntArray | None = None,
) -> Ordered:
    """Contestants, question and outcome code of every vote in (created_at, id) order
    (``scanned``: those columns as `_scan` already read them)."""
    if scanned is not None:
        data = scanned
    elif connection.vendor == "postgresql":
        data = _fetch_packed(campaign_id, last_vote_id, exclude_tainted, include_excluded)
    else:  # SQLite, the zero-setup `make run`: small campaigns, plain rows are fine
        rows = (
            counted_votes(
                campaign_id=campaign_id,
                exclude_tainted=exclude_tainted,
                include_excluded=include_excluded,
            )
            .filter(id__lte=last_vote_id)
            .order_by("created_at", "id")
            .annotate(code=_outcome_code())
            .values_list("contestant_a_id", "contestant_b_id", "question_id", "code")
        )
        data = np.array(list(rows), dtype=np.int64).reshape(-1, 4)
    return Ordered(
        ia=_positions(contestant_ids, data[:, 0]),
        ib=_positions(contestant_ids, data[:, 1]),
        question=_positions(question_ids, data[:, 2]),
        outcome=data[:, 3].copy(),
    )


def _positions(ids: IntArray, values: IntArray) -> IntArray:
    """Positions in the sorted ``ids`` of ``values`` (each one of them): by a lookup table
    where the ids are small enough (a pass over the votes, not a binary search per vote)."""
    if ids.size and values.size and int(ids[0]) >= 0 and int(ids[-1]) < max(1 << 24, values.size):
        table = np.zeros(int(ids[-1]) + 1, dtype=np.int64)
        table[ids] = np.arange(ids.size)
        result: IntArray = table[values]
        return result
    return np.searchsorted(ids, values)


_PACKED = np.dtype([("a", ">i8"), ("b", ">i8"), ("q", ">i8"), ("o", ">i2")])


def _fetch_packed(
    campaign_id: int, last_vote_id: int, exclude_tainted: bool, include_excluded: bool = False
) -> IntArray:
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
        f"{_COUNTED_SQL[exclude_tainted]}{_QUALITY_SQL[include_excluded]}"
    )
    connection.ensure_connection()
    # Django's psycopg cursors bind parameters client-side, which rules out binary results.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql.encode(), [campaign_id, last_vote_id], binary=True)
        row = cursor.fetchone()
    records = np.frombuffer(row[0] if row and row[0] else b"", dtype=_PACKED)
    return np.column_stack([records[name].astype(np.int64) for name in ("a", "b", "q", "o")])


_SCANNED = np.dtype(
    [
        ("q", ">i8"),
        ("a", ">i8"),
        ("b", ">i8"),
        ("o", ">i2"),
        ("t", ">i8"),
        ("id", ">i8"),
        ("h", ">i4"),
    ]
)
# timestamptz_send: microseconds since 2000-01-01 UTC.
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# A checksum of each vote a scan read, summed over the votes: its id and everything the scan
# reads of it. Equal count, id sum and checksum sum mean the same votes with the same content
# (a change that kept all three would need a 32-bit hash collision). XOR and shifts never
# overflow a bigint, which + and * on large ids could.
_CHECKSUM_SQL = (
    "hashint8(id # (question_id << 21) # (contestant_a_id << 42) # (contestant_b_id << 11)"
    " # hashtext(outcome)::bigint"
    " # (timestamp_hash(created_at AT TIME ZONE 'UTC')::bigint << 32))"
)


# A vote cast this long before a recompute is settled: its transaction has committed (or
# rolled back). A worker keeps only settled votes, so that a vote still in flight when it
# read (its id already taken, its commit a moment later) does not fail the next check.
KEPT_SETTLE = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class _Kept:
    """The counted votes of one campaign up to ``last_id`` as a scan read them, in vote
    order (read-only arrays), kept so that the next recompute reads only the votes after them
    (`_scan_rows`); ``count``, ``id_sum`` and ``checksum`` are those of `_CHECKSUM_SQL` over
    them, ``h`` each vote's checksum."""

    last_id: int
    count: int
    id_sum: int
    checksum: int
    q: IntArray
    a: IntArray
    b: IntArray
    o: IntArray
    t: IntArray
    ids: IntArray
    h: IntArray

    @property
    def rows(self) -> int:
        return int(self.ids.size)

    @property
    def columns(self) -> tuple[IntArray, ...]:
        return (self.q, self.a, self.b, self.o, self.t, self.ids, self.h)


_kept: OrderedDict[tuple[str, int, bool, bool], _Kept] = OrderedDict()
_kept_lock = threading.Lock()


def kept_scans_clear() -> None:
    """Forget every kept scan (tests; a process never needs to: each use is verified)."""
    with _kept_lock:
        _kept.clear()


def _keep(key: tuple[str, int, bool, bool], kept: _Kept) -> None:
    """Keep ``kept`` in place of the campaign's earlier scan, within `ARENA_KEPT_VOTES` votes
    in all (the least recently used scans go first)."""
    limit = int(settings.ARENA_KEPT_VOTES)
    with _kept_lock:
        _kept.pop(key, None)
        if kept.rows > limit:
            return
        _kept[key] = kept
        while sum(k.rows for k in _kept.values()) > limit:
            _kept.popitem(last=False)


def _kept_get(key: tuple[str, int, bool, bool]) -> _Kept | None:
    with _kept_lock:
        kept = _kept.get(key)
        if kept is not None:
            _kept.move_to_end(key)
        return kept


def _scan_sql(where: str, codes: str) -> str:
    """The packed scan of the votes ``where`` selects: each vote's question, contestants,
    outcome code, time, id and checksum (`_CHECKSUM_SQL`). Only constants are formatted in:
    the outcome codes, the model's table name and the counted-votes rule."""
    table = Vote._meta.db_table
    return (
        "SELECT string_agg(int8send(question_id) || int8send(contestant_a_id)"  # noqa: S608
        f" || int8send(contestant_b_id) || int2send((CASE outcome {codes} END)::int2)"
        f" || timestamptz_send(created_at) || int8send(id) || int4send({_CHECKSUM_SQL}),"
        f" ''::bytea) FROM {table} WHERE {where}"
    )


def _scan_rows(
    campaign_id: int,
    last_vote_id: int,
    now: dt.datetime,
    exclude_tainted: bool,
    include_excluded: bool,
) -> _Kept:
    """The counted votes up to ``last_vote_id`` in vote order, read whole once per process
    and then, at each recompute, only the votes after those it kept (`ARENA_KEPT_VOTES`).

    With a kept scan of the same campaign and rule, one statement checks that the votes up to
    its last id are still exactly the kept ones (count, id sum and checksum over them: a vote
    excluded, tainted, deleted or committed late under a lower id changes them) and reads the
    votes after it; one statement, so both see the same moment. If the check fails, every
    vote is read again. At 1.7 M votes the check takes about a third of a whole read (it
    aggregates in the database instead of sending 70 MB). What is kept for the next time is
    the votes up to the last one cast `KEPT_SETTLE` before ``now``."""
    codes = " ".join(f"WHEN '{value}' THEN {code}" for value, code in OUTCOME_CODES.items())
    rule = f"campaign_id = %s{_COUNTED_SQL[exclude_tainted]}{_QUALITY_SQL[include_excluded]}"
    key = (str(connection.settings_dict["NAME"]), campaign_id, exclude_tainted, include_excluded)
    kept = _kept_get(key)
    packed: bytes | None = None
    if kept is not None and kept.last_id <= last_vote_id:
        table = Vote._meta.db_table
        check = (
            f"SELECT count(*), coalesce(sum(id), 0), coalesce(sum({_CHECKSUM_SQL}), 0)"  # noqa: S608
            f" FROM {table} WHERE {rule} AND id <= %s"
        )
        tail = _scan_sql(f"{rule} AND id > %s AND id <= %s", codes)
        both = f"SELECT * FROM ({check}) AS kept, ({tail}) AS tail"  # noqa: S608
        row = _fetch_binary(
            both, [campaign_id, kept.last_id, campaign_id, kept.last_id, last_vote_id]
        )
        if tuple(int(v) for v in row[:3]) == (kept.count, kept.id_sum, kept.checksum):
            packed = row[3] or b""
    if packed is None:
        kept = None
        row = _fetch_binary(_scan_sql(f"{rule} AND id <= %s", codes), [campaign_id, last_vote_id])
        packed = row[0] or b""
    records = np.frombuffer(packed, dtype=_SCANNED)
    columns = [records[k].astype(np.int64) for k in ("q", "a", "b", "o", "t", "id", "h")]
    if kept is not None:
        columns = [
            np.concatenate([old, new]) for old, new in zip(kept.columns, columns, strict=True)
        ]
    order = _vote_order(columns[4], columns[5])
    if order is not None:
        columns = [column[order] for column in columns]
    for column in columns:
        column.setflags(write=False)  # shared with the next recompute: nobody may change it
    t, ids, h = columns[4:]
    whole = _Kept(last_vote_id, int(ids.size), int(ids.sum()), int(h.sum()), *columns)
    settled = t < int((now - KEPT_SETTLE - _PG_EPOCH) / dt.timedelta(microseconds=1))
    if settled.any():
        last = int(ids[settled].max())
        mine = ids <= last
        _keep(
            key,
            _Kept(
                last,
                int(mine.sum()),
                int(ids[mine].sum()),
                int(h[mine].sum()),
                *(column[mine] for column in columns),
            ),
        )
    return whole


def _fetch_binary(sql: str, params: Sequence[Any]) -> Sequence[Any]:
    """The one row of ``sql``, fetched in binary (Django's psycopg cursors bind parameters
    client-side, which rules out binary results)."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql.encode(), params, binary=True)
        row = cursor.fetchone()
    if row is None:  # an aggregate without GROUP BY always gives one row
        raise RuntimeError("the vote scan returned no row")
    return tuple(row)


def _vote_order(t: IntArray, ids: IntArray) -> IntArray | None:
    """The permutation that puts votes in (created_at, id) order, or None when they already
    are (votes mostly arrive in time order, so the scan usually reads them in order)."""
    later = t[1:] > t[:-1]
    if bool((later | ((t[1:] == t[:-1]) & (ids[1:] > ids[:-1]))).all()):
        return None
    order: IntArray = np.lexsort((ids, t))
    return order


def _scan(
    campaign_id: int,
    last_vote_id: int,
    now: dt.datetime,
    exclude_tainted: bool,
    include_excluded: bool,
) -> tuple[IntArray, IntArray]:
    """PostgreSQL: every counted vote's question, contestants, outcome code, time and id
    (`_scan_rows`), grouped here. Returns the votes in (created_at, id) order as columns
    (contestant a, contestant b, question, code), the counts `_count` would give (columns
    question, contestant a, contestant b, code, votes, then the votes of each of
    `DATE_RANGES`). One scan instead of a GROUP BY and an ordered read: at 1.7 M votes the
    scan is most of each query's cost, and numpy groups and orders the columns in a fraction
    of a second."""
    kept = _scan_rows(campaign_id, last_vote_id, now, exclude_tainted, include_excluded)
    q, a, b, o, t = kept.q, kept.a, kept.b, kept.o, kept.t
    scanned = np.column_stack([a, b, q, o])
    # Group by (question, a, b, code) through dense numbers of each column.
    dense = [_dense(column) for column in (q, a, b)]
    key = np.zeros(q.size, dtype=np.int64)
    for values, number in dense:
        key = key * values.size + number
    key = key * len(Outcome) + o
    space = len(Outcome) * int(np.prod([values.size for values, _n in dense]))
    recent = [
        t >= int((now - dt.timedelta(days=days) - _PG_EPOCH) / dt.timedelta(microseconds=1))
        for days in DATE_RANGES
    ]
    if space <= max(1 << 24, 4 * key.size):
        totals = np.bincount(key, minlength=space)
        present = np.flatnonzero(totals)
        counts = [totals[present]]
        counts += [np.bincount(key, weights=r, minlength=space)[present] for r in recent]
    else:
        present, inverse = np.unique(key, return_inverse=True)
        inverse = inverse.reshape(-1)
        counts = [np.bincount(inverse, minlength=present.size)]
        counts += [np.bincount(inverse, weights=r, minlength=present.size) for r in recent]
    rest, code = np.divmod(present, len(Outcome))
    numbers = []
    for values, _number in reversed(dense):
        rest, number = np.divmod(rest, values.size)
        numbers.append(values[number])
    qs, as_, bs = reversed(numbers)
    grouped = np.column_stack([qs, as_, bs, code, *counts]).astype(np.int64)
    return scanned, grouped.reshape(-1, 5 + len(DATE_RANGES))


def _dense(column: IntArray) -> tuple[IntArray, IntArray]:
    """The distinct values of a column of ids (sorted) and each entry's number among them;
    by a lookup table where the ids are small enough, else by sorting."""
    if column.size == 0:
        return column, column
    top = int(column.max())
    if top < max(1 << 24, 4 * column.size) and int(column.min()) >= 0:
        seen = np.bincount(column, minlength=top + 1) > 0
        values = np.flatnonzero(seen)
        lookup = np.cumsum(seen) - 1
        return values.astype(np.int64), lookup[column].astype(np.int64)
    values, inverse = np.unique(column, return_inverse=True)
    return values, inverse.reshape(-1).astype(np.int64)


# Snapshots -----------------------------------------------------------------------------------


def _computed_at(keys: tuple[Any, Any]) -> dt.datetime | None:
    """When the stored payload's recompute started, from its ``schema`` and ``computed_at``;
    None for one this schema cannot read (which any new recompute may then replace)."""
    schema, computed_at = keys
    if schema != SCHEMA or not isinstance(computed_at, str):
        return None
    try:
        return dt.datetime.fromisoformat(computed_at)
    except ValueError:
        return None


def snapshots_replace(
    *, campaign_id: int, snapshots: Sequence[Snapshot], started: dt.datetime
) -> dt.datetime | None:
    """Store ``snapshots`` (the campaign's own first) in place of the campaign's slices, and
    beside the earlier snapshots of its own scope that `history_keep` keeps, unless a
    recompute that started after ``started`` already stored its figures. Returns the stored
    rows' ``computed_at``, or None when nothing was written."""
    main_key = campaign_scope(campaign_id)
    with transaction.atomic():
        # Serialise writers of one campaign; the compute before this ran without any lock.
        Campaign.objects.select_for_update().filter(pk=campaign_id).values_list("pk").first()
        current = (
            RatingSnapshot.objects.filter(campaign_id=campaign_id, scope=main_key)
            .order_by("-computed_at", "-id")
            .values_list("payload__schema", "payload__computed_at")
            .first()
        )
        # A run that started later read at least the votes this one read: keep its figures.
        # (Only the two keys are read: parsing a whole payload of 129 contestants takes long.)
        stored = None if current is None else _computed_at(current)
        if stored is not None and stored > started:
            return None
        # Every scope keeps its history under the retention policy: the campaign's own is
        # plotted, and a public view frozen at the start of the day reads a slice's too.
        history = RatingSnapshot.objects.filter(campaign_id=campaign_id)
        by_scope: dict[str, list[tuple[int, dt.datetime]]] = {}
        for pk, scope, at in history.values_list("id", "scope", "computed_at"):
            by_scope.setdefault(scope, []).append((pk, at))
        dropped = [
            pk
            for stamps in by_scope.values()
            for pk in {pk for pk, _at in stamps} - history_keep(stamps, now=started)
        ]
        for start in range(0, len(dropped), _CHUNK):
            history.filter(pk__in=dropped[start : start + _CHUNK]).delete()
        # A slice with every vote holds the campaign's own leaderboard: dumped once.
        payloads = dump_shared(snapshots)
        rows = RatingSnapshot.objects.bulk_create(
            RatingSnapshot(
                scope=s.scope, campaign_id=campaign_id, vote_count=s.vote_count, payload=payload
            )
            for s, payload in zip(snapshots, payloads, strict=True)
        )
    return rows[0].computed_at


def snapshot_is_stale(*, campaign_id: int) -> bool:
    """Whether the campaign's votes changed since its latest snapshot (or it has none, or one
    of another schema): a vote newer than the snapshot, a vote id past the last one it
    counted, or a different number of votes."""
    # Only the keys needed leave the database: a payload of 129 contestants is large.
    row = (
        RatingSnapshot.objects.filter(campaign_id=campaign_id, scope=campaign_scope(campaign_id))
        .order_by("-computed_at", "-id")
        .values_list("vote_count", "computed_at", "payload__schema", "payload__last_vote_id")
        .first()
    )
    if row is None:
        return True
    vote_count, computed_at, schema, last_counted = row
    if schema != SCHEMA:
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
        votes["n"] != vote_count
        or (votes["last"] or None) != last_counted
        or (newest["newest"] is not None and newest["newest"] > computed_at)
    )
