"""The stored rating snapshot, typed: what `RatingSnapshot.payload` holds, and its scope keys.

Writers build a `Snapshot` and store ``to_json()``; readers take ``Snapshot.from_json(payload)``
and use attributes, never string keys. ``from_json(x).to_json() == x`` for every payload this
schema describes (the JSON the API serves is the stored payload itself); a payload of another
schema version is refused with `SnapshotError`.

Scopes of a campaign (``<value>`` percent-quoted, so ``|`` and ``:`` cannot appear in it):

    campaign:<id>                   every vote
    campaign:<id>|set:<set id>      votes on questions of one question set
    campaign:<id>|category:<c>      … of one category (questions with a category only)
    campaign:<id>|language:<l>      … of one language
    campaign:<id>|days:<n>          votes of the last n days
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args
from urllib.parse import quote, unquote

SCHEMA = 1

ScopeKind = Literal["campaign", "set", "category", "language", "days"]
Status = Literal["ok", "no_votes"]
_KINDS: tuple[str, ...] = get_args(ScopeKind)

Json = dict[str, Any]


class SnapshotError(ValueError):
    """A payload this code cannot read: another schema version, or not a snapshot at all."""


# Scopes --------------------------------------------------------------------------------------


def campaign_scope(campaign_id: int) -> str:
    """The scope key of a campaign's whole leaderboard."""
    return f"campaign:{campaign_id}"


def scope_key(campaign_id: int, kind: ScopeKind = "campaign", value: str = "") -> str:
    """The scope key of a slice of a campaign's votes."""
    if kind == "campaign":
        return campaign_scope(campaign_id)
    return f"{campaign_scope(campaign_id)}|{kind}:{quote(value, safe='')}"


def scope_parse(key: str) -> tuple[int, ScopeKind, str]:
    """(campaign id, kind, value) of a scope key; ValueError if it is not one."""
    head, bar, tail = key.partition("|")
    prefix, _sep, campaign = head.partition(":")
    if prefix != "campaign" or not campaign.isdigit():
        raise ValueError(f"not a scope key: {key!r}")
    if not bar:
        return int(campaign), "campaign", ""
    kind, sep, value = tail.partition(":")
    if not sep or kind == "campaign" or kind not in _KINDS:
        raise ValueError(f"not a scope key: {key!r}")
    return int(campaign), cast(ScopeKind, kind), unquote(value)


def leaderboard_group(campaign_id: int) -> str:
    """The channel group that hears about a campaign's new snapshots."""
    return f"leaderboard.{campaign_id}"


