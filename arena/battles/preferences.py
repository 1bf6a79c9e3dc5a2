"""Preference data for training: a campaign's votes as rows that DPO-style trainers read.

One row per vote, in vote order, in the conversational form of TRL's preference datasets:

    prompt          [{"role": "user", "content": first prompt}]
    chosen          the preferred side's conversation after the prompt: its first reply, then,
                    for multi-turn battles, each later user turn and that side's reply to it
    rejected        the other side's, the same way
    campaign, question_id, category, language, turns
    outcome         "a" | "b" | "tie" | "both_bad" (the vote as cast)
    tie             True for a tie or both-bad row (kept only with ``ties="flag"``: chosen is
                    then side A, rejected side B)
    excluded        True for a vote the ratings leave out (kept only with ``excluded="keep"``)
    chosen_model, rejected_model   contestant names (the export is for the team only)
    evaluator       a keyed hash of who voted: stable within a campaign, not reversible, not
                    linkable across campaigns or installations
    vote_time       when the vote was cast (UTC)

Which votes are left out by default is `arena.ratings.store.counted_votes`, the one rule the
ratings use, with identity-tainted votes always left out (an answer that names a model teaches
the model to name one). The two sides of a multi-turn battle diverge after the first reply, so
only the first user turn is the shared prompt; both conversations are cut to the turns both
sides answered. Votes whose answers have no text (battles imported without conversations) are
left out and counted in `PreferenceExport.skipped_empty`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from django.conf import settings
from django.db.models import Exists, OuterRef

from arena.models import Campaign, Vote
from arena.ratings.store import counted_votes

Ties = Literal["drop", "flag"]
Excluded = Literal["drop", "keep"]
Format = Literal["jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "parquet")

COLUMNS = (
    "prompt",
    "chosen",
    "rejected",
    "campaign",
    "question_id",
    "category",
    "language",
    "turns",
    "outcome",
    "tie",
    "excluded",
    "chosen_model",
    "rejected_model",
    "evaluator",
    "vote_time",
)
_CHUNK = 2000
_PARQUET_ROWS = 10_000
_DECISIVE: dict[str, bool] = {str(Vote.Outcome.A): True, str(Vote.Outcome.B): False}


@dataclass
class PreferenceExport:
    """What one export wrote, counted as the rows stream out."""

    rows: int = 0
    skipped_ties: int = 0
    skipped_empty: int = 0
    skipped_excluded: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


def evaluator_hash(*, campaign_id: int, user_id: int | None, session_key: str) -> str:
    """A keyed hash of a voter (HMAC-SHA256 under the installation's secret key and the
    campaign): the same voter gets the same value within a campaign, and nobody without the
    key can tell who it is or match it with another campaign's."""
    who = f"user:{user_id}" if user_id is not None else f"session:{session_key}"
    message = f"arena-preferences|{campaign_id}|{who}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()[:20]


def _replies(shown: str, followups: Any) -> list[str]:
    replies = [shown]
    if isinstance(followups, list):
        replies += [str(f.get("shown", "")) for f in followups if isinstance(f, dict)]
    return replies


def _conversation(users: list[str], replies: list[str], turns: int) -> list[dict[str, str]]:
    """One side's messages after the first prompt: reply, next user turn, reply, ..."""
    messages = [{"role": "assistant", "content": replies[0]}]
    for k in range(1, turns):
        messages.append({"role": "user", "content": users[k]})
        messages.append({"role": "assistant", "content": replies[k]})
    return messages


