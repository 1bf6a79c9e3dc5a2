"""Every hand-written SQL statement of the battles aggregate, and the helpers they run on.

Handing out a battle and recording a vote run on every click of every evaluator; built by the
ORM, their statements cost several times more CPU to compose than PostgreSQL spends running
them (benchmarks/load.py). Those few statements are written out here, through Django's
connection (its transactions, error wrapping and pool), portable between PostgreSQL and the
SQLite file of `make run`. The conditions they share with the ORM code (whose battle, which
campaign, which answers) are not restated here: they come from `rules.py`, which holds each
rule in both forms. The helpers turn values both ways, as the ORM would; other aggregates'
stores use them too.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from arena.battles import rules
from arena.models import Battle, Campaign, Contestant, Vote

M = TypeVar("M", bound=models.Model)
Params = Sequence[Any] | Mapping[str, Any]


def fetch_one(sql: str, params: Params) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return tuple(row) if row is not None else None


def fetch_all(sql: str, params: Params) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def execute(sql: str, params: Params) -> int:
    """Run a write; the number of rows it touched."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def insert(sql: str, params: Params) -> int:
    """Run an INSERT of one row; its id."""
    with connection.cursor() as cursor:
        if connection.features.can_return_columns_from_insert:
            cursor.execute(f"{sql} RETURNING id", params)
            row = cursor.fetchone()
            return int(row[0])
        cursor.execute(sql, params)
        return int(cursor.lastrowid)


def database_ping() -> None:
    """One round trip to the database (health checks); raises if it is out of reach."""
    fetch_one("SELECT 1", [])


def db_value(model: type[models.Model], field: str, value: Any) -> Any:
    """A Python value as the database takes it for this field (UUIDs, datetimes)."""
    found = model._meta.get_field(field)
    if not isinstance(found, models.Field):
        raise TypeError(f"{model.__name__}.{field} is not a column")
    return found.get_db_prep_value(value, connection)


def lock_clause(of: str, *, skip_locked: bool = False, no_key: bool = False) -> str:
    """``FOR [NO KEY] UPDATE OF … [SKIP LOCKED]`` where the database has row locks (not
    SQLite, whose writers take the whole database in turn)."""
    features = connection.features
    if not features.has_select_for_update or (
        skip_locked and not features.has_select_for_update_skip_locked
    ):
        return ""
    kind = "FOR NO KEY UPDATE" if no_key else "FOR UPDATE"
    return f"{kind} OF {of}{' SKIP LOCKED' if skip_locked else ''}"


def as_datetime(value: Any) -> dt.datetime:
    """A timestamp column read through a cursor (SQLite gives text)."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        found = parse_datetime(str(value))
        if found is None:
            raise ValueError(f"not a timestamp: {value!r}")
        parsed = found
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, dt.UTC)
    return parsed


def as_json(value: Any) -> Any:
    """A JSON column read through a cursor (text on both databases, as Django reads it)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def columns(model: type[models.Model], *, exclude: Sequence[str] = ()) -> list[str]:
    """The attribute names of a model's columns, for :func:`select_list` and
    :func:`from_columns`."""
    return [f.attname for f in model._meta.concrete_fields if f.attname not in exclude]


def select_list(model: type[models.Model], alias: str, names: Sequence[str]) -> str:
    fields = {f.attname: f.column for f in model._meta.concrete_fields}
    return ", ".join(f"{alias}.{fields[n]}" for n in names)


@functools.cache
def _field_kinds(model: type[models.Model]) -> dict[str, str]:
    return {f.attname: f.get_internal_type() for f in model._meta.concrete_fields}


def from_columns(model: type[M], names: Sequence[str], row: Sequence[Any]) -> M:
    """An instance from a row of :func:`select_list` (values converted as the ORM would)."""
    kinds = _field_kinds(model)
    values: dict[str, Any] = {}
    for name, value in zip(names, row, strict=True):
        kind = kinds[name]
        if value is None:
            values[name] = None
        elif kind == "BooleanField":
            values[name] = bool(value)
        elif kind == "JSONField":
            values[name] = as_json(value)
        elif kind == "DateTimeField":
            values[name] = as_datetime(value)
        elif kind == "UUIDField":
            values[name] = as_uuid(value)
        else:
            values[name] = value
    return from_row(model, values)


