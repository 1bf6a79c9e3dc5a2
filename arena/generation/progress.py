"""Generation progress for the admin's live view: the counts, and the events that push them
to a staff-only channel group."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from arena import dispatch
from arena.models import Answer, Contestant, Question


def progress_group(question_set_id: int) -> str:
    return f"generation.{question_set_id}"


def generation_progress_get(*, question_set_id: int) -> dict[str, Any]:
    """Counts of answers per contestant and status, for each contestant's current config,
    plus how many questions the set holds. One GROUP BY query and one small lookup."""
    total = Question.objects.filter(question_set_id=question_set_id).count()
    contestants = {c.pk: c for c in Contestant.objects.all()}
    rows = (
        Answer.objects.filter(question__question_set_id=question_set_id)
        .values("contestant_id", "config_hash", "status")
        .annotate(n=Count("id"))
    )
    per: dict[int, dict[str, int]] = {}
    for row in rows:
        contestant = contestants.get(row["contestant_id"])
        if contestant is None or row["config_hash"] != contestant.config_hash:
            continue
        counts = per.setdefault(contestant.pk, dict.fromkeys(Answer.Status.values, 0))
        counts[row["status"]] = row["n"]
    out = []
    for pk, counts in sorted(per.items(), key=lambda kv: contestants[kv[0]].name):
        c = contestants[pk]
        missing = total - sum(counts.values())
        out.append({"contestant": c.name, "slug": c.slug, **counts, "not_queued": missing})
    return {"question_set_id": question_set_id, "questions": total, "contestants": out}


def generation_progress_notify(*, question_set_id: int) -> None:
    """Push the set's current counts to everyone watching it. Best effort: a dropped event
    is corrected by the next one, and the page also loads the counts when it connects."""
    payload = generation_progress_get(question_set_id=question_set_id)
    dispatch.group_send(
        progress_group(question_set_id), {"type": "progress.update", "progress": payload}
    )


def generation_progress_notify_after_commit(*, question_set_id: int) -> None:
    """`generation_progress_notify` once the current transaction commits."""
    dispatch.after_commit(lambda: generation_progress_notify(question_set_id=question_set_id))