def preferences_rows(
    *, campaign: Campaign, ties: Ties = "drop", excluded: Excluded = "drop"
) -> tuple[Iterator[dict[str, Any]], PreferenceExport]:
    """The campaign's preference rows, streamed from the database in vote order, and the
    counts of what was written and skipped (complete once the iterator is exhausted)."""
    counted = counted_votes(campaign_id=campaign.pk, exclude_tainted=True)
    votes = Vote.objects.filter(campaign=campaign)
    if excluded == "drop":
        votes = votes.filter(pk__in=counted.values("pk"))
    rows = (
        votes.annotate(counted=Exists(counted.filter(pk=OuterRef("pk"))))
        .order_by("created_at", "id")
        .values_list(
            "outcome",
            "counted",
            "created_at",
            "evaluator_id",
            "battle__session_key",
            "question__external_id",
            "question__text",
            "question__turns",
            "question__category",
            "question__language",
            "contestant_a__name",
            "contestant_b__name",
            "battle__answer_a__shown_text",
            "battle__answer_a__followups",
            "battle__answer_b__shown_text",
            "battle__answer_b__followups",
        )
        .iterator(chunk_size=_CHUNK)
    )
    report = PreferenceExport()
    if excluded == "drop":
        report.skipped_excluded = Vote.objects.filter(campaign=campaign).count() - counted.count()

    def generate() -> Iterator[dict[str, Any]]:
        for (
            outcome,
            is_counted,
            created_at,
            user_id,
            session_key,
            question_id,
            text,
            later_turns,
            category,
            language,
            model_a,
            model_b,
            shown_a,
            followups_a,
            shown_b,
            followups_b,
        ) in rows:
            a_wins = _DECISIVE.get(outcome)
            if a_wins is None and ties == "drop":
                report.skipped_ties += 1
                continue
            users = [text, *(str(t) for t in later_turns or [])]
            replies_a = _replies(shown_a, followups_a)
            replies_b = _replies(shown_b, followups_b)
            turns = min(len(users), len(replies_a), len(replies_b))
            replies_a, replies_b = replies_a[:turns], replies_b[:turns]
            if not text.strip() or not all(r.strip() for r in (*replies_a, *replies_b)):
                report.skipped_empty += 1
                continue
            first_a = a_wins is not False
            conv_a = _conversation(users, replies_a, turns)
            conv_b = _conversation(users, replies_b, turns)
            report.rows += 1
            report.by_outcome[outcome] = report.by_outcome.get(outcome, 0) + 1
            yield {
                "prompt": [{"role": "user", "content": text}],
                "chosen": conv_a if first_a else conv_b,
                "rejected": conv_b if first_a else conv_a,
                "campaign": campaign.slug,
                "question_id": question_id,
                "category": category,
                "language": language,
                "turns": turns,
                "outcome": outcome,
                "tie": a_wins is None,
                "excluded": not is_counted,
                "chosen_model": model_a if first_a else model_b,
                "rejected_model": model_b if first_a else model_a,
                "evaluator": evaluator_hash(
                    campaign_id=campaign.pk, user_id=user_id, session_key=session_key
                ),
                "vote_time": created_at,
            }

    return generate(), report


def _jsonl(row: dict[str, Any]) -> str:
    return json.dumps({**row, "vote_time": row["vote_time"].isoformat()}, ensure_ascii=False)


def preferences_write(
    *,
    campaign: Campaign,
    stream: IO[bytes],
    fmt: Format = "jsonl",
    ties: Ties = "drop",
    excluded: Excluded = "drop",
) -> PreferenceExport:
    """Write the campaign's preference rows to the binary ``stream`` as JSON Lines or Parquet
    (row groups of `_PARQUET_ROWS`; an export without rows is a valid file with the schema)."""
    rows, report = preferences_rows(campaign=campaign, ties=ties, excluded=excluded)
    if fmt == "jsonl":
        for row in rows:
            stream.write((_jsonl(row) + "\n").encode())
        return report
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    with pq.ParquetWriter(stream, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _PARQUET_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return report


def parquet_schema() -> Any:
    """The Arrow schema of the Parquet preference file (messages as lists of structs)."""
    import pyarrow as pa

    message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    types = {
        "prompt": message,
        "chosen": message,
        "rejected": message,
        "turns": pa.int32(),
        "tie": pa.bool_(),
        "excluded": pa.bool_(),
        "vote_time": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])
