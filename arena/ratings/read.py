"""Leaderboard reads: who may see a campaign's ratings, and the page built from the latest
stored snapshot. Nothing here computes ratings; pages only read what the recompute stored.
The page is data only (rows, numbers); how it is drawn is the adapters' business
(`arena.leaderboard_view`).

Access: a campaign with ``leaderboard_public`` shows its leaderboard to anyone, as of the time
``public_refresh`` says (`leaderboard_until`); otherwise only to staff (the team). Evaluators
do not see a team-only leaderboard: knowing which model leads would colour their next votes,
and after a reveal they know the names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext as _

from arena.models import Campaign, Exclusion, RatingSnapshot
from arena.ratings.snapshot import (
    Board,
    FragilityEntry,
    Snapshot,
    StyleRatings,
    campaign_scope,
    scope_parse,
)

LeaderboardView = Literal["raw", "style"]
Refusal = Literal["not_found", "login_required", "forbidden", "no_scope", "held"]

# Heatmaps show the top contestants only; the full matrices are in the JSON export.
MATRIX_LIMIT = 20


class LeaderboardRefused(Exception):
    """Not shown: ``reason`` says why (the view turns it into 404, a login redirect or 403)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason)
        self.reason: Refusal = reason


def _may_see(campaign: Campaign, user: AbstractBaseUser | AnonymousUser) -> Campaign:
    if campaign.leaderboard_public:
        return campaign
    if not user.is_authenticated:
        raise LeaderboardRefused("login_required")
    if getattr(user, "is_staff", False):
        return campaign
    raise LeaderboardRefused("forbidden")


def leaderboard_until(
    *, campaign: Campaign, user: AbstractBaseUser | AnonymousUser, now: dt.datetime | None = None
) -> dt.datetime | None:
    """Up to when this reader sees the campaign's ratings: None for staff and for a public
    leaderboard set to move with every vote, the start of today (UTC) for one refreshed daily.
    Raises LeaderboardRefused("held") for one shown only after the campaign closes, while it is
    active. A leaderboard that moves with each vote tells an evaluator who has just voted which
    side's model it was (issue #11)."""
    if getattr(user, "is_staff", False) or campaign.public_refresh == Campaign.PublicRefresh.LIVE:
        return None
    if campaign.public_refresh == Campaign.PublicRefresh.DAILY:
        now = now or dj_timezone.now()
        return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if campaign.active:
        raise LeaderboardRefused("held")
    return None


def leaderboard_campaign_get(*, slug: str, user: AbstractBaseUser | AnonymousUser) -> Campaign:
    """The campaign whose leaderboard ``user`` asks for, if they may see it."""
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is None:
        raise LeaderboardRefused("not_found")
    return _may_see(campaign, user)


