"""Battles in and out in the "clean battle" shape that public Chatbot Arena data uses.

One object per battle (a JSON array, or JSON Lines):

    model_a, model_b   contestant names (display names), different from each other
    winner             "model_a" | "model_b" | "tie" | "tie (bothbad)"
    tstamp             when the vote was cast, unix seconds
    judge              who voted (a free-form id)
    language           the conversation's language (up to 16 characters)
    turn               number of user turns, 1 or more
    question_id        optional; battles that share it share one question

An import is validated first and written all at once, or not at all. Imported votes need the
rows a vote points at, so each battle gets a Question (one per question_id) in a question set of
its own, ``Imported battles · <campaign>``, which no campaign serves; Answers with empty text,
flagged and not released (so the sampler never shows them); and a voted Battle owned by the
session ``import:<judge>``. A battle's code is derived from its content, so importing the same
file twice is refused rather than counted twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils.text import slugify
from django.utils.translation import gettext as _

from arena import jsonbounds
from arena.battles import store
from arena.models import Answer, Battle, Campaign, Contestant, Question, QuestionSet, Vote
from arena.questions.imports import RowError, RowErrors
from arena.ratings.store import counted_votes

WINNERS = {
    "model_a": Vote.Outcome.A,
    "model_b": Vote.Outcome.B,
    "tie": Vote.Outcome.TIE,
    "tie (bothbad)": Vote.Outcome.BOTH_BAD,
}
WINNER_OF: dict[str, str] = {str(outcome): winner for winner, outcome in WINNERS.items()}
REQUIRED = ("model_a", "model_b", "winner", "tstamp", "judge", "language", "turn")
IMPORT_SESSION = "import:"
IMPORTED_CONFIG = "imported"
IMPORTED_PROMPT = "(imported battle: the prompt was not provided)"
IMPORTED_TURN = "(not provided)"
MAX_ERRORS = 200
# Battle codes of imports: uuid5 under this namespace, of the campaign and the battle's content.
_NAMESPACE = uuid.UUID("6f1c3c52-5d4e-4c8e-9a57-0b4f0f8f2d11")
_UNSET = uuid.UUID(int=0)
_MAX_TSTAMP = 4_102_444_800  # 2100-01-01
_MAX_JUDGE = 64 - len(IMPORT_SESSION)
_BATCH = 2000


class BattleImportError(Exception):
    """The file was refused; nothing was written. ``errors`` lists the first `MAX_ERRORS`
    problems found, each with the 1-based line where its battle starts; ``more`` counts the
    rest."""

    def __init__(self, errors: list[RowError], *, more: int = 0) -> None:
        self.errors = errors[:MAX_ERRORS]
        self.more = more + len(errors) - len(self.errors)
        super().__init__("; ".join(str(e) for e in self.errors[:20]))


@dataclass(frozen=True)
class _Battle:
    line: int
    model_a: str
    model_b: str
    outcome: str
    tstamp: float
    judge: str
    language: str
    turn: int
    question_id: str | None
    code: uuid.UUID = _UNSET  # given by _with_codes, from the content

    @property
    def question_key(self) -> str:
        return self.question_id if self.question_id is not None else f"battle:{self.code}"


@dataclass(frozen=True)
class BattleImportResult:
    campaign: Campaign
    question_set: QuestionSet
    battles: int
    questions_created: int
    contestants_created: list[str]


# Reading ------------------------------------------------------------------------------------


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BattleImportError(
            [RowError(line, _("The file is not valid UTF-8 (byte %(pos)d).") % {"pos": exc.start})]
        ) from None


def _records_array(text: str) -> Iterator[tuple[int, Any]]:
    """Items of a JSON array with the line each starts on."""
    try:
        jsonbounds.check_depth(text)
    except json.JSONDecodeError as exc:
        raise BattleImportError([RowError(exc.lineno, _("Malformed JSON: %s") % exc.msg)]) from None
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    line, counted = 1, 0

    def skip(at: int) -> int:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        return at

    def line_at(at: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, at)
        counted = at
        return line

    position = skip(position)
    if position < len(text) and text[position] == "]":
        position = skip(position + 1)
    else:
        while True:
            start = position
            try:
                item, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                raise BattleImportError(
                    [RowError(exc.lineno, _("Malformed JSON: %s") % exc.msg)]
                ) from None
            yield line_at(start), item
            position = skip(position)
            if position < len(text) and text[position] == ",":
                position = skip(position + 1)
                continue
            if position < len(text) and text[position] == "]":
                position = skip(position + 1)
                break
            raise BattleImportError(
                [RowError(line_at(min(position, len(text))), _("Malformed JSON: expected , or ]"))]
            )
    if position != len(text):
        raise BattleImportError(
            [RowError(line_at(position), _("Malformed JSON: extra data after the array"))]
        )


def _records_lines(text: str) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield number, jsonbounds.loads(raw)
        except json.JSONDecodeError as exc:
            raise BattleImportError([RowError(number, _("Malformed JSON: %s") % exc.msg)]) from None


def _clean(line: int, record: Any, errors: RowErrors) -> _Battle | None:
    def refuse(message: str) -> None:
        errors.append(RowError(line, message))

    if not isinstance(record, dict):
        refuse(_("a battle must be a JSON object"))
        return None
    missing = [name for name in REQUIRED if name not in record]
    if missing:
        refuse(_("missing field(s): %(fields)s") % {"fields": ", ".join(missing)})
        return None
    model_a, model_b = record["model_a"], record["model_b"]
    if not (isinstance(model_a, str) and model_a.strip()):
        refuse(_("model_a must be a non-empty string"))
        return None
    if not (isinstance(model_b, str) and model_b.strip()):
        refuse(_("model_b must be a non-empty string"))
        return None
    model_a, model_b = model_a.strip(), model_b.strip()
    if model_a == model_b:
        refuse(_("model_a and model_b are the same model (%(name)s)") % {"name": model_a})
        return None
    winner = record["winner"]
    if not isinstance(winner, str) or winner not in WINNERS:
        refuse(
            _("unknown winner %(winner)s: use one of %(choices)s")
            % {"winner": json.dumps(winner), "choices": ", ".join(WINNERS)}
        )
        return None
    tstamp = record["tstamp"]
    if (
        isinstance(tstamp, bool)
        or not isinstance(tstamp, int | float)
        or not math.isfinite(tstamp)
        or not 0 < tstamp < _MAX_TSTAMP
    ):
        refuse(
            _("tstamp must be a time in unix seconds, not %(value)s")
            % {"value": json.dumps(tstamp)}
        )
        return None
    judge, language, turn = record["judge"], record["language"], record["turn"]
    if not isinstance(judge, str) or not judge.strip() or len(judge.strip()) > _MAX_JUDGE:
        refuse(
            _("judge must be a non-empty string of at most %(n)d characters") % {"n": _MAX_JUDGE}
        )
        return None
    if not isinstance(language, str) or len(language.strip()) > 16:
        refuse(_("language must be a string of at most 16 characters"))
        return None
    if isinstance(turn, bool) or not isinstance(turn, int) or not 1 <= turn <= 100:
        refuse(_("turn must be a whole number from 1 to 100"))
        return None
    question_id = record.get("question_id")
    if question_id is not None:
        if isinstance(question_id, int) and not isinstance(question_id, bool):
            question_id = str(question_id)
        if not isinstance(question_id, str) or not question_id.strip() or len(question_id) > 200:
            refuse(_("question_id must be a non-empty string of at most 200 characters"))
            return None
        question_id = question_id.strip()
    return _Battle(
        line=line,
        model_a=model_a,
        model_b=model_b,
        outcome=WINNERS[winner],
        tstamp=float(tstamp),
        judge=judge.strip(),
        language=language.strip(),
        turn=turn,
        question_id=question_id,
    )


def battles_parse(data: bytes | str) -> list[_Battle]:
    """Every battle of a file, validated one by one; raises BattleImportError listing every
    problem (a malformed file stops at the first syntax error)."""
    text = _decode(data)
    stripped = text.lstrip()
    if not stripped:
        raise BattleImportError([RowError(None, _("The file is empty."))])
    records = _records_array(text) if stripped.startswith("[") else _records_lines(text)
    errors = RowErrors(limit=MAX_ERRORS)
    battles = [b for line, record in records if (b := _clean(line, record, errors)) is not None]
    if errors:
        raise BattleImportError(errors.shown, more=errors.more)
    if not battles:
        raise BattleImportError([RowError(None, _("The file holds no battles."))])
    return battles


def _with_codes(campaign: Campaign, battles: list[_Battle]) -> list[_Battle]:
    """Give each battle a code derived from its content (the n-th identical battle gets n)."""
    seen: Counter[str] = Counter()
    coded = []
    for b in battles:
        content = json.dumps(
            [b.model_a, b.model_b, b.outcome, b.tstamp, b.judge, b.language, b.turn, b.question_id],
            ensure_ascii=False,
        )
        seen[content] += 1
        code = uuid.uuid5(_NAMESPACE, f"{campaign.pk}|{content}|{seen[content]}")
        coded.append(dataclasses.replace(b, code=code))
    return coded


# Writing ------------------------------------------------------------------------------------


def imported_set_name(campaign: Campaign) -> str:
    return f"Imported battles · {campaign.name}"[:200]


def _unique_slug(name: str, taken: set[str]) -> str:
    base = (slugify(name) or "imported")[:50]
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


def _check(
    campaign: Campaign, battles: list[_Battle], create_contestants: bool
) -> tuple[dict[str, Contestant], list[str], dict[str, Question], QuestionSet | None]:
    """Everything that needs the database to validate: names, repeats, question conflicts."""
    errors: list[RowError] = []
    names = {b.model_a for b in battles} | {b.model_b for b in battles}
    known = {c.name: c for c in Contestant.objects.filter(name__in=names)}
    missing = sorted(names - known.keys())
    if missing and not create_contestants:
        errors += [
            RowError(b.line, _("unknown model %(name)s") % {"name": json.dumps(name)})
            for b in battles
            for name in (b.model_a, b.model_b)
            if name not in known
        ]
    codes = [b.code for b in battles]
    taken = set()
    for start in range(0, len(codes), _BATCH):
        taken |= set(
            Battle.objects.filter(code__in=codes[start : start + _BATCH]).values_list(
                "code", flat=True
            )
        )
    errors += [
        RowError(b.line, _("this battle was imported before")) for b in battles if b.code in taken
    ]
    question_set = QuestionSet.objects.filter(name=imported_set_name(campaign)).first()
    existing: dict[str, Question] = {}
    if question_set is not None:
        keys = list({b.question_key for b in battles})
        for start in range(0, len(keys), _BATCH):
            existing.update(
                (q.external_id, q)
                for q in Question.objects.filter(
                    question_set=question_set, external_id__in=keys[start : start + _BATCH]
                )
            )
    first: dict[str, tuple[str, int, int]] = {
        key: (q.language, 1 + len(q.turns), 0) for key, q in existing.items()
    }
    for b in battles:
        language, turn, line = first.setdefault(b.question_key, (b.language, b.turn, b.line))
        if (language, turn) != (b.language, b.turn):
            where = _("line %(n)d") % {"n": line} if line else _("an earlier import")
            errors.append(
                RowError(
                    b.line,
                    _("question_id %(id)s has language %(lang)s and turn %(turn)d in %(where)s")
                    % {
                        "id": json.dumps(b.question_key),
                        "lang": json.dumps(language),
                        "turn": turn,
                        "where": where,
                    },
                )
            )
    if errors:
        raise BattleImportError(sorted(errors, key=lambda e: e.line or 0))
    return known, missing, existing, question_set


def _when(tstamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(tstamp, tz=dt.UTC)


def battles_import(
    *, campaign: Campaign, data: bytes | str, create_contestants: bool = False
) -> BattleImportResult:
    """Import clean battles into ``campaign`` as votes, all or nothing.

    Raises BattleImportError (nothing written) on any malformed row, an unknown model name
    unless ``create_contestants`` (which registers it as an inactive placeholder: backend vllm,
    model ``imported:<name>``), a battle imported before, or a question_id seen with two
    languages or turn counts.
    """
    battles = _with_codes(campaign, battles_parse(data))
    with transaction.atomic():
        known, missing, questions, question_set = _check(campaign, battles, create_contestants)
        taken = set(Contestant.objects.values_list("slug", flat=True))
        created = Contestant.objects.bulk_create(
            Contestant(
                name=name,
                slug=_unique_slug(name, taken),
                backend=Contestant.Backend.VLLM,
                model=f"imported:{name}"[:500],
                active=False,
            )
            for name in missing
        )
        known.update((c.name, c) for c in created)
        if question_set is None:
            question_set = QuestionSet.objects.create(
                name=imported_set_name(campaign),
                description=_("Questions of battles imported into campaign %(name)s; never served.")
                % {"name": campaign.name},
            )
        new_questions: dict[str, Question] = {}
        for b in battles:
            if b.question_key not in questions and b.question_key not in new_questions:
                new_questions[b.question_key] = Question(
                    question_set=question_set,
                    external_id=b.question_key,
                    text=IMPORTED_PROMPT,
                    language=b.language,
                    turns=[IMPORTED_TURN] * (b.turn - 1),
                )
        Question.objects.bulk_create(new_questions.values(), batch_size=_BATCH)
        questions.update(new_questions)
        answers = _answers_for(battles, questions, known)
        rows = [
            {
                "code": b.code,
                "campaign_id": campaign.pk,
                "evaluator_id": None,
                "session_key": f"{IMPORT_SESSION}{b.judge}",
                "mode": Battle.Mode.STORED,
                "question_id": questions[b.question_key].pk,
                "answer_a_id": answers[(b.question_key, b.model_a)].pk,
                "answer_b_id": answers[(b.question_key, b.model_b)].pk,
                "state": Battle.State.VOTED,
                "served_at": _when(b.tstamp),
                "expires_at": _when(b.tstamp),
            }
            for b in battles
        ]
        # The battles and votes keep their own times (served_at, created_at), which
        # bulk_create would overwrite with now.
        store.rows_insert(Battle, rows)
        # Imported battles count toward their pair like served ones (sampler.battle_create),
        # so the sampler balances the pairs' votes, imported ones included.
        pairs = Counter(
            (min(pair), max(pair))
            for pair in ((known[b.model_a].pk, known[b.model_b].pk) for b in battles)
        )
        for (lo, hi), n in sorted(pairs.items()):
            store.pair_bump(campaign_id=campaign.pk, lo=lo, hi=hi, battles=n)
        ids = store.battle_ids(codes=[b.code for b in battles])
        store.rows_insert(
            Vote,
            [
                {
                    "battle_id": ids[b.code],
                    "campaign_id": campaign.pk,
                    "evaluator_id": None,
                    "question_id": questions[b.question_key].pk,
                    "contestant_a_id": known[b.model_a].pk,
                    "contestant_b_id": known[b.model_b].pk,
                    "outcome": b.outcome,
                    "created_at": _when(b.tstamp),
                }
                for b in battles
            ],
        )
    return BattleImportResult(
        campaign=campaign,
        question_set=question_set,
        battles=len(battles),
        questions_created=len(new_questions),
        contestants_created=[c.name for c in created],
    )


def _answers_for(
    battles: list[_Battle], questions: dict[str, Question], contestants: dict[str, Contestant]
) -> dict[tuple[str, str], Answer]:
    """The placeholder answer of each (question, model), created where missing."""
    wanted = {(b.question_key, name) for b in battles for name in (b.model_a, b.model_b)}
    question_ids = list({questions[key].pk for key, _name in wanted})
    by_pk = {q.pk: key for key, q in questions.items()}
    names = {c.pk: name for name, c in contestants.items()}
    found: dict[tuple[str, str], Answer] = {}
    for start in range(0, len(question_ids), _BATCH):
        for answer in Answer.objects.filter(
            question_id__in=question_ids[start : start + _BATCH],
            contestant_id__in=list(names),
            config_hash=IMPORTED_CONFIG,
        ):
            found[(by_pk[answer.question_id], names[answer.contestant_id])] = answer
    new = {
        key: Answer(
            question=questions[key[0]],
            contestant=contestants[key[1]],
            config_hash=IMPORTED_CONFIG,
            status=Answer.Status.DONE,
            flagged=True,
            released=False,
        )
        for key in wanted - found.keys()
    }
    Answer.objects.bulk_create(new.values(), batch_size=_BATCH)
    return found | new


# Export -------------------------------------------------------------------------------------


def _counted(campaign: Campaign) -> QuerySet[Vote]:
    """The votes the campaign's ratings count (the one rule, `ratings.store.counted_votes`)."""
    exclude = campaign.tainted_votes == Campaign.TaintedVotes.EXCLUDE
    return counted_votes(campaign_id=campaign.pk, exclude_tainted=exclude)