def from_row(model: type[M], values: Mapping[str, Any]) -> M:
    """A saved instance with these attribute values; the others load on first access."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(DEFAULT_DB_ALIAS, names, [values[n] for n in names])


# Statements -----------------------------------------------------------------------------------
# Campaign access: rules.campaign_access_q for one slug, on every "next battle".
_CAMPAIGN_COLUMNS = columns(Campaign, exclude=["created_at"])


def campaign_for(*, slug: str, owner: rules.Owner) -> Campaign | None:
    """The campaign with this slug if the owner may evaluate in it."""
    access, params = rules.campaign_access_sql(owner, "c")
    row = fetch_one(
        f"SELECT {select_list(Campaign, 'c', _CAMPAIGN_COLUMNS)} FROM arena_campaign c "  # noqa: S608
        f"WHERE c.slug = %(slug)s AND {access}",
        {**params, "slug": slug},
    )
    return from_columns(Campaign, _CAMPAIGN_COLUMNS, row) if row is not None else None


_OPEN_COLUMNS = columns(Battle, exclude=["served_at", "expires_at"])


def open_battle(*, campaign_id: int, owner: rules.Owner, now: dt.datetime) -> Battle | None:
    """The owner's latest unexpired, unvoted battle in the campaign."""
    where, params = owner.battle_sql("b")
    row = fetch_one(
        f"SELECT {select_list(Battle, 'b', _OPEN_COLUMNS)} FROM arena_battle b "  # noqa: S608
        f"WHERE b.campaign_id = %(campaign)s AND {where} AND b.state = 'served' "
        "AND b.expires_at > %(now)s ORDER BY b.served_at DESC LIMIT 1",
        {**params, "campaign": campaign_id, "now": db_value(Battle, "expires_at", now)},
    )
    return from_columns(Battle, _OPEN_COLUMNS, row) if row is not None else None


_CONTESTANT_COLUMNS = columns(Contestant, exclude=["created_at"])
_CONTESTANTS_SQL = f"""
SELECT {select_list(Contestant, "c", _CONTESTANT_COLUMNS)}
FROM arena_contestant c JOIN arena_campaign_contestants cc ON cc.contestant_id = c.id
WHERE cc.campaign_id = %s AND c.active
"""  # noqa: S608  (column names from the model, no input)


