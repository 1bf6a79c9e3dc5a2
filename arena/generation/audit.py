"""Fingerprint-stripping audit for admins: what was removed, per contestant and kind."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from arena.models import Answer


def strip_audit_get() -> dict[str, Any]:
    """Counts of strip-report changes per contestant and kind, over finished answers, plus
    how many answers are flagged for self-identification and awaiting review."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    answers: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    rows = (
        Answer.objects.filter(status=Answer.Status.DONE)
        .values_list("contestant__name", "strip_report", "flagged", "released")
        .iterator(chunk_size=2000)
    )
    for name, report, is_flagged, released in rows:
        answers[name] += 1
        if is_flagged and not released:
            flagged[name] += 1
        changes = report.get("changes", []) if isinstance(report, dict) else []
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, dict):
                per[name][str(change.get("kind", "unknown"))] += 1
    kinds = sorted({k for counts in per.values() for k in counts})
    return {
        "kinds": kinds,
        "rows": [
            {
                "contestant": name,
                "answers": answers[name],
                "flagged": flagged[name],
                "counts": [per[name][k] for k in kinds],
                "total": sum(per[name].values()),
            }
            for name in sorted(answers)
        ],
    }
