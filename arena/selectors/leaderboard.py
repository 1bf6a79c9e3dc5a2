"""Leaderboard reads: who may see a campaign's ratings, and the page built from the latest
stored snapshot. Nothing here computes ratings; pages only read what the recompute stored.

Access: a campaign with ``leaderboard_public`` shows its leaderboard to anyone; otherwise only
to staff (the team). Evaluators do not see a team-only leaderboard: knowing which model leads
would colour their next votes, and after a reveal they know the names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import gettext as _

from arena.models import Campaign, RatingSnapshot
from arena.services.ratings import campaign_scope, scope_parse

LeaderboardView = Literal["raw", "style"]
Refusal = Literal["not_found", "login_required", "forbidden", "no_scope"]

# Heatmaps show the top contestants only; the full matrices are in the JSON export.
MATRIX_LIMIT = 20
_PLOT_WIDTH = 640
_PLOT_LABEL = 220
_PLOT_ROW = 20


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
class PlotRow:
    name: str
    y: int
    x: float
    x_lower: float
    x_upper: float
    label_y: int


@dataclass(frozen=True)
class Plot:
    width: int
    height: int
    left: int
    ticks: list[tuple[float, str]]
    rows: list[PlotRow]


@dataclass(frozen=True)
class Cell:
    text: str
    title: str
    background: str
    foreground: str


@dataclass(frozen=True)
class Matrix:
    names: list[str]
    rows: list[tuple[str, list[Cell]]]


@dataclass(frozen=True)
class PositionBiasLine:
    share: float
    ci_lower: float
    ci_upper: float
    decisive: int


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
    rows: list[Row]
    hidden: list[tuple[str, int]]
    min_votes: int
    rounds: int
    both_bad_dropped: bool
    baseline: tuple[str, float] | None
    anchor_applied: bool
    components: int
    position_bias: PositionBiasLine | None
    plot: Plot | None
    win_rates: Matrix | None
    battles: Matrix | None
    matrix_total: int
    style_coefficients: dict[str, float]
    style_available: bool
    scopes: list[ScopeOption]


def _latest(campaign: Campaign, scope: str) -> RatingSnapshot | None:
    return (
        RatingSnapshot.objects.filter(campaign=campaign, scope=scope)
        .order_by("-computed_at", "-id")
        .only("scope", "vote_count", "payload", "computed_at")
        .first()
    )


def leaderboard_snapshot_get(*, campaign: Campaign, scope: str | None = None) -> RatingSnapshot:
    """The latest snapshot of ``scope`` (default: the whole campaign). Raises
    LeaderboardRefused("no_scope") for a scope of another campaign or one never stored."""
    key = scope or campaign_scope(campaign.pk)
    try:
        campaign_id, _kind, _value = scope_parse(key)
    except ValueError:
        raise LeaderboardRefused("no_scope") from None
    snapshot = _latest(campaign, key) if campaign_id == campaign.pk else None
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
    *, campaign: Campaign, scope: str | None = None, view: LeaderboardView = "raw"
) -> LeaderboardPage:
    """The leaderboard page of one scope, from the latest snapshots (two queries at most).
    Raises LeaderboardRefused("no_scope") for an unknown scope."""
    main_key = campaign_scope(campaign.pk)
    main = _latest(campaign, main_key)
    if main is None:
        if scope not in (None, "", main_key):
            raise LeaderboardRefused("no_scope")
        return _empty(campaign, "not_computed")
    snapshot = (
        main
        if scope in (None, "", main_key)
        else leaderboard_snapshot_get(campaign=campaign, scope=scope)
    )
    payload: dict[str, Any] = snapshot.payload
    scopes = [
        ScopeOption(
            key=str(s["scope"]),
            label=scope_label(str(s["kind"]), str(s["label"])),
            group=_scope_group(str(s["kind"])),
            votes=int(s["votes"]),
            selected=s["scope"] == snapshot.scope,
        )
        for s in main.payload.get("scopes", [])
    ]
    board = payload.get("leaderboard")
    if payload.get("status") != "ok" or not board:
        return _empty(campaign, "no_votes", scopes=scopes, computed_at=snapshot.computed_at)
    style = payload.get("style") or None
    rows = _style_rows(board, style) if view == "style" and style else _raw_rows(board)
    names = [c["name"] for c in board["contestants"]][:MATRIX_LIMIT]
    matrices = board["matrices"]
    bias = board.get("position_bias")
    settings = board["settings"]
    baseline = payload.get("baseline")
    return LeaderboardPage(
        campaign_id=campaign.pk,
        campaign_name=campaign.name,
        campaign_slug=campaign.slug,
        scope=snapshot.scope,
        scope_label=scope_label(str(payload["kind"]), str(payload["label"])),
        view="style" if view == "style" and style else "raw",
        status="ok",
        computed_at=snapshot.computed_at,
        vote_count=snapshot.vote_count,
        counted_votes=int(board["votes"]),
        rows=rows,
        hidden=[(h["name"], int(h["votes"])) for h in board["hidden"]],
        min_votes=int(settings["min_votes"]),
        rounds=int(settings["rounds"]),
        both_bad_dropped=bool(settings["drop_both_bad"]),
        baseline=None if not baseline else (str(baseline["name"]), float(baseline["rating"])),
        anchor_applied=bool(settings["anchor_applied"]),
        components=int(board["components"]),
        position_bias=None
        if not bias
        else PositionBiasLine(
            share=float(bias["share"]),
            ci_lower=float(bias["ci_lower"]),
            ci_upper=float(bias["ci_upper"]),
            decisive=int(bias["decisive"]),
        ),
        plot=_plot(_raw_rows(board)),
        win_rates=_matrix(names, matrices["battles"], matrices["observed_win_rate"]),
        battles=_matrix(names, matrices["battles"]),
        matrix_total=len(board["contestants"]),
        style_coefficients=dict((style or {}).get("coefficients_rating_points", {})),
        style_available=style is not None,
        scopes=scopes,
    )


def _empty(
    campaign: Campaign,
    status: Literal["no_votes", "not_computed"],
    *,
    scopes: list[ScopeOption] | None = None,
    computed_at: dt.datetime | None = None,
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
        rows=[],
        hidden=[],
        min_votes=0,
        rounds=0,
        both_bad_dropped=False,
        baseline=None,
        anchor_applied=False,
        components=0,
        position_bias=None,
        plot=None,
        win_rates=None,
        battles=None,
        matrix_total=0,
        style_coefficients={},
        style_available=False,
        scopes=scopes or [],
    )


def _raw_rows(board: dict[str, Any]) -> list[Row]:
    return [
        Row(
            rank=int(c["rank"]),
            name=str(c["name"]),
            rating=float(c["rating"]),
            ci_lower=float(c["ci_lower"]),
            ci_upper=float(c["ci_upper"]),
            votes=int(c["votes"]),
            win_rate=c["win_rate"],
            elo=c["elo"],
            raw_rating=None,
            component=int(c["component"]),
        )
        for c in board["contestants"]
    ]


def _style_rows(board: dict[str, Any], style: dict[str, Any]) -> list[Row]:
    """Style-adjusted ratings (no interval: the bootstrap runs on raw ratings only), ranked
    by the adjusted rating within each piece of the comparison graph."""
    raw = {c["name"]: c for c in board["contestants"]}
    rows = []
    for c in style["contestants"]:
        ahead = sum(
            1
            for other in style["contestants"]
            if other["component"] == c["component"] and other["rating"] > c["rating"]
        )
        base = raw.get(c["name"], {})
        rows.append(
            Row(
                rank=1 + ahead,
                name=str(c["name"]),
                rating=float(c["rating"]),
                ci_lower=None,
                ci_upper=None,
                votes=int(base.get("votes", 0)),
                win_rate=base.get("win_rate"),
                elo=base.get("elo"),
                raw_rating=float(c["raw_rating"]),
                component=int(c["component"]),
            )
        )
    return rows


def _plot(rows: list[Row]) -> Plot | None:
    """Geometry of the interval plot: one row per contestant, a bar from the lower to the
    upper bound and a dot at the rating."""
    if not rows:
        return None
    lows = [r.ci_lower if r.ci_lower is not None else r.rating for r in rows]
    highs = [r.ci_upper if r.ci_upper is not None else r.rating for r in rows]
    low, high = min(lows), max(highs)
    span = max(high - low, 1.0)
    low, high = low - 0.05 * span, high + 0.05 * span
    inner = _PLOT_WIDTH - _PLOT_LABEL - 10

    def x(value: float) -> float:
        return round(_PLOT_LABEL + (value - low) / (high - low) * inner, 1)

    step = _tick_step(high - low)
    first = (low // step + 1) * step
    ticks = []
    value = first
    while value < high:
        ticks.append((x(value), f"{value:.0f}"))
        value += step
    plot_rows = [
        PlotRow(
            name=r.name,
            y=20 + k * _PLOT_ROW,
            x=x(r.rating),
            x_lower=x(lo),
            x_upper=x(hi),
            label_y=24 + k * _PLOT_ROW,
        )
        for k, (r, lo, hi) in enumerate(zip(rows, lows, highs, strict=True))
    ]
    return Plot(
        width=_PLOT_WIDTH,
        height=30 + len(rows) * _PLOT_ROW,
        left=_PLOT_LABEL,
        ticks=ticks,
        rows=plot_rows,
    )


def _tick_step(span: float) -> float:
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if span / step <= 8:
            return float(step)
    return 2000.0


def _mix(colour: tuple[int, int, int], amount: float) -> str:
    """``colour`` blended with white; ``amount`` 0 is white, 1 is the colour."""
    amount = min(max(amount, 0.0), 1.0)
    r, g, b = (round(255 + (c - 255) * amount) for c in colour)
    return f"#{r:02x}{g:02x}{b:02x}"


_BLUE = (33, 102, 172)
_RED = (178, 24, 43)


def _win_cell(value: float | None, battles: int) -> Cell:
    if value is None or battles == 0:
        return Cell("", _("no battles"), "#f6f8fa", "#57606a")
    amount = min(abs(value - 0.5) * 4, 1.0)  # full colour at 0.25 and 0.75
    background = _mix(_BLUE if value >= 0.5 else _RED, amount)
    title = _("%(rate).0f%% over %(n)d battles") % {"rate": value * 100, "n": battles}
    return Cell(f"{value:.2f}", title, background, "#ffffff" if amount > 0.6 else "#1b1f24")


def _count_cell(battles: int, largest: int) -> Cell:
    if not battles:
        return Cell("", _("no battles"), "#ffffff", "#57606a")
    amount = (battles / max(largest, 1)) ** 0.5
    title = _("%(n)d battles") % {"n": battles}
    return Cell(str(battles), title, _mix(_BLUE, amount), "#ffffff" if amount > 0.6 else "#1b1f24")


_DIAGONAL = Cell("", "", "#eaeef2", "#57606a")


def _matrix(
    names: list[str],
    battles: list[list[int]],
    win_rates: list[list[float | None]] | None = None,
) -> Matrix:
    """A heatmap of the first ``len(names)`` contestants: win rates of the row over the
    column when ``win_rates`` is given, else battle counts."""
    k = len(names)
    largest = max((int(battles[i][j]) for i in range(k) for j in range(k)), default=0)
    rows = []
    for i in range(k):
        cells = []
        for j in range(k):
            n = int(battles[i][j])
            if i == j:
                cells.append(_DIAGONAL)
            elif win_rates is not None:
                cells.append(_win_cell(win_rates[i][j], n))
            else:
                cells.append(_count_cell(n, largest))
        rows.append((names[i], cells))
    return Matrix(names=names, rows=rows)


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
    """A stored snapshot as the JSON document the API and the JSON export both serve."""
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
    board = snapshot.payload.get("leaderboard") or {"contestants": []}
    style = {
        c["name"]: c["rating"] for c in (snapshot.payload.get("style") or {}).get("contestants", [])
    }
    return [
        {
            "rank": c["rank"],
            "contestant": c["name"],
            "rating": round(c["rating"], 2),
            "ci_lower": round(c["ci_lower"], 2),
            "ci_upper": round(c["ci_upper"], 2),
            "votes": c["votes"],
            "win_rate": None if c["win_rate"] is None else round(c["win_rate"], 4),
            "online_elo": None if c["elo"] is None else round(c["elo"], 2),
            "style_rating": None if c["name"] not in style else round(style[c["name"]], 2),
            "component": c["component"],
        }
        for c in board["contestants"]
    ]