# The payload ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CampaignRef:
    id: int
    slug: str
    name: str

    def to_json(self) -> Json:
        return {"id": self.id, "slug": self.slug, "name": self.name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CampaignRef:
        return cls(id=data["id"], slug=data["slug"], name=data["name"])


@dataclass(frozen=True, kw_only=True)
class RatingAnchor:
    """A contestant held at a fixed rating (the campaign's baseline)."""

    name: str
    rating: float

    def to_json(self) -> Json:
        return {"name": self.name, "rating": self.rating}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RatingAnchor | None:
        return None if data is None else cls(name=data["name"], rating=data["rating"])


@dataclass(frozen=True, kw_only=True)
class BoardSettings:
    ci: str
    rounds: int
    seed: int
    anchor: RatingAnchor | None
    anchor_applied: bool
    drop_both_bad: bool
    min_votes: int
    alpha: float

    def to_json(self) -> Json:
        return {
            "ci": self.ci,
            "rounds": self.rounds,
            "seed": self.seed,
            "anchor": None if self.anchor is None else self.anchor.to_json(),
            "anchor_applied": self.anchor_applied,
            "drop_both_bad": self.drop_both_bad,
            "min_votes": self.min_votes,
            "alpha": self.alpha,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BoardSettings:
        return cls(
            ci=data["ci"],
            rounds=data["rounds"],
            seed=data["seed"],
            anchor=RatingAnchor.from_json(data["anchor"]),
            anchor_applied=data["anchor_applied"],
            drop_both_bad=data["drop_both_bad"],
            min_votes=data["min_votes"],
            alpha=data["alpha"],
        )


@dataclass(frozen=True, kw_only=True)
class BoardRow:
    """One rated contestant (`arena.ranking.Standing` as stored)."""

    name: str
    rating: float
    ci_lower: float
    ci_upper: float
    rank: int
    votes: int
    win_rate: float | None
    component: int
    elo: float | None

    def to_json(self) -> Json:
        return {
            "name": self.name,
            "rating": self.rating,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "rank": self.rank,
            "votes": self.votes,
            "win_rate": self.win_rate,
            "component": self.component,
            "elo": self.elo,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BoardRow:
        return cls(
            name=data["name"],
            rating=data["rating"],
            ci_lower=data["ci_lower"],
            ci_upper=data["ci_upper"],
            rank=data["rank"],
            votes=data["votes"],
            win_rate=data["win_rate"],
            component=data["component"],
            elo=data["elo"],
        )


@dataclass(frozen=True, kw_only=True)
class HiddenContestant:
    """A contestant with too few votes in the scope to be rated."""

    name: str
    votes: int

    def to_json(self) -> Json:
        return {"name": self.name, "votes": self.votes}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HiddenContestant:
        return cls(name=data["name"], votes=data["votes"])


def _grid(rows: Sequence[Sequence[Any]]) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(row) for row in rows)


@dataclass(frozen=True, kw_only=True)
class Matrices:
    """Pair matrices over the rated contestants, in rating order (row against column);
    undefined win rates are None."""

    names: tuple[str, ...]
    battles: tuple[tuple[int, ...], ...]
    observed_win_rate: tuple[tuple[float | None, ...], ...]
    predicted_win_rate: tuple[tuple[float | None, ...], ...]

    def to_json(self) -> Json:
        return {
            "names": list(self.names),
            "battles": [list(row) for row in self.battles],
            "observed_win_rate": [list(row) for row in self.observed_win_rate],
            "predicted_win_rate": [list(row) for row in self.predicted_win_rate],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Matrices:
        return cls(
            names=tuple(data["names"]),
            battles=_grid(data["battles"]),
            observed_win_rate=_grid(data["observed_win_rate"]),
            predicted_win_rate=_grid(data["predicted_win_rate"]),
        )


@dataclass(frozen=True, kw_only=True)
class PositionBiasFigures:
    """Share of decisive votes won by side a, with its 95% Wilson interval."""

    decisive: int
    a_wins: int
    share: float
    ci_lower: float
    ci_upper: float

    def to_json(self) -> Json:
        return {
            "decisive": self.decisive,
            "a_wins": self.a_wins,
            "share": self.share,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PositionBiasFigures | None:
        if data is None:
            return None
        return cls(
            decisive=data["decisive"],
            a_wins=data["a_wins"],
            share=data["share"],
            ci_lower=data["ci_lower"],
            ci_upper=data["ci_upper"],
        )


@dataclass(frozen=True, kw_only=True)
class Board:
    """The raw leaderboard of one scope (`arena.ranking.Leaderboard.to_json` as stored)."""

    method: str
    scale: float
    base: float
    settings: BoardSettings
    votes: int
    components: int
    contestants: tuple[BoardRow, ...]
    hidden: tuple[HiddenContestant, ...]
    matrices: Matrices
    position_bias: PositionBiasFigures | None

    def to_json(self) -> Json:
        return {
            "method": self.method,
            "scale": self.scale,
            "base": self.base,
            "settings": self.settings.to_json(),
            "votes": self.votes,
            "components": self.components,
            "contestants": [c.to_json() for c in self.contestants],
            "hidden": [h.to_json() for h in self.hidden],
            "matrices": self.matrices.to_json(),
            "position_bias": None if self.position_bias is None else self.position_bias.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Board:
        return cls(
            method=data["method"],
            scale=data["scale"],
            base=data["base"],
            settings=BoardSettings.from_json(data["settings"]),
            votes=data["votes"],
            components=data["components"],
            contestants=tuple(BoardRow.from_json(c) for c in data["contestants"]),
            hidden=tuple(HiddenContestant.from_json(h) for h in data["hidden"]),
            matrices=Matrices.from_json(data["matrices"]),
            position_bias=PositionBiasFigures.from_json(data["position_bias"]),
        )


@dataclass(frozen=True, kw_only=True)
class StyleRow:
    name: str
    rating: float
    raw_rating: float
    component: int

    def to_json(self) -> Json:
        return {
            "name": self.name,
            "rating": self.rating,
            "raw_rating": self.raw_rating,
            "component": self.component,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StyleRow:
        return cls(
            name=data["name"],
            rating=data["rating"],
            raw_rating=data["raw_rating"],
            component=data["component"],
        )


@dataclass(frozen=True, kw_only=True)
class StyleRatings:
    """Style-controlled ratings of one scope (`arena.ranking.StyleControl.to_json` as stored);
    contestants by adjusted rating."""

    method: str
    votes: int
    features: tuple[str, ...]
    coefficients: dict[str, float]
    coefficients_rating_points: dict[str, float]
    feature_mean: dict[str, float]
    feature_std: dict[str, float]
    contestants: tuple[StyleRow, ...]

    def to_json(self) -> Json:
        return {
            "method": self.method,
            "votes": self.votes,
            "features": list(self.features),
            "coefficients": dict(self.coefficients),
            "coefficients_rating_points": dict(self.coefficients_rating_points),
            "feature_mean": dict(self.feature_mean),
            "feature_std": dict(self.feature_std),
            "contestants": [c.to_json() for c in self.contestants],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> StyleRatings | None:
        if data is None:
            return None
        return cls(
            method=data["method"],
            votes=data["votes"],
            features=tuple(data["features"]),
            coefficients=dict(data["coefficients"]),
            coefficients_rating_points=dict(data["coefficients_rating_points"]),
            feature_mean=dict(data["feature_mean"]),
            feature_std=dict(data["feature_std"]),
            contestants=tuple(StyleRow.from_json(c) for c in data["contestants"]),
        )


@dataclass(frozen=True, kw_only=True)
class ScopeEntry:
    """One stored scope of a campaign, as the campaign's own snapshot lists them."""

    scope: str
    kind: ScopeKind
    value: str
    label: str
    votes: int

    def to_json(self) -> Json:
        return {
            "scope": self.scope,
            "kind": self.kind,
            "value": self.value,
            "label": self.label,
            "votes": self.votes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScopeEntry:
        return cls(
            scope=data["scope"],
            kind=data["kind"],
            value=data["value"],
            label=data["label"],
            votes=data["votes"],
        )


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """One scope's stored figures. ``leaderboard`` and ``style`` are None without votes (and
    ``style`` with fewer than two rated contestants). ``scopes`` (the index of every stored
    scope) and ``last_vote_id`` belong to the campaign's own snapshot only: None on a slice's,
    whose payload has neither key."""

    schema: int = SCHEMA
    campaign: CampaignRef
    computed_at: dt.datetime
    min_votes: int
    both_bad: str
    baseline: RatingAnchor | None
    rounds: int
    scope: str
    kind: ScopeKind
    value: str
    label: str
    status: Status
    vote_count: int
    same_as_campaign: bool
    leaderboard: Board | None
    style: StyleRatings | None
    scopes: tuple[ScopeEntry, ...] | None = None
    last_vote_id: int | None = None

    def to_json(self) -> Json:
        """The payload to store (keys in the order they have always been written)."""
        main = self.scopes is not None
        out: Json = {
            "schema": self.schema,
            "campaign": self.campaign.to_json(),
            "computed_at": self.computed_at.isoformat(),
            "min_votes": self.min_votes,
            "both_bad": self.both_bad,
            "baseline": None if self.baseline is None else self.baseline.to_json(),
            "rounds": self.rounds,
            "scope": self.scope,
            "kind": self.kind,
            "value": self.value,
            "label": self.label,
            "status": self.status,
            "vote_count": self.vote_count,
        }
        if main and self.status == "no_votes":
            out["last_vote_id"] = self.last_vote_id
        out["same_as_campaign"] = self.same_as_campaign
        out["leaderboard"] = None if self.leaderboard is None else self.leaderboard.to_json()
        out["style"] = None if self.style is None else self.style.to_json()
        if self.scopes is not None:
            out["scopes"] = [s.to_json() for s in self.scopes]
            out.setdefault("last_vote_id", self.last_vote_id)
        return out

    @classmethod
    def from_json(cls, data: Any) -> Snapshot:
        """The snapshot a stored payload describes. SnapshotError for a payload of another
        schema version (recompute the campaign to rewrite it) or one that is not a snapshot."""
        if not isinstance(data, Mapping):
            raise SnapshotError(f"a snapshot payload is a JSON object, not {type(data).__name__}")
        schema = data.get("schema")
        if schema != SCHEMA:
            raise SnapshotError(
                f"snapshot payload has schema version {schema!r}, this code reads version "
                f"{SCHEMA}: recompute the campaign's ratings to rewrite it"
            )
        try:
            scopes, board = data.get("scopes"), data["leaderboard"]
            return cls(
                schema=schema,
                campaign=CampaignRef.from_json(data["campaign"]),
                computed_at=dt.datetime.fromisoformat(data["computed_at"]),
                min_votes=data["min_votes"],
                both_bad=data["both_bad"],
                baseline=RatingAnchor.from_json(data["baseline"]),
                rounds=data["rounds"],
                scope=data["scope"],
                kind=data["kind"],
                value=data["value"],
                label=data["label"],
                status=data["status"],
                vote_count=data["vote_count"],
                same_as_campaign=data["same_as_campaign"],
                leaderboard=None if board is None else Board.from_json(board),
                style=StyleRatings.from_json(data["style"]),
                scopes=None if scopes is None else tuple(ScopeEntry.from_json(s) for s in scopes),
                last_vote_id=data.get("last_vote_id"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"not a snapshot payload of schema {SCHEMA}: {exc!r}") from exc
