"""Question-set import: CSV, JSON (an array of objects) and JSONL, all rows or none.

Schema (one object or CSV row per question):
    prompt            required, non-empty (alias: ``text``, ``question``)
    id                optional external id, unique within the set (alias: ``external_id``);
                      when absent, a hash of the prompt, so re-importing a file is detected
    category, language, reference_answer   optional strings
    turns             optional follow-up user turns: a JSON list of strings (in CSV, the cell
                      holds a JSON list)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from arena import jsonbounds
from arena.models import Answer, Battle, Question, QuestionSet

Format = Literal["csv", "json", "jsonl"]
Mode = Literal["refuse", "update"]

ALIASES = {
    "prompt": "prompt",
    "text": "prompt",
    "question": "prompt",
    "id": "id",
    "external_id": "id",
    "category": "category",
    "language": "language",
    "reference_answer": "reference_answer",
    "turns": "turns",
}
SHORT_FIELDS = {"id": 200, "category": 100, "language": 16}
MAX_ERRORS = 200


@dataclass(frozen=True)
class RowError:
    line: int | None  # 1-based line in the file (CSV: the record's first line); None = whole file
    message: str

    def __str__(self) -> str:
        if not self.line:
            return self.message
        return _("line %(line)d: %(message)s") % {"line": self.line, "message": self.message}


def more_errors_text(more: int) -> str:
    """The line that stands for the errors left out of a capped list."""
    return ngettext("… and %(n)s more error", "… and %(n)s more errors", more) % {"n": f"{more:,}"}


class QuestionImportError(Exception):
    """The file was refused; nothing was written. ``errors`` lists the first `MAX_ERRORS`
    problems found, ``more`` counts the rest."""

    def __init__(self, errors: Sequence[RowError], *, more: int = 0) -> None:
        self.errors = list(errors[:MAX_ERRORS])
        self.more = more + len(errors) - len(self.errors)
        super().__init__("; ".join(str(e) for e in self.errors[:20]))


class RowErrors:
    """The errors of a file being checked: the first `MAX_ERRORS` kept, the rest only counted,
    so a file of a million bad rows does not hold a million messages."""

    def __init__(self, *, limit: int = MAX_ERRORS) -> None:
        self.shown: list[RowError] = []
        self.more = 0
        self._limit = limit

    def append(self, error: RowError) -> None:
        if len(self.shown) < self._limit:
            self.shown.append(error)
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.shown)


@dataclass
class ImportResult:
    question_set: QuestionSet
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    external_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    line: int
    external_id: str
    prompt: str
    category: str
    language: str
    reference_answer: str
    turns: list[str]


def detect_format(filename: str) -> Format:
    lower = filename.lower()
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".csv", "csv")):
        if lower.endswith(ext):
            return fmt  # type: ignore[return-value]
    raise QuestionImportError(
        [RowError(None, _("Unknown file type: use a .csv, .json or .jsonl file."))]
    )


def _too_large(size: int | None) -> QuestionImportError:
    limit = settings.ARENA_MAX_UPLOAD_BYTES
    if size is None:
        message = _("The file is over the limit of %(limit)d bytes.") % {"limit": limit}
    else:
        message = _("The file is %(size)d bytes, over the limit of %(limit)d bytes.") % {
            "size": size,
            "limit": limit,
        }
    return QuestionImportError([RowError(None, message)])


def upload_read(chunks: Iterable[bytes], *, size: int | None = None) -> bytes:
    """The bytes of an upload, read chunk by chunk: a file over ARENA_MAX_UPLOAD_BYTES is
    refused (QuestionImportError) as soon as that is known, from its declared ``size`` or the
    running count, and never read whole."""
    if size is not None and size > settings.ARENA_MAX_UPLOAD_BYTES:
        raise _too_large(size)
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > settings.ARENA_MAX_UPLOAD_BYTES:
            raise _too_large(None)
        parts.append(chunk)
    return b"".join(parts)


def _decode(data: bytes) -> str:
    if len(data) > settings.ARENA_MAX_UPLOAD_BYTES:
        raise _too_large(len(data))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise QuestionImportError(
            [RowError(line, _("The file is not valid UTF-8 (byte %(pos)d).") % {"pos": exc.start})]
        ) from None
    if not text.strip():
        raise QuestionImportError([RowError(None, _("The file is empty."))])
    return text


def _records_csv(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise QuestionImportError([RowError(1, _("Unreadable CSV header: %s") % exc)]) from None
    header = [h.strip() for h in header]
    start = reader.line_num + 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield (
                    line,
                    {
                        "__error__": _("expected %(n)d columns, found %(m)d")
                        % {"n": len(header), "m": len(row)}
                    },
                )
                continue
            yield line, dict(zip(header, row, strict=True))
    except csv.Error as exc:
        raise QuestionImportError(
            [RowError(reader.line_num, _("Malformed CSV: %s") % exc)]
        ) from None


def _records_json(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        data = jsonbounds.loads(text)
    except json.JSONDecodeError as exc:
        raise QuestionImportError(
            [RowError(exc.lineno, _("Malformed JSON: %s") % exc.msg)]
        ) from None
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        data = data["questions"]
    if not isinstance(data, list):
        raise QuestionImportError(
            [RowError(1, _("A JSON file must hold an array of question objects."))]
        )
    # Line numbers: JSON arrays carry none, so report the item's 1-based position instead.
    for index, item in enumerate(data, start=1):
        yield index, item if isinstance(item, dict) else {"__error__": _("not a JSON object")}


def _records_jsonl(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = jsonbounds.loads(line)
        except json.JSONDecodeError as exc:
            yield number, {"__error__": _("malformed JSON: %s") % exc.msg}
            continue
        yield number, item if isinstance(item, dict) else {"__error__": _("not a JSON object")}


def _clean(line: int, record: dict[str, Any], errors: RowErrors) -> _Row | None:
    if "__error__" in record:
        errors.append(RowError(line, str(record["__error__"])))
        return None
    values: dict[str, Any] = {}
    for key, value in record.items():
        canonical = ALIASES.get(str(key).strip().lower())
        if canonical is None:
            errors.append(RowError(line, _("unknown column %(col)r") % {"col": key}))
            return None
        values[canonical] = value
    prompt = values.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        errors.append(RowError(line, _("missing or empty prompt")))
        return None
    max_chars = settings.ARENA_MAX_QUESTION_CHARS
    strings: dict[str, str] = {}
    for name in ("id", "category", "language", "reference_answer"):
        value = values.get(name, "")
        if value is None:
            value = ""
        if isinstance(value, int | float) and not isinstance(value, bool) and name == "id":
            value = str(value)
        if not isinstance(value, str):
            errors.append(RowError(line, _("%(col)s must be text") % {"col": name}))
            return None
        limit = SHORT_FIELDS.get(name, max_chars)
        if len(value.strip()) > limit:
            errors.append(
                RowError(
                    line,
                    _("%(col)s is %(n)d characters, over the limit of %(limit)d")
                    % {"col": name, "n": len(value.strip()), "limit": limit},
                )
            )
            return None
        strings[name] = value.strip()
    if len(prompt) > max_chars:
        errors.append(
            RowError(
                line,
                _("prompt is %(n)d characters, over the limit of %(limit)d")
                % {"n": len(prompt), "limit": max_chars},
            )
        )
        return None
    turns = values.get("turns", [])
    if isinstance(turns, str):
        try:
            turns = jsonbounds.loads(turns) if turns.strip() else []
        except json.JSONDecodeError:
            errors.append(RowError(line, _("turns must be a JSON list of strings")))
            return None
    if not isinstance(turns, list) or not all(isinstance(t, str) and t.strip() for t in turns):
        errors.append(RowError(line, _("turns must be a list of non-empty strings")))
        return None
    if any(len(t) > max_chars for t in turns):
        errors.append(RowError(line, _("a follow-up turn is over the length limit")))
        return None
    external_id = strings["id"] or hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]
    return _Row(
        line=line,
        external_id=external_id,
        prompt=prompt.strip(),
        category=strings["category"],
        language=strings["language"],
        reference_answer=strings["reference_answer"],
        turns=[t.strip() for t in turns],
    )


def parse_questions(data: bytes, *, fmt: Format) -> list[_Row]:
    """Validate every row; raise QuestionImportError listing the problems, or return the rows."""
    text = _decode(data)
    records = {"csv": _records_csv, "json": _records_json, "jsonl": _records_jsonl}[fmt](text)
    errors = RowErrors()
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    for line, record in records:
        row = _clean(line, record, errors)
        if row is None:
            continue
        if row.external_id in seen:
            errors.append(
                RowError(
                    line,
                    _("duplicate id %(id)r (first on line %(first)d)")
                    % {"id": row.external_id, "first": seen[row.external_id]},
                )
            )
            continue
        seen[row.external_id] = line
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(None, _("The file holds no questions.")))
    if len(rows) > settings.ARENA_MAX_QUESTIONS_PER_IMPORT:
        errors.append(
            RowError(
                None,
                _("The file holds %(n)d questions, over the limit of %(limit)d.")
                % {"n": len(rows), "limit": settings.ARENA_MAX_QUESTIONS_PER_IMPORT},
            )
        )
    if errors:
        raise QuestionImportError(errors.shown, more=errors.more)
    return rows


@transaction.atomic
def question_set_import(
    *,
    data: bytes,
    filename: str,
    set_name: str,
    mode: Mode = "refuse",
    user: User | None = None,
    fmt: Format | None = None,
) -> ImportResult:
    """Import a file into the named set (created if missing): all rows or none.

    ``mode="refuse"`` rejects a file whose ids already exist in the set; ``"update"`` rewrites
    those questions in place and adds the new ones. Questions never get duplicated.
    """
    set_name = set_name.strip()
    if not set_name:
        raise QuestionImportError([RowError(None, _("A question set needs a name."))])
    if len(set_name) > 200:
        raise QuestionImportError([RowError(None, _("The set name is over 200 characters."))])
    rows = parse_questions(data, fmt=fmt or detect_format(filename))
    question_set, _created = QuestionSet.objects.select_for_update().get_or_create(
        name=set_name,
        defaults={"created_by": user},
    )
    if question_set.kind != QuestionSet.Kind.UPLOADED:
        raise QuestionImportError([RowError(None, _("That set holds live prompts."))])
    existing = {
        q.external_id: q
        for q in question_set.questions.filter(external_id__in=[r.external_id for r in rows])
    }
    if existing and mode == "refuse":
        clashes = [r for r in rows if r.external_id in existing]
        raise QuestionImportError(
            [
                RowError(
                    r.line,
                    _("id %(id)r is already in the set %(set)r; import in update mode to change it")
                    % {"id": r.external_id, "set": question_set.name},
                )
                for r in clashes
            ]
        )
    result = ImportResult(question_set=question_set)
    new: list[Question] = []
    changed: list[Question] = []
    reworded: list[tuple[int, Question]] = []
    fields = ["text", "category", "language", "reference_answer", "turns"]
    for row in rows:
        attrs = {
            "text": row.prompt,
            "category": row.category,
            "language": row.language,
            "reference_answer": row.reference_answer,
            "turns": row.turns,
        }
        result.external_ids.append(row.external_id)
        question = existing.get(row.external_id)
        if question is None:
            new.append(Question(question_set=question_set, external_id=row.external_id, **attrs))
        elif any(getattr(question, k) != v for k, v in attrs.items()):
            if question.text != row.prompt or question.turns != row.turns:
                reworded.append((row.line, question))
            for key, value in attrs.items():
                setattr(question, key, value)
            changed.append(question)
        else:
            result.unchanged += 1
    _drop_stale_answers(reworded)
    Question.objects.bulk_create(new, batch_size=1000)
    Question.objects.bulk_update(changed, fields, batch_size=1000)
    result.created, result.updated = len(new), len(changed)
    return result


def _drop_stale_answers(reworded: list[tuple[int, Question]]) -> None:
    """Answers to a question's old wording must not be shown with the new one: delete them
    (generation makes new ones). A question that was already shown in battles keeps its
    wording, since votes were cast on it: that is an error for its row."""
    if not reworded:
        return
    ids = [q.pk for _line, q in reworded]
    shown = set(Battle.objects.filter(question_id__in=ids).values_list("question_id", flat=True))
    if shown:
        raise QuestionImportError(
            [
                RowError(
                    line,
                    _(
                        "id %(id)r was already shown in battles; its prompt and turns can no "
                        "longer change (import it under a new id)"
                    )
                    % {"id": q.external_id},
                )
                for line, q in reworded
                if q.pk in shown
            ]
        )
    Answer.objects.filter(question_id__in=ids).delete()