def leaderboard_campaign_get_by_id(
    *, campaign_id: int, user: AbstractBaseUser | AnonymousUser
) -> Campaign:
    """As `leaderboard_campaign_get`, by primary key (the websocket route carries the id)."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise LeaderboardRefused("not_found")
    return _may_see(campaign, user)


def leaderboard_listed(
    *, campaign: Campaign, user: AbstractBaseUser | AnonymousUser | None
) -> bool:
    """Whether the campaign list offers ``user`` a link to its leaderboard (one they can read)."""
    if user is not None and getattr(user, "is_staff", False):
        return True
    if not campaign.leaderboard_public:
        return False
    return not (campaign.public_refresh == Campaign.PublicRefresh.CLOSED and campaign.active)


def leaderboard_listen_check(*, campaign_id: int, user: AbstractBaseUser | AnonymousUser) -> None:
    """Whether ``user`` may be told when new snapshots are stored: only a reader who sees them
    as they come (`leaderboard_until` is None). Raises LeaderboardRefused otherwise, "held" for
    a frozen public view (the moment of an update alone would follow an evaluator's vote)."""
    campaign = leaderboard_campaign_get_by_id(campaign_id=campaign_id, user=user)
    if leaderboard_until(campaign=campaign, user=user) is not None:
        raise LeaderboardRefused("held")


# The page's objects -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScopeOption:
    key: str
    label: str
    group: str
    votes: int
    selected: bool


@dataclass(frozen=True)
class Row:
    rank: int
    name: str
    rating: float
    ci_lower: float | None
    ci_upper: float | None
    votes: int
    win_rate: float | None
    elo: float | None
    raw_rating: float | None  # style view: the raw rating beside the adjusted one
    component: int


@dataclass(frozen=True)
class PairMatrices:
    """Battles per pair and observed win rates of the row over the column (None where a pair
    never met), over the first ``len(names)`` contestants by raw rating."""

    names: list[str]
    battles: list[list[int]]
    win_rates: list[list[float | None]]


@dataclass(frozen=True)
class PositionBiasLine:
    share: float
    ci_lower: float
    ci_upper: float
    decisive: int


@dataclass(frozen=True)
class ExcludedReason:
    rule: str  # Exclusion.Rule's label, translated
    evaluators: int  # evaluator exclusions under this rule (0: chosen votes only)
    votes: int


@dataclass(frozen=True)
class QualityExcluded:
    """What the campaign's exclusions left out, per rule (no evaluator is named: the page
    may be public)."""

    votes: int
    evaluators: int
    reasons: list[ExcludedReason]
    everything_available: bool


def _quality_excluded(index: Snapshot) -> QualityExcluded | None:
    left_out = index.exclusions
    if left_out is None:
        return None
    rules = dict(Exclusion.Rule.choices)
    grouped: dict[str, list[int]] = {}
    for entry in left_out.exclusions:
        counts = grouped.setdefault(entry.rule, [0, 0])
        counts[0] += 1 if entry.evaluator else 0
        counts[1] += entry.votes
    return QualityExcluded(
        votes=left_out.votes,
        evaluators=left_out.evaluators,
        reasons=[
            ExcludedReason(rule=str(rules.get(rule, rule)), evaluators=n, votes=v)
            for rule, (n, v) in sorted(grouped.items())
        ],
        everything_available=index.with_excluded is not None,
    )


@dataclass(frozen=True)
class LeaderboardPage:
    campaign_id: int
    campaign_name: str
    campaign_slug: str
    scope: str
    scope_label: str
    view: LeaderboardView
    status: Literal["ok", "no_votes", "not_computed"]
    computed_at: dt.datetime | None
    vote_count: int
    counted_votes: int
    # Votes the campaign left out because an answer named a model (Campaign.tainted_votes).
    excluded_tainted: int
    rows: list[Row]
    raw_rows: list[Row]  # the raw ratings with their intervals, whichever the view
    hidden: list[tuple[str, int]]
    min_votes: int
    rounds: int
    both_bad_dropped: bool
    baseline: tuple[str, float] | None
    anchor_applied: bool
    components: int
    position_bias: PositionBiasLine | None
    pairs: PairMatrices | None
    matrix_total: int
    style_coefficients: dict[str, float]
    style_available: bool
    scopes: list[ScopeOption]
    # How the raw intervals were computed: "bootstrap" (the campaign) or "sandwich" (slices).
    ci: str = "bootstrap"
    # The campaign scope: votes it takes to swap each adjacent pair at the top.
    fragility: tuple[FragilityEntry, ...] = ()
    # Votes exclusions left out of the campaign's ratings (None: none), and whether this page
    # shows the campaign's ratings with them counted (``everything``).
    quality_excluded: QualityExcluded | None = None
    showing_everything: bool = False


def _latest(
    campaign: Campaign, scope: str, until: dt.datetime | None = None
) -> RatingSnapshot | None:
    rows = RatingSnapshot.objects.filter(campaign=campaign, scope=scope)
    if until is not None:
        rows = rows.filter(computed_at__lt=until)
    return (
        rows.order_by("-computed_at", "-id")
        .only("scope", "vote_count", "payload", "computed_at")
        .first()
    )


def leaderboard_snapshot_get(
    *, campaign: Campaign, scope: str | None = None, until: dt.datetime | None = None
) -> RatingSnapshot:
    """The latest snapshot of ``scope`` (default: the whole campaign) computed before ``until``
    (see `leaderboard_until`). Raises LeaderboardRefused("no_scope") for a scope of another
    campaign or one never stored."""
    key = scope or campaign_scope(campaign.pk)
    try:
        campaign_id, _kind, _value = scope_parse(key)
    except ValueError:
        raise LeaderboardRefused("no_scope") from None
    snapshot = _latest(campaign, key, until) if campaign_id == campaign.pk else None
    if snapshot is None:
        raise LeaderboardRefused("no_scope")
    return snapshot


def scope_label(kind: str, label: str) -> str:
    """A scope's name for people, translated."""
    if kind == "campaign":
        return _("All votes")
    if kind == "set":
        return _("Question set: %(name)s") % {"name": label}
    if kind == "category":
        return _("Category: %(name)s") % {"name": label}
    if kind == "language":
        return _("Language: %(name)s") % {"name": label}
    if kind == "days":
        return _("Last %(days)s days") % {"days": label}
    return label


def _scope_group(kind: str) -> str:
    return {
        "campaign": _("Campaign"),
        "set": _("Question sets"),
        "category": _("Categories"),
        "language": _("Languages"),
        "days": _("Date range"),
    }.get(kind, "")


def leaderboard_get(
    *,
    campaign: Campaign,
    scope: str | None = None,
    view: LeaderboardView = "raw",
    everything: bool = False,
    until: dt.datetime | None = None,
) -> LeaderboardPage:
    """The leaderboard page of one scope, from the latest snapshots (two queries at most).
    ``everything``: the campaign's ratings with the excluded votes counted (where the snapshot
    has them; the raw view only). ``until``: as of that time (`leaderboard_until`). Raises
    LeaderboardRefused("no_scope") for an unknown scope, SnapshotError for a stored payload of
    another schema."""
    main_key = campaign_scope(campaign.pk)
    main = _latest(campaign, main_key, until)
    if main is None:
        if scope not in (None, "", main_key):
            raise LeaderboardRefused("no_scope")
        return _empty(campaign, "not_computed")
    stored = (
        main
        if scope in (None, "", main_key)
        else leaderboard_snapshot_get(campaign=campaign, scope=scope, until=until)
    )
    index = Snapshot.from_json(main.payload)
    snapshot = index if stored is main else Snapshot.from_json(stored.payload)
    scopes = [
        ScopeOption(
            key=s.scope,
            label=scope_label(s.kind, s.label),
            group=_scope_group(s.kind),
            votes=int(s.votes),
            selected=s.scope == stored.scope,
        )
        for s in index.scopes or ()
    ]
    excluded = index.excluded_tainted or 0
    board = snapshot.leaderboard
    quality_excluded = _quality_excluded(index)
    showing_everything = bool(everything and stored is main and index.with_excluded is not None)
    if showing_everything:
        board = index.with_excluded
    if snapshot.status != "ok" or board is None:
        return _empty(
            campaign,
            "no_votes",
            scopes=scopes,
            computed_at=stored.computed_at,
            excluded_tainted=excluded,
        )
    style = None if showing_everything else snapshot.style
    raw_rows = _raw_rows(board)
    rows = _style_rows(board, style) if view == "style" and style else raw_rows
    names = [c.name for c in board.contestants][:MATRIX_LIMIT]
    k = len(names)
    bias = board.position_bias
    settings = board.settings
    baseline = snapshot.baseline
    return LeaderboardPage(
        campaign_id=campaign.pk,
        campaign_name=campaign.name,
        campaign_slug=campaign.slug,
        scope=stored.scope,
        scope_label=scope_label(snapshot.kind, snapshot.label),
        view="style" if view == "style" and style else "raw",
        status="ok",
        computed_at=stored.computed_at,
        vote_count=stored.vote_count,
        counted_votes=int(board.votes),
        excluded_tainted=excluded,
        rows=rows,
        raw_rows=raw_rows,
        hidden=[(h.name, int(h.votes)) for h in board.hidden],
        min_votes=int(settings.min_votes),
        rounds=int(settings.rounds),
        both_bad_dropped=bool(settings.drop_both_bad),
        baseline=None if baseline is None else (baseline.name, float(baseline.rating)),
        anchor_applied=bool(settings.anchor_applied),
        components=int(board.components),
        position_bias=None
        if bias is None
        else PositionBiasLine(
            share=float(bias.share),
            ci_lower=float(bias.ci_lower),
            ci_upper=float(bias.ci_upper),
            decisive=int(bias.decisive),
        ),
        pairs=PairMatrices(
            names=names,
            battles=[[int(n) for n in row[:k]] for row in board.matrices.battles[:k]],
            win_rates=[list(row[:k]) for row in board.matrices.observed_win_rate[:k]],
        ),
        matrix_total=len(board.contestants),
        style_coefficients=dict(style.coefficients_rating_points if style else {}),
        style_available=style is not None,
        scopes=scopes,
        ci=str(settings.ci),
        fragility=(snapshot.fragility or ()) if snapshot.kind == "campaign" else (),
        quality_excluded=quality_excluded,
        showing_everything=showing_everything,
    )


def _empty(
    campaign: Campaign,
    status: Literal["no_votes", "not_computed"],
    *,
    scopes: list[ScopeOption] | None = None,
    computed_at: dt.datetime | None = None,
    excluded_tainted: int = 0,
) -> LeaderboardPage:
    return LeaderboardPage(
        campaign_id=campaign.pk,
        campaign_name=campaign.name,
        campaign_slug=campaign.slug,
        scope=campaign_scope(campaign.pk),
        scope_label=scope_label("campaign", ""),
        view="raw",
        status=status,
        computed_at=computed_at,
        vote_count=0,
        counted_votes=0,
        excluded_tainted=excluded_tainted,
        rows=[],
        raw_rows=[],
        hidden=[],
        min_votes=0,
        rounds=0,
        both_bad_dropped=False,
        baseline=None,
        anchor_applied=False,
        components=0,
        position_bias=None,
        pairs=None,
        matrix_total=0,
        style_coefficients={},
        style_available=False,
        scopes=scopes or [],
    )


def _raw_rows(board: Board) -> list[Row]:
    return [
        Row(
            rank=int(c.rank),
            name=str(c.name),
            rating=float(c.rating),
            ci_lower=float(c.ci_lower),
            ci_upper=float(c.ci_upper),
            votes=int(c.votes),
            win_rate=c.win_rate,
            elo=c.elo,
            raw_rating=None,
            component=int(c.component),
        )
        for c in board.contestants
    ]


def _style_rows(board: Board, style: StyleRatings) -> list[Row]:
    """Style-adjusted ratings with their sandwich intervals, ranked as the raw ones are (1 +
    the contestants of the piece whose whole interval lies above); a payload stored before
    style intervals ranks by the adjusted rating alone and shows none."""
    raw = {c.name: c for c in board.contestants}
    rows = []
    for c in style.contestants:
        if c.ci_lower is not None and c.ci_upper is not None:
            ahead = sum(
                1
                for other in style.contestants
                if other.component == c.component
                and other.ci_lower is not None
                and other.ci_lower > c.ci_upper
            )
        else:
            ahead = sum(
                1
                for other in style.contestants
                if other.component == c.component and other.rating > c.rating
            )
        base = raw.get(c.name)
        rows.append(
            Row(
                rank=1 + ahead,
                name=str(c.name),
                rating=float(c.rating),
                ci_lower=c.ci_lower,
                ci_upper=c.ci_upper,
                votes=0 if base is None else int(base.votes),
                win_rate=None if base is None else base.win_rate,
                elo=None if base is None else base.elo,
                raw_rating=float(c.raw_rating),
                component=int(c.component),
            )
        )
    return rows


EXPORT_COLUMNS = (
    "rank",
    "contestant",
    "rating",
    "ci_lower",
    "ci_upper",
    "votes",
    "win_rate",
    "online_elo",
    "style_rating",
    "component",
)


def leaderboard_document(*, campaign: Campaign, snapshot: RatingSnapshot) -> dict[str, Any]:
    """A stored snapshot as the JSON document the API and the JSON export both serve (its
    ``snapshot`` is the stored payload itself, see `arena.ratings.snapshot`)."""
    return {
        "campaign": campaign.slug,
        "scope": snapshot.scope,
        "computed_at": snapshot.computed_at.isoformat(),
        "vote_count": snapshot.vote_count,
        "snapshot": snapshot.payload,
    }


def leaderboard_export_rows(snapshot: RatingSnapshot) -> list[dict[str, Any]]:
    """One row per rated contestant of a snapshot, raw and style-adjusted ratings side by
    side, in rank order (`EXPORT_COLUMNS`)."""
    stored = Snapshot.from_json(snapshot.payload)
    contestants = () if stored.leaderboard is None else stored.leaderboard.contestants
    style = {c.name: c.rating for c in (stored.style.contestants if stored.style else ())}
    return [
        {
            "rank": c.rank,
            "contestant": c.name,
            "rating": round(c.rating, 2),
            "ci_lower": round(c.ci_lower, 2),
            "ci_upper": round(c.ci_upper, 2),
            "votes": c.votes,
            "win_rate": None if c.win_rate is None else round(c.win_rate, 4),
            "online_elo": None if c.elo is None else round(c.elo, 2),
            "style_rating": None if c.name not in style else round(style[c.name], 2),
            "component": c.component,
        }
        for c in contestants
    ]


def leaderboard_rows(board: Board) -> list[Row]:
    """The raw rows of a stored or freshly computed board, as the page lists them."""
    return _raw_rows(board)


def leaderboard_table(rows: list[Row]) -> str:
    """The leaderboard page's table as plain text, with the page's rounding: rank, contestant,
    rating, 95% interval, votes, win rate, online Elo (what `manage.py rate_file` prints)."""
    header = ("rank", "contestant", "rating", "95% interval", "votes", "win rate", "online Elo")
    body = [
        (
            str(r.rank),
            r.name,
            f"{r.rating:.1f}",
            ""
            if r.ci_lower is None or r.ci_upper is None
            else f"{r.ci_lower:.1f} – {r.ci_upper:.1f}",
            f"{r.votes:,}",
            "–" if r.win_rate is None else f"{r.win_rate:.3f}",
            "–" if r.elo is None else f"{r.elo:.1f}",
        )
        for r in rows
    ]
    widths = [max(len(line[k]) for line in [header, *body]) for k in range(len(header))]
    left = {1}
    return "\n".join(
        "  ".join(
            cell.ljust(widths[k]) if k in left else cell.rjust(widths[k])
            for k, cell in enumerate(line)
        ).rstrip()
        for line in [header, *body]
    )