def battles_export(*, campaign: Campaign) -> Iterator[dict[str, Any]]:
    """The campaign's votes in vote order as clean battles (streamed from the database);
    ``counted`` says whether the campaign's ratings count the vote."""
    counted = _counted(campaign)
    rows = (
        Vote.objects.filter(campaign=campaign)
        .annotate(counted=Exists(counted.filter(pk=OuterRef("pk"))))
        .order_by("created_at", "id")
        .values_list(
            "question__external_id",
            "contestant_a__name",
            "contestant_b__name",
            "outcome",
            "created_at",
            "evaluator__username",
            "battle__session_key",
            "question__language",
            "question__turns",
            "counted",
        )
        .iterator(chunk_size=_BATCH)
    )
    for (
        question_id,
        model_a,
        model_b,
        outcome,
        created_at,
        username,
        session,
        language,
        turns,
        is_counted,
    ) in rows:
        if username:
            judge = username
        elif session.startswith(IMPORT_SESSION):
            judge = session.removeprefix(IMPORT_SESSION)
        else:
            judge = "anonymous"
        yield {
            "question_id": question_id,
            "model_a": model_a,
            "model_b": model_b,
            "winner": WINNER_OF[outcome],
            "judge": judge,
            "turn": 1 + len(turns or []),
            "language": language,
            "tstamp": round(created_at.timestamp(), 6),
            "counted": bool(is_counted),
        }


