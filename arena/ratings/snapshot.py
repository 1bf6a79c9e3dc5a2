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
from contextvars import ContextVar
from dataclasses import MISSING, Field, dataclass, fields
from types import NoneType, UnionType
from typing import Any, ClassVar, Literal, Self, cast, get_args, get_origin, get_type_hints
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


class _Record:
    """A frozen dataclass stored as a JSON object of its fields, in declaration order (the order
    they have always been written: keep it). Nested records are their JSON, tuples lists, dicts
    copies, datetimes ISO strings; ``from_json`` rebuilds them from the fields' annotations. A
    field with a default may be absent from the payload."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def to_json(self) -> Json:
        return {f.name: _dump(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        hints = _hints(cls)
        return cls(
            **{
                f.name: _load(hints[f.name], data[f.name])
                for f in fields(cls)
                if f.name in data or (f.default is MISSING and f.default_factory is MISSING)
            }
        )


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a record class (resolved once: they are strings here)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


_SCALARS = frozenset({float, int, str, bool, NoneType})
# While `dump_shared` runs: the JSON of each record dumped so far, by id (all stay alive).
_shared: ContextVar[dict[int, Any] | None] = ContextVar("snapshot_shared_dumps", default=None)


def dump_shared(records: Sequence[_Record]) -> list[Json]:
    """``to_json`` of each record, where a record several of them hold (a slice's leaderboard
    that is the campaign's own, say) is dumped once and its JSON shared between them: the
    results must then be read, not changed."""
    token = _shared.set({})
    try:
        return [record.to_json() for record in records]
    finally:
        _shared.reset(token)


def _dump(value: Any) -> Any:
    if isinstance(value, _Record):
        shared = _shared.get()
        if shared is None:
            return value.to_json()
        if id(value) not in shared:
            shared[id(value)] = value.to_json()
        return shared[id(value)]
    if isinstance(value, tuple):
        # Rows of a matrix are tuples of numbers: copied as they are, not item by item.
        if all(type(item) in _SCALARS for item in value):
            return list(value)
        return [_dump(item) for item in value]
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


_PLAIN: dict[Any, bool] = {}


def _plain(hint: Any) -> bool:
    """Whether JSON values of ``hint`` are the values themselves (numbers, strings, None)."""
    if hint not in _PLAIN:
        parts = get_args(hint) if get_origin(hint) is UnionType else (hint,)
        _PLAIN[hint] = all(part in (int, float, str, bool, NoneType) for part in parts)
    return _PLAIN[hint]


def _load(hint: Any, raw: Any) -> Any:
    """The JSON value `raw` as a value of the annotation `hint`."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is UnionType:  # X | None
        (inner,) = (arg for arg in args if arg is not NoneType)
        return None if raw is None else _load(inner, raw)
    if origin is tuple:  # tuple[X, ...]
        if _plain(args[0]):
            return tuple(raw)
        inner = get_args(args[0])
        if get_origin(args[0]) is tuple and _plain(inner[0]):
            # Matrices: 129 x 129 numbers load as rows of tuples, not number by number.
            return tuple(tuple(row) for row in raw)
        return tuple(_load(args[0], item) for item in raw)
    if origin is dict:
        return dict(raw)
    if hint is dt.datetime:
        return dt.datetime.fromisoformat(raw)
    if isinstance(hint, type) and issubclass(hint, _Record):
        return hint.from_json(raw)
    return raw


@dataclass(frozen=True, kw_only=True)
class CampaignRef(_Record):
    id: int
    slug: str
    name: str


@dataclass(frozen=True, kw_only=True)
class RatingAnchor(_Record):
    """A contestant held at a fixed rating (the campaign's baseline)."""

    name: str
    rating: float


@dataclass(frozen=True, kw_only=True)
class BoardSettings(_Record):
    ci: str
    rounds: int
    seed: int
    anchor: RatingAnchor | None
    anchor_applied: bool
    drop_both_bad: bool
    min_votes: int
    alpha: float


@dataclass(frozen=True, kw_only=True)
class BoardRow(_Record):
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


@dataclass(frozen=True, kw_only=True)
class HiddenContestant(_Record):
    """A contestant with too few votes in the scope to be rated."""

    name: str
    votes: int


@dataclass(frozen=True, kw_only=True)
class Matrices(_Record):
    """Pair matrices over the rated contestants, in rating order (row against column);
    undefined win rates are None."""

    names: tuple[str, ...]
    battles: tuple[tuple[int, ...], ...]
    observed_win_rate: tuple[tuple[float | None, ...], ...]
    predicted_win_rate: tuple[tuple[float | None, ...], ...]


@dataclass(frozen=True, kw_only=True)
class PositionBiasFigures(_Record):
    """Share of decisive votes won by side a, with its 95% Wilson interval."""

    decisive: int
    a_wins: int
    share: float
    ci_lower: float
    ci_upper: float


@dataclass(frozen=True, kw_only=True)
class Board(_Record):
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


@dataclass(frozen=True, kw_only=True)
class StyleRow(_Record):
    name: str
    rating: float
    raw_rating: float
    component: int
    # The adjusted rating's 95% sandwich interval; absent from payloads stored before it.
    ci_lower: float | None = None
    ci_upper: float | None = None

    def to_json(self) -> Json:
        out = super().to_json()
        if self.ci_lower is None:
            del out["ci_lower"], out["ci_upper"]
        return out


@dataclass(frozen=True, kw_only=True)
class StyleRatings(_Record):
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


@dataclass(frozen=True, kw_only=True)
class FragilityEntry(_Record):
    """``upper`` (at ``place`` by rating) stays above the next one, ``lower``, unless ``votes``
    of ``total`` votes are removed (None: not within ``searched`` votes); ``estimate`` is the
    first-order count before the refits."""

    place: int
    upper: str
    lower: str
    votes: int | None
    estimate: int | None
    total: int
    searched: int


@dataclass(frozen=True, kw_only=True)
class ScopeEntry(_Record):
    """One stored scope of a campaign, as the campaign's own snapshot lists them."""

    scope: str
    kind: ScopeKind
    value: str
    label: str
    votes: int


@dataclass(frozen=True, kw_only=True)
class ExclusionEntry(_Record):
    """One active exclusion (`arena.models.Exclusion`): every vote of one evaluator, or chosen
    votes, and how many otherwise counted votes it covers. It names no evaluator (the payload
    is served as it is, on public leaderboards too): the row of ``id`` does."""

    id: int
    rule: str
    reason: str
    evaluator: bool
    votes: int


@dataclass(frozen=True, kw_only=True)
class ExclusionSet(_Record):
    """What the campaign's ratings left out by exclusion: ``votes`` from ``evaluators``
    evaluators (votes that would otherwise count), and each active exclusion."""

    votes: int
    evaluators: int
    exclusions: tuple[ExclusionEntry, ...]


@dataclass(frozen=True, kw_only=True)
class Snapshot(_Record):
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
    # The campaign's own snapshot, where the campaign leaves tainted votes out
    # (Campaign.tainted_votes): how many it left out. Absent from the payload otherwise.
    excluded_tainted: int | None = None
    # The campaign's own snapshot, where exclusions left votes out: the exclusion set, and the
    # leaderboard with those votes counted (the page's "show everything"). Absent otherwise.
    exclusions: ExclusionSet | None = None
    with_excluded: Board | None = None
    # The campaign's own snapshot: how many votes it takes to swap each adjacent pair at the
    # top (`arena.ranking.fragility`). Absent from the payload otherwise.
    fragility: tuple[FragilityEntry, ...] | None = None

    def to_json(self) -> Json:
        """The payload to store (keys in the order they have always been written)."""
        out = super().to_json()
        if self.excluded_tainted is None:
            del out["excluded_tainted"]
        if self.fragility is None:
            del out["fragility"]
        for key in ("exclusions", "with_excluded"):
            if out[key] is None:
                del out[key]
        if self.scopes is None:
            del out["scopes"], out["last_vote_id"]
        elif self.status == "no_votes":
            # A campaign's snapshot without votes has always had last_vote_id after vote_count.
            keys = [k for k in out if k != "last_vote_id"]
            keys.insert(keys.index("same_as_campaign"), "last_vote_id")
            out = {key: out[key] for key in keys}
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
            return super().from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"not a snapshot payload of schema {SCHEMA}: {exc!r}") from exc