def owner_lock(owner: rules.Owner, purpose: str) -> None:
    """Hold this owner's lock for ``purpose`` until the transaction ends: concurrent calls of
    one owner wait here, so a count-then-insert under it is a single step. SQLite needs none
    (its writers already run one at a time: BEGIN IMMEDIATE)."""
    if connection.vendor != "postgresql":
        return
    key = f"user:{owner.user_id}" if owner.user is not None else f"session:{owner.session_key}"
    fetch_one("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"arena.{purpose}:{key}"])


def active_contestants(*, campaign_id: int) -> dict[int, Contestant]:
    """The campaign's active contestants by id."""
    found = (
        from_columns(Contestant, _CONTESTANT_COLUMNS, row)
        for row in fetch_all(_CONTESTANTS_SQL, [campaign_id])
    )
    return {c.pk: c for c in found}


def pair_loads(*, campaign_id: int) -> dict[tuple[int, int], int]:
    """Battles served so far per contestant pair (lower id first)."""
    rows = fetch_all(
        "SELECT contestant_lo_id, contestant_hi_id, battles FROM arena_pairload "
        "WHERE campaign_id = %s",
        [campaign_id],
    )
    return {(lo, hi): n for lo, hi, n in rows}


def evaluator_skills(*, user_id: int) -> tuple[list[str], list[str]]:
    """The evaluator's skills (categories) and languages from their profile (none without)."""
    row = fetch_one(
        "SELECT skills, languages FROM arena_evaluatorprofile WHERE user_id = %s", [user_id]
    )
    if row is None:
        return [], []
    skills, languages = (as_json(v) for v in row)
    return [str(s) for s in skills or []], [str(v) for v in languages or []]


def pair_weights(*, campaign_id: int) -> dict[tuple[int, int], float]:
    """Active sampling: each pair's probability in the latest plan (pairs without one left out;
    see `arena.battles.active`)."""
    rows = fetch_all(
        "SELECT contestant_lo_id, contestant_hi_id, weight FROM arena_pairload "
        "WHERE campaign_id = %s AND weight IS NOT NULL",
        [campaign_id],
    )
    return {(lo, hi): float(w) for lo, hi, w in rows}


# The pair's counter, created on its first battle. Last in the transaction: concurrent
# callers that picked the same pair wait on this row only until the commit.
_BUMP_PAIR_SQL = """
INSERT INTO arena_pairload (campaign_id, contestant_lo_id, contestant_hi_id, battles)
VALUES (%s, %s, %s, %s)
ON CONFLICT (campaign_id, contestant_lo_id, contestant_hi_id)
DO UPDATE SET battles = arena_pairload.battles + EXCLUDED.battles
"""


def pair_bump(*, campaign_id: int, lo: int, hi: int, battles: int = 1) -> None:
    """Count ``battles`` more battles served for this pair (lo < hi)."""
    execute(_BUMP_PAIR_SQL, [campaign_id, lo, hi, battles])


# The sampler's one statement per pair: the first question at or after a random pivot (in
# primary-key order) that this campaign asks, this owner has not seen, and both contestants
# have a servable answer to, for their current configuration. Written as SQL because it is
# the hottest read of the product and the ORM spelling cost more to build than to run; the
# partial index answer_done_by_contestant gives the walk in question order from the pivot,
# the unique (question, contestant, config) index the probe of the other side, and
# battle_owner_question the "not seen" probe, so PostgreSQL touches a few rows, not all.
# The pivot is repeated on each side of the question join because PostgreSQL carries
# equalities across a join but not ranges: without them its merge joins started at the
# first question. Migration 0004's statistics tell it that a contestant and its
# configuration hash go together; without them it expected ~30 answers where there are
# ~500, and sorted them all instead of walking the index (5 ms instead of 0.5 ms).
# On PostgreSQL the two answers are locked FOR NO KEY UPDATE SKIP LOCKED: an evaluator
# asking at the same moment skips to the next question instead of getting the same battle
# (NO KEY: inserting battles that reference the answers is not blocked).
_SAMPLER_SQL = """
SELECT a1.question_id, a1.id, a2.id
FROM arena_answer a1
JOIN arena_answer a2
  ON a2.question_id = a1.question_id AND a2.contestant_id = %(hi)s
 AND a2.config_hash = %(hi_hash)s AND {servable_a2}
JOIN arena_question q ON q.id = a1.question_id
JOIN arena_questionset qs ON qs.id = q.question_set_id AND qs.kind = 'uploaded'
JOIN arena_campaign_question_sets cqs
  ON cqs.questionset_id = qs.id AND cqs.campaign_id = %(campaign)s
WHERE a1.contestant_id = %(lo)s AND a1.config_hash = %(lo_hash)s AND {servable_a1}
  AND a1.question_id {side} %(pivot)s AND q.id {side} %(pivot)s
  AND a2.question_id {side} %(pivot)s{skill}
  AND NOT EXISTS (
    SELECT 1 FROM arena_battle b
    WHERE b.campaign_id = %(campaign)s AND {owner} AND b.question_id = a1.question_id
  )
ORDER BY a1.question_id
LIMIT 1
{lock}
"""


@functools.cache
def _sampler_sql(*, policy: str, owner: str, wrapped: bool, lock: str, skill: str = "") -> str:
    return _SAMPLER_SQL.format(
        servable_a1=rules.servable_answer_sql(policy, "a1"),
        servable_a2=rules.servable_answer_sql(policy, "a2"),
        side="<" if wrapped else ">=",
        owner=owner,
        lock=lock,
        skill=skill,
    )


def sample(
    *,
    campaign: Campaign,
    owner: rules.Owner,
    lo: Contestant,
    hi: Contestant,
    pivot: int,
    block: rules.SkillBlock | None = None,
) -> tuple[int, int, int] | None:
    """(question id, answer id of ``lo``, answer id of ``hi``) of the first question from
    ``pivot`` on (then wrapping round) that both may battle on for this owner, or None.
    ``block``: categories and languages kept from this owner (`rules.skill_block`)."""
    where, owner_params = owner.battle_sql("b")
    skill, skill_params = rules.question_skill_sql(block, "q") if block else ("", {})
    params: dict[str, Any] = {
        **owner_params,
        "campaign": campaign.pk,
        "lo": lo.pk,
        "lo_hash": lo.config_hash,
        "hi": hi.pk,
        "hi_hash": hi.config_hash,
        "pivot": pivot,
        **skill_params,
    }
    flags: dict[str, Any] = {
        "policy": campaign.identity_policy,
        "owner": where,
        "lock": lock_clause("a1, a2", skip_locked=True, no_key=True),
        "skill": skill,
    }
    for wrapped in (False, True):
        row = fetch_one(_sampler_sql(wrapped=wrapped, **flags), params)
        if row is not None:
            return int(row[0]), int(row[1]), int(row[2])
    return None


def commit_without_waiting_for_disk() -> None:
    """PostgreSQL: this transaction's commit returns before its WAL reaches the disk.

    Handing out a battle bumps the pair's counter, and concurrent callers picking the same
    pair wait on that row until the commit: with a synchronous commit, one disk flush each,
    in line. A crash can lose the last fraction of a second of served battles (their
    evaluators ask for another), never a vote: a vote commits synchronously, and flushing
    its WAL flushes the battle's before it.
    """
    if connection.vendor == "postgresql":
        fetch_one("SELECT set_config('synchronous_commit', 'off', true)", [])


_INSERT_BATTLE_SQL = """
INSERT INTO arena_battle (code, campaign_id, evaluator_id, session_key, mode, question_id,
                          answer_a_id, answer_b_id, state, served_at, expires_at,
                          sampling_weight, kind, source_id, gold_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def battle_insert(values: Mapping[str, Any]) -> int:
    """Insert one battle row (every column but the id, by attribute name); its id."""
    return insert(
        _INSERT_BATTLE_SQL,
        [
            db_value(Battle, "code", values["code"]),
            values["campaign_id"],
            values["evaluator_id"],
            values["session_key"],
            values["mode"],
            values["question_id"],
            values["answer_a_id"],
            values["answer_b_id"],
            values["state"],
            db_value(Battle, "served_at", values["served_at"]),
            db_value(Battle, "expires_at", values["expires_at"]),
            values.get("sampling_weight"),
            values.get("kind", Battle.Kind.REGULAR),
            values.get("source_id"),
            values.get("gold_id"),
        ],
    )


# Votes ----------------------------------------------------------------------------------------
# Under the battle's row lock: the battle, what the vote row copies from it, whether a live
# battle's round is complete, the reveal's names (given out only once the vote is stored, and
# only if the campaign reveals) and the owner's votes in the last minute (the rate limit), in
# one statement.
_LOCK_SQL = """
SELECT b.id, b.state, b.mode, b.served_at, b.expires_at <= %(now)s, b.campaign_id,
       b.question_id, aa.contestant_id, ab.contestant_id, ({reveals}) AS reveals, ca.name, cb.name,
       ({recent}) AS recent, ({complete}) AS complete, ({access}) AS allowed,
       q.named_terms, q.asks_identity, aa.named_terms, ab.named_terms, b.kind
FROM arena_battle b
JOIN arena_question q ON q.id = b.question_id
JOIN arena_answer aa ON aa.id = b.answer_a_id
JOIN arena_answer ab ON ab.id = b.answer_b_id
JOIN arena_contestant ca ON ca.id = aa.contestant_id
JOIN arena_contestant cb ON cb.id = ab.contestant_id
JOIN arena_campaign c ON c.id = b.campaign_id
WHERE b.code = %(code)s AND {owner}
{lock}
"""


@dataclass(frozen=True)
class VoteTarget:
    """A battle locked for a vote, with what the vote row copies from it."""

    battle_id: int
    state: str
    mode: str
    served_at: dt.datetime
    expired: bool
    campaign_id: int
    question_id: int
    contestant_a_id: int
    contestant_b_id: int
    reveals: bool
    name_a: str
    name_b: str
    recent_votes: int
    round_complete: bool
    allowed: bool  # the owner may still use the battle's campaign (rules.campaign_access_*)
    taint: dict[str, Any]  # rules.battle_taint; empty: clean
    kind: str = "regular"  # Battle.Kind: a gold or repeat battle's vote is a control vote


def _owner_lock(owner: rules.Owner) -> None:
    """PostgreSQL: take the owner's vote lock until the transaction ends, so that one owner's
    votes are recorded one at a time and each counts the ones before it against the per-minute
    limit (votes on several battles sent at once would otherwise all see the same count). A
    transaction-scoped advisory lock on a 64-bit key derived from the owner; its own statement,
    so that the count after it sees the votes committed while it waited."""
    if connection.vendor != "postgresql":
        return  # SQLite already runs one writing transaction at a time
    who = f"user:{owner.user.pk}" if owner.user is not None else f"session:{owner.session_key}"
    digest = hashlib.blake2b(f"arena-vote:{who}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)]
        )


def vote_target_lock(
    *, code: Any, owner: rules.Owner, now: dt.datetime, since: dt.datetime
) -> VoteTarget | None:
    """Lock the owner's battle with this code (a database value), after the owner's vote lock
    (`_owner_lock`); None if there is none."""
    _owner_lock(owner)
    where, params = owner.battle_sql("b")
    join, recent_where, recent_params = owner.vote_sql("rv", "rb")
    access, access_params = rules.campaign_access_sql(owner, "c")
    statement = _LOCK_SQL.format(
        owner=where,
        recent=f"SELECT count(*) FROM arena_vote rv {join} "  # noqa: S608
        f"WHERE {recent_where} AND rv.created_at >= %(since)s",
        complete=rules.round_complete_sql(a="aa", b="ab", question="q"),
        access=access,
        reveals=rules.campaign_reveals_sql("c"),
        lock=lock_clause("b"),
    )
    row = fetch_one(
        statement,
        {
            **params,
            **recent_params,
            **access_params,
            "code": code,
            "now": db_value(Battle, "expires_at", now),
            "since": db_value(Vote, "created_at", since),
        },
    )
    if row is None:
        return None
    (battle_id, state, mode, served_at, expired, campaign_id, question_id) = row[:7]
    contestant_a, contestant_b, reveals, name_a, name_b, recent, complete, allowed = row[7:15]
    question_terms, asks, a_terms, b_terms, kind = row[15:]
    return VoteTarget(
        battle_id=battle_id,
        state=state,
        mode=mode,
        served_at=as_datetime(served_at),
        expired=bool(expired),
        campaign_id=campaign_id,
        question_id=question_id,
        contestant_a_id=contestant_a,
        contestant_b_id=contestant_b,
        reveals=bool(reveals),
        name_a=name_a,
        name_b=name_b,
        recent_votes=int(recent),
        round_complete=bool(complete),
        allowed=bool(allowed),
        taint=rules.battle_taint(
            question_terms=as_json(question_terms) or [],
            asks_identity=bool(asks),
            a_terms=as_json(a_terms) or [],
            b_terms=as_json(b_terms) or [],
        ),
        kind=kind,
    )


_INSERT_VOTE_SQL = """
INSERT INTO arena_vote (battle_id, campaign_id, evaluator_id, question_id, contestant_a_id,
                        contestant_b_id, outcome, reason, time_to_vote_ms, tainted, taint,
                        created_at, control, low_confidence)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def vote_insert(values: Mapping[str, Any]) -> int:
    """Insert one vote (every column but the id, by attribute name) and mark its battle
    voted; the vote's id."""
    vote_id = insert(
        _INSERT_VOTE_SQL,
        [
            values["battle_id"],
            values["campaign_id"],
            values["evaluator_id"],
            values["question_id"],
            values["contestant_a_id"],
            values["contestant_b_id"],
            values["outcome"],
            values["reason"],
            values["time_to_vote_ms"],
            values["tainted"],
            db_value(Vote, "taint", values["taint"]),
            db_value(Vote, "created_at", values["created_at"]),
            values.get("control", False),
            values.get("low_confidence", False),
        ],
    )
    execute("UPDATE arena_battle SET state = 'voted' WHERE id = %s", [values["battle_id"]])
    return vote_id


def vote_acceptable_set(*, vote_id: int, a: bool | None, b: bool | None) -> None:
    """Store the evaluator's acceptable / not acceptable verdict per answer with the vote
    (only when given: most votes carry none, and their insert stays as it is)."""
    execute(
        "UPDATE arena_vote SET acceptable_a = %s, acceptable_b = %s WHERE id = %s",
        [a, b, vote_id],
    )


# Reading a battle -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SideRow:
    status: str
    shown_text: str
    followups: list[dict[str, Any]]


@dataclass(frozen=True)
class BattleRow:
    """A battle with what an evaluator may see of it (no contestant column)."""

    pk: int
    code: str
    state: str
    mode: str
    expires_at: dt.datetime
    question_text: str
    question_turns: list[Any]
    a: SideRow
    b: SideRow
    campaign_slug: str
    campaign_name: str
    blind_timing: bool
    voted_outcome: str | None
    allowed: bool  # the owner may still use the battle's campaign (rules.campaign_access_*)


# Every page view and "next" reads a battle like this: one statement.
_GET_SQL = """
SELECT b.id, b.code, b.state, b.mode, b.expires_at, q.text, q.turns,
       aa.status, aa.shown_text, aa.followups, ab.status, ab.shown_text, ab.followups,
       c.slug, c.name, c.blind_timing, v.outcome, ({access}) AS allowed
FROM arena_battle b
JOIN arena_question q ON q.id = b.question_id
JOIN arena_answer aa ON aa.id = b.answer_a_id
JOIN arena_answer ab ON ab.id = b.answer_b_id
JOIN arena_campaign c ON c.id = b.campaign_id
LEFT JOIN arena_vote v ON v.battle_id = b.id
WHERE b.code = %(code)s AND {owner}
"""


def battle_row(*, code: Any, owner: rules.Owner) -> BattleRow | None:
    """The owner's battle with this code (a database value), or None."""
    where, params = owner.battle_sql("b")
    access, access_params = rules.campaign_access_sql(owner, "c")
    row = fetch_one(
        _GET_SQL.format(owner=where, access=access), {**params, **access_params, "code": code}
    )
    if row is None:
        return None
    (pk, code_, state, mode, expires_at, text, turns, *sides) = row[:13]
    slug, name, blind, outcome, allowed = row[13:]
    a_status, a_text, a_followups, b_status, b_text, b_followups = sides
    return BattleRow(
        pk=pk,
        code=str(as_uuid(code_)),
        state=state,
        mode=mode,
        expires_at=as_datetime(expires_at),
        question_text=text,
        question_turns=as_json(turns),
        a=SideRow(a_status, a_text, as_json(a_followups)),
        b=SideRow(b_status, b_text, as_json(b_followups)),
        campaign_slug=slug,
        campaign_name=name,
        blind_timing=bool(blind),
        voted_outcome=outcome,
        allowed=bool(allowed),
    )


_AS_IS = (int, str, bool, type(None))


def rows_insert(model: type[models.Model], rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (field attnames to values; a field left out gets its default) with the
    values given, ``auto_now_add`` fields included (imports give votes and battles their own
    times), as one prepared statement run for every row; ids are not read back. Built without
    model instances: bulk_create composes each row through the model and overwrites those
    times, which costs seconds per ten thousand rows."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    # Only the model's own table and column names are formatted in.
    sql = f"INSERT INTO {model._meta.db_table} ({names}) VALUES ({marks})"  # noqa: S608
    db = connections[DEFAULT_DB_ALIAS]  # the object itself: the proxy costs a lookup per use
    defaults = {f.attname: f.get_default() for f in fields}

    def prep(field: models.Field[Any, Any], value: Any) -> Any:
        # Both drivers take these as they are; the field's own conversion (datetimes, UUIDs,
        # JSON, choices) costs microseconds a value, seconds per import.
        if type(value) in _AS_IS:
            return value
        return field.get_db_prep_save(value, db)

    prepared = [[prep(f, row.get(f.attname, defaults[f.attname])) for f in fields] for row in rows]
    with db.cursor() as cursor:
        for start in range(0, len(prepared), 5000):
            cursor.executemany(sql, prepared[start : start + 5000])


def battle_ids(*, codes: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The ids of the battles with these codes."""
    found: dict[uuid.UUID, int] = {}
    for start in range(0, len(codes), 2000):
        chunk = codes[start : start + 2000]
        found.update(Battle.objects.filter(code__in=chunk).values_list("code", "id"))
    return found