def battles_export_text(*, campaign: Campaign, lines: bool = False) -> Iterator[str]:
    """`battles_export` as text: a JSON array with one battle per line, or JSON Lines."""
    if lines:
        for row in battles_export(campaign=campaign):
            yield json.dumps(row, ensure_ascii=False) + "\n"
        return
    separator = "[\n"
    for row in battles_export(campaign=campaign):
        yield separator + json.dumps(row, ensure_ascii=False)
        separator = ",\n"
    yield "[]\n" if separator == "[\n" else "\n]\n"


# Parquet ------------------------------------------------------------------------------------
# The same rows as a Parquet file that pandas reads as it is (`pandas.read_parquet`): names
# and winners dictionary-encoded (pandas categories), ``time`` a UTC timestamp beside the unix
# ``tstamp``, ``counted`` a boolean. The file's metadata (key `PARQUET_META_KEY`) holds what
# `manage.py rate_file` needs to rate it as the site does: the campaign's both-bad rule and
# baseline.

PARQUET_META_KEY = b"arena"
PARQUET_COLUMNS = (
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "judge",
    "turn",
    "language",
    "tstamp",
    "time",
    "counted",
)
_PARQUET_ROWS = 50_000


def _parquet_schema(meta: dict[str, Any]) -> Any:
    import pyarrow as pa

    category = pa.dictionary(pa.int32(), pa.string())
    types = {
        "model_a": category,
        "model_b": category,
        "winner": category,
        "turn": pa.int16(),
        "tstamp": pa.float64(),
        "time": pa.timestamp("us", tz="UTC"),
        "counted": pa.bool_(),
    }
    fields = [(name, types.get(name, pa.string())) for name in PARQUET_COLUMNS]
    return pa.schema(fields, metadata={PARQUET_META_KEY: json.dumps(meta).encode()})


