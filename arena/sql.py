"""Helpers for the evaluator's hot paths that are written as SQL.

Handing out a battle and recording a vote run on every click of every evaluator; built by the
ORM, their statements cost several times more CPU to compose than PostgreSQL spends running
them (benchmarks/load.py). Those few statements are written out in services/battles.py,
services/votes.py, services/tokens.py and selectors/battles.py, through Django's connection
(its transactions, error wrapping and pool), portable between PostgreSQL and the SQLite file
of `make run`. The helpers here turn values both ways, as the ORM would.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

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
