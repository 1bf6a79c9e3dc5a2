"""Rating history: which of a campaign's past snapshots are kept, each contestant's rating over
time, and what changed since a date.

Every recompute stores a new snapshot of each scope beside the older ones (the campaign's own
is plotted; a public view frozen at the start of the day reads a slice's as of then).
Retention (`history_keep`), applied to each scope at each store:

    younger than an hour             every snapshot
    younger than a day               the latest of each 10-minute window
    younger than ARENA_HISTORY_DAYS  the latest of each UTC day
    older                            none

so a campaign holds at most about 6 + 144 + ARENA_HISTORY_DAYS snapshots however often it is
recomputed. The reads take only the rated rows out of each stored payload (the database does the
extraction: the pair matrices never leave it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from arena.models import Campaign, RatingSnapshot
from arena.ratings.snapshot import campaign_scope

ALL_WITHIN = dt.timedelta(hours=1)
WINDOWS_WITHIN = dt.timedelta(days=1)
WINDOW = dt.timedelta(minutes=10)
# Points of the history a page or an API answer carries at most (the newest ones).
MAX_POINTS = 1000


def since_parse(value: str | None) -> dt.datetime | None:
    """A "since" of the history reads: a date (its start, UTC) or an ISO date-time (UTC when
    it names no zone); None when missing or malformed."""
    if not value or len(value) > 64:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def history_keep(stamps: Iterable[tuple[int, dt.datetime]], *, now: dt.datetime) -> set[int]:
    """The ids of the snapshots (id, computed_at) that the retention policy keeps."""
    days = int(settings.ARENA_HISTORY_DAYS)
    latest: dict[tuple[str, int], tuple[dt.datetime, int]] = {}
    kept: set[int] = set()
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for pk, at in stamps:
        age = now - at
        if age < ALL_WITHIN:
            kept.add(pk)
            continue
        if age < WINDOWS_WITHIN:
            bucket = ("window", (at - epoch) // WINDOW)
        elif days == 0 or age < dt.timedelta(days=days):
            bucket = ("day", at.astimezone(dt.UTC).date().toordinal())
        else:
            continue
        best = latest.get(bucket)
        if best is None or (at, pk) > best:
            latest[bucket] = (at, pk)
    return kept | {pk for _at, pk in latest.values()}


@dataclass(frozen=True)
class HistoryRow:
    name: str
    rating: float
    ci_lower: float
    ci_upper: float
    rank: int
    votes: int


@dataclass(frozen=True)
class HistoryPoint:
    computed_at: dt.datetime
    vote_count: int
    ci: str  # how the intervals were computed: "bootstrap" or "sandwich"
    rows: tuple[HistoryRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "computed_at": self.computed_at.isoformat(),
            "vote_count": self.vote_count,
            "ci": self.ci,
            "contestants": [
                {
                    "name": r.name,
                    "rating": r.rating,
                    "ci_lower": r.ci_lower,
                    "ci_upper": r.ci_upper,
                    "rank": r.rank,
                    "votes": r.votes,
                }
                for r in self.rows
            ],
        }


def _rows(raw: Any) -> tuple[HistoryRow, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        HistoryRow(
            name=str(c["name"]),
            rating=float(c["rating"]),
            ci_lower=float(c["ci_lower"]),
            ci_upper=float(c["ci_upper"]),
            rank=int(c["rank"]),
            votes=int(c["votes"]),
        )
        for c in raw
        if isinstance(c, dict)
    )


def _kept(campaign: Campaign, until: dt.datetime | None, **filters: Any) -> Any:
    """The campaign's own snapshots, computed before ``until`` when given (a public reader's
    frozen view: `arena.ratings.read.leaderboard_until`)."""
    rows = RatingSnapshot.objects.filter(
        campaign=campaign, scope=campaign_scope(campaign.pk), **filters
    )
    return rows if until is None else rows.filter(computed_at__lt=until)


def _points(campaign: Campaign, until: dt.datetime | None, **filters: Any) -> list[HistoryPoint]:
    rows = (
        _kept(campaign, until, **filters)
        .order_by("-computed_at", "-id")
        .values_list(
            "computed_at",
            "vote_count",
            "payload__leaderboard__settings__ci",
            "payload__leaderboard__contestants",
        )[:MAX_POINTS]
    )
    points = [
        HistoryPoint(computed_at=at, vote_count=int(n), ci=str(ci or "bootstrap"), rows=_rows(raw))
        for at, n, ci, raw in rows
    ]
    return points[::-1]


def rating_history(
    *, campaign: Campaign, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[HistoryPoint]:
    """The kept snapshots of the campaign's own scope, oldest first (the newest
    `MAX_POINTS`), from ``since`` on and before ``until`` when given."""
    return _points(campaign, until, **({} if since is None else {"computed_at__gte": since}))


@dataclass(frozen=True)
class Move:
    name: str
    rank_before: int | None  # None: new since then
    rank_now: int
    rating_before: float | None
    rating_now: float

    @property
    def rank_change(self) -> int | None:
        """Places gained (positive) or lost; None for a new contestant."""
        return None if self.rank_before is None else self.rank_before - self.rank_now


@dataclass(frozen=True)
class Changes:
    """The campaign's latest snapshot against the last one kept at or before ``since`` (or
    the oldest kept, when none is that old: ``baseline_after_since``)."""

    since: dt.datetime
    before: HistoryPoint | None
    now: HistoryPoint | None
    baseline_after_since: bool
    moves: tuple[Move, ...]  # every contestant rated now, in today's order
    new: tuple[str, ...]
    gone: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        def point(p: HistoryPoint | None) -> dict[str, Any] | None:
            return (
                None
                if p is None
                else {"computed_at": p.computed_at.isoformat(), "vote_count": p.vote_count}
            )

        return {
            "since": self.since.isoformat(),
            "before": point(self.before),
            "now": point(self.now),
            "baseline_after_since": self.baseline_after_since,
            "moves": [
                {
                    "name": m.name,
                    "rank_before": m.rank_before,
                    "rank_now": m.rank_now,
                    "rank_change": m.rank_change,
                    "rating_before": m.rating_before,
                    "rating_now": m.rating_now,
                    "rating_change": None
                    if m.rating_before is None
                    else m.rating_now - m.rating_before,
                }
                for m in self.moves
            ],
            "new": list(self.new),
            "gone": list(self.gone),
        }


def rating_changes(
    *, campaign: Campaign, since: dt.datetime, until: dt.datetime | None = None
) -> Changes:
    """What changed on the campaign's leaderboard since ``since``: rank and rating moves, new
    contestants and those no longer rated (reads of one snapshot each); ``until``: as of
    then."""
    latest = _one(campaign, until, "-computed_at")
    before = _one(campaign, until, "-computed_at", computed_at__lte=since)
    after = before is None
    if before is None:
        oldest = _one(campaign, until, "computed_at")
        before = oldest if oldest is not None and (latest is None or oldest != latest) else None
    now_rows = {} if latest is None else {r.name: r for r in latest.rows}
    old_rows = {} if before is None else {r.name: r for r in before.rows}
    moves = tuple(
        Move(
            name=r.name,
            rank_before=None if r.name not in old_rows else old_rows[r.name].rank,
            rank_now=r.rank,
            rating_before=None if r.name not in old_rows else old_rows[r.name].rating,
            rating_now=r.rating,
        )
        for r in now_rows.values()
    )
    return Changes(
        since=since,
        before=before,
        now=latest,
        baseline_after_since=after and before is not None,
        moves=moves,
        new=tuple(name for name in now_rows if name not in old_rows),
        gone=tuple(name for name in old_rows if name not in now_rows),
    )


def _one(
    campaign: Campaign, until: dt.datetime | None, order: str, **filters: Any
) -> HistoryPoint | None:
    row = (
        _kept(campaign, until, **filters)
        .order_by(order, order.replace("computed_at", "id"))
        .values_list(
            "computed_at",
            "vote_count",
            "payload__leaderboard__settings__ci",
            "payload__leaderboard__contestants",
        )
        .first()
    )
    if row is None:
        return None
    at, n, ci, raw = row
    return HistoryPoint(
        computed_at=at, vote_count=int(n), ci=str(ci or "bootstrap"), rows=_rows(raw)
    )