def rating_settings(campaign: Campaign) -> dict[str, Any]:
    """What a re-derivation needs besides the votes: how the campaign rates them."""
    baseline = campaign.baseline
    return {
        "campaign": campaign.slug,
        "both_bad": campaign.both_bad,
        "tainted_votes": campaign.tainted_votes,
        "baseline": None if baseline is None else baseline.name,
        "baseline_rating": float(campaign.baseline_rating),
    }


def battles_export_parquet(*, campaign: Campaign, stream: IO[bytes]) -> int:
    """Write `battles_export`'s rows to ``stream`` as Parquet; returns how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema(rating_settings(campaign))
    written = 0
    with pq.ParquetWriter(stream, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            columns = {name: [row[name] for row in batch] for name in PARQUET_COLUMNS}
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))

        for row in battles_export(campaign=campaign):
            row["time"] = _when(row["tstamp"])
            batch.append(row)
            if len(batch) >= _PARQUET_ROWS:
                flush()
                written += len(batch)
                batch = []
        flush()
        written += len(batch)
    return written


@dataclass(frozen=True)
class BattleFile:
    """Battles read from an exported file, in file order: the names on each side, the
    outcome and whether the campaign counted the vote (True where the file does not say),
    and the rating settings a Parquet file carries (empty otherwise)."""

    model_a: list[str]
    model_b: list[str]
    outcome: list[str]
    counted: list[bool]
    settings: dict[str, Any]


def battles_read_file(data: bytes) -> BattleFile:
    """The battles of an exported file (Parquet, a JSON array or JSON Lines), validated;
    BattleImportError for anything malformed. Reads no database."""
    if data[:4] == b"PAR1":
        return _read_parquet(data)
    battles = battles_parse(data)
    counted = _counted_flags(data)
    return BattleFile(
        model_a=[b.model_a for b in battles],
        model_b=[b.model_b for b in battles],
        outcome=[b.outcome for b in battles],
        counted=counted if len(counted) == len(battles) else [True] * len(battles),
        settings={},
    )


def _counted_flags(data: bytes) -> list[bool]:
    """The optional ``counted`` field of each battle of a JSON file (True where absent)."""
    text = _decode(data)
    records = _records_array(text) if text.lstrip().startswith("[") else _records_lines(text)
    return [not (isinstance(r, dict) and r.get("counted") is False) for _line, r in records]


def _read_parquet(data: bytes) -> BattleFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise BattleImportError(
            [RowError(None, _("Not a readable Parquet file: %s") % exc)]
        ) from None
    missing = [c for c in ("model_a", "model_b", "winner") if c not in table.column_names]
    if missing:
        raise BattleImportError(
            [RowError(None, _("missing field(s): %(fields)s") % {"fields": ", ".join(missing)})]
        )
    column = {name: table.column(name).to_pylist() for name in table.column_names}
    errors = RowErrors(limit=MAX_ERRORS)
    counted = column.get("counted") or [True] * table.num_rows
    for row, (a, b, winner) in enumerate(
        zip(column["model_a"], column["model_b"], column["winner"], strict=True), start=1
    ):
        if not (isinstance(a, str) and a.strip() and isinstance(b, str) and b.strip()):
            errors.append(RowError(row, _("model_a and model_b must be non-empty strings")))
        elif a == b:
            errors.append(
                RowError(row, _("model_a and model_b are the same model (%(name)s)") % {"name": a})
            )
        if winner not in WINNERS:
            errors.append(
                RowError(
                    row,
                    _("unknown winner %(winner)s: use one of %(choices)s")
                    % {"winner": json.dumps(winner), "choices": ", ".join(WINNERS)},
                )
            )
    if errors:
        raise BattleImportError(errors.shown, more=errors.more)
    if table.num_rows == 0:
        raise BattleImportError([RowError(None, _("The file holds no battles."))])
    meta = (table.schema.metadata or {}).get(PARQUET_META_KEY)
    try:
        settings = json.loads(meta) if meta else {}
    except json.JSONDecodeError:
        settings = {}
    return BattleFile(
        model_a=[a.strip() for a in column["model_a"]],
        model_b=[b.strip() for b in column["model_b"]],
        outcome=[WINNERS[w] for w in column["winner"]],
        counted=[c is not False for c in counted],
        settings=settings if isinstance(settings, dict) else {},
    )
