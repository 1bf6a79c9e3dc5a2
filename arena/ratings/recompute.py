"""Rating snapshots: count a campaign's votes in the database (`arena.ratings.store`), rate
every scope with `arena.ranking`, store one snapshot per scope, and tell open leaderboard pages
after commit.

The scopes (see `arena.ratings.snapshot`) are the campaign, each question set, category and
language, and the last 7 and 30 days. Every scope is cut in numpy from the rows the database
counted once; no vote row is ever turned into a Python object.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arena import dispatch
from arena.models import Campaign
from arena.ranking import (
    BOOTSTRAP_THREADS,
    Cells,
    Outcome,
    bt_fit,
    elo_online,
    leaderboard,
    style_control,
)
from arena.ranking.fragility import top_fragility
from arena.ratings.snapshot import (
    SCHEMA,
    Board,
    CampaignRef,
    FragilityEntry,
    RatingAnchor,
    ScopeEntry,
    ScopeKind,
    Snapshot,
    StyleRatings,
    campaign_scope,
    leaderboard_group,
    scope_key,
)
from arena.ratings.store import (
    DATE_RANGES,
    Answers,
    FloatArray,
    Groups,
    IntArray,
    Ordered,
    Questions,
    Votes,
    active_campaign_ids,
    exclusion_set_read,
    rating_campaign_get,
    snapshot_is_stale,
    snapshots_replace,
    tainted_excluded,
    vote_weights,
    votes_exclusion_sync,
    votes_read,
)

# A contestant with fewer votes than this in a scope is listed as hidden, not rated: a handful
# of votes gives an interval so wide that its rank would mislead.
MIN_VOTES = 5
BOOTSTRAP_SEED = 0
# The campaign scope's bootstrap runs its batches on threads (numpy releases the GIL in the
# draws and the maths); its figures depend on the seed only, not on this number.
BOOTSTRAP_WORKERS = BOOTSTRAP_THREADS
# Fragility of the top: adjacent pairs among the first FRAGILITY_TOP, searched up to this share
# of the votes.
FRAGILITY_TOP = 5
FRAGILITY_MAX_SHARE = 0.2


# Rating one scope ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slice:
    kind: ScopeKind
    value: str
    label: str
    weight: IntArray  # votes of each group that fall in this slice
    in_order: npt.NDArray[np.bool_]  # which of the ordered votes fall in it

    @property
    def votes(self) -> int:
        return int(self.weight.sum())


def _slices(data: Votes) -> list[_Slice]:
    """The campaign, then each question set, category and language, then the date ranges."""
    groups, questions, ordered = data.groups, data.questions, data.ordered
    result = [_Slice("campaign", "", "", groups.count, np.ones(ordered.ia.size, dtype=np.bool_))]
    keys: list[tuple[ScopeKind, npt.NDArray[Any]]] = [
        ("set", questions.question_set),
        ("category", questions.category),
        ("language", questions.language),
    ]
    for kind, per_question in keys:
        for value in sorted({v for v in per_question.tolist() if v != ""}, key=str):
            chosen = per_question == value
            label = questions.set_names.get(value, "") if kind == "set" else str(value)
            weight = np.where(chosen[groups.question], groups.count, 0)
            result.append(_Slice(kind, str(value), label, weight, chosen[ordered.question]))
    for days in DATE_RANGES:
        recent = groups.recent[days]
        # Votes are ordered by time, so those of the last `days` days are a suffix of them.
        tail = np.zeros(ordered.ia.size, dtype=np.bool_)
        tail[ordered.ia.size - int(recent.sum()) :] = True
        result.append(_Slice("days", str(days), str(days), recent, tail))
    return result


def _cells(
    ia: IntArray,
    ib: IntArray,
    outcome: IntArray,
    weight: IntArray,
    n: int,
    vote_weight: npt.NDArray[np.float64] | None = None,
) -> Cells:
    """Cells from rows the database already counted (several rows may share a cell);
    ``vote_weight``: each row's mean vote weight (`Groups.weight`), kept per cell."""
    keys = (ia * n + ib) * len(Outcome) + outcome
    present, inverse = np.unique(keys, return_inverse=True)
    count = np.bincount(inverse.reshape(-1), weights=weight, minlength=present.size)
    mean_weight = None
    if vote_weight is not None:
        weighted = np.bincount(
            inverse.reshape(-1), weights=weight * vote_weight, minlength=present.size
        )
        mean_weight = weighted / np.maximum(count, 1)
    pair, code = np.divmod(present, len(Outcome))
    i, j = np.divmod(pair, max(n, 1))
    return Cells(
        n_models=n,
        i=i.astype(np.int64),
        j=j.astype(np.int64),
        outcome=code.astype(np.int64),
        count=np.rint(count).astype(np.int64),
        sided=True,
        weight=mean_weight,
    )


@dataclass(frozen=True)
class _Settings:
    rounds: int
    drop_both_bad: bool
    anchor: tuple[str, float] | None
    # Threads for the campaign scope's bootstrap (`arena.ranking.bootstrap_theta`).
    workers: int = BOOTSTRAP_WORKERS


def _rate(
    data: Votes, piece: _Slice, how: _Settings, *, with_style: bool = True
) -> tuple[Board, StyleRatings | None]:
    """The raw leaderboard (with online Elo) and the style-controlled ratings of one slice."""
    board = _board(data, piece, how)
    return board, _style_of(data, piece, board, how) if with_style else None


def _style_of(data: Votes, piece: _Slice, board: Board, how: _Settings) -> StyleRatings | None:
    """The style-controlled ratings of one slice over its leaderboard's contestants."""
    shown = [c.name for c in board.contestants]
    if len(shown) < 2 or board.votes <= 0:
        return None
    return _style(data, piece.weight > 0, piece.weight, shown, how)


def _board(data: Votes, piece: _Slice, how: _Settings) -> Board:
    """The raw leaderboard of one slice, with online Elo."""
    groups, ordered = data.groups, data.ordered
    keep = piece.weight > 0
    ia, ib, outcome, weight = (
        groups.ia[keep],
        groups.ib[keep],
        groups.outcome[keep],
        piece.weight[keep],
    )
    present = np.unique(np.concatenate([ia, ib]))
    local = np.full(len(data.names), -1, dtype=np.int64)
    local[present] = np.arange(present.size)
    names = [data.names[k] for k in present.tolist()]
    vote_weight = None if groups.weight is None else groups.weight[keep]
    cells = _cells(local[ia], local[ib], outcome, weight, present.size, vote_weight)

    def elo() -> FloatArray:
        return elo_online(
            local[ordered.ia[piece.in_order]],
            local[ordered.ib[piece.in_order]],
            ordered.outcome[piece.in_order],
            present.size,
            drop_both_bad=how.drop_both_bad,
        )

    # The campaign's own ratings keep the bootstrap; a slice's intervals come from the
    # sandwich variance, a matrix product instead of a thousand refits (the page says which).
    main = piece.kind == "campaign"
    board = leaderboard(
        cells,
        names,
        rounds=how.rounds,
        seed=BOOTSTRAP_SEED,
        anchor=how.anchor,
        drop_both_bad=how.drop_both_bad,
        min_votes=MIN_VOTES,
        online_elo=elo,  # on a thread of its own beside the campaign's bootstrap
        ci="bootstrap" if main else "sandwich",
        workers=how.workers if main else 0,
    )
    # The ranking's own JSON (NaN made None, matrices rounded) is what the snapshot types.
    return Board.from_json(board.to_json())


def _style(
    data: Votes,
    keep: npt.NDArray[np.bool_],
    weight: IntArray,
    shown: Sequence[str],
    how: _Settings,
) -> StyleRatings | None:
    """Style-controlled ratings over the shown contestants' votes, from the counted groups
    (each row weighted by its vote count); the answers' features were computed once."""
    groups, answers = data.groups, data.answers
    index = {name: k for k, name in enumerate(shown)}
    position = np.array([index.get(data.names[k], -1) for k in range(len(data.names))])
    ia, ib = position[groups.ia], position[groups.ib]
    rows = keep & (ia >= 0) & (ib >= 0)
    anchor = how.anchor if how.anchor is not None and how.anchor[0] in index else None
    result = style_control(
        ia[rows],
        ib[rows],
        groups.outcome[rows],
        answers.features[groups.answer_a[rows]],
        answers.features[groups.answer_b[rows]],
        shown,
        counts=weight[rows],
        drop_both_bad=how.drop_both_bad,
        anchor=anchor,
        intervals=True,
    )
    return StyleRatings.from_json(result.to_json())


def board_from_battles(
    *,
    model_a: Sequence[str],
    model_b: Sequence[str],
    outcome: IntArray,
    rounds: int,
    drop_both_bad: bool = False,
    anchor: tuple[str, float] | None = None,
) -> Board:
    """The campaign leaderboard of battles given one per row in vote order (names of each
    side, `arena.ranking.Outcome` codes), rated exactly as a recompute rates the campaign's
    own votes: contestants numbered in name order, the same cells, seed, bootstrap, minimum
    votes and online Elo, so a published leaderboard can be checked from its exported votes
    alone (`manage.py rate_file`). No database is read."""
    names = sorted(set(model_a) | set(model_b))
    index = {name: k for k, name in enumerate(names)}
    ia = np.array([index[n] for n in model_a], dtype=np.int64)
    ib = np.array([index[n] for n in model_b], dtype=np.int64)
    outcome = np.asarray(outcome, dtype=np.int64)
    n = len(names)
    keys, count = np.unique((ia * max(n, 1) + ib) * len(Outcome) + outcome, return_counts=True)
    pair, code = np.divmod(keys, len(Outcome))
    group_a, group_b = np.divmod(pair, max(n, 1))
    nothing = np.zeros(0, dtype=np.int64)
    zeros = np.zeros(keys.size, dtype=np.int64)
    data = Votes(
        names=names,
        questions=Questions(
            nothing, nothing, np.zeros(0, dtype=object), np.zeros(0, dtype=object), {}
        ),
        answers=Answers(nothing, nothing, nothing, np.zeros((0, 4))),
        groups=Groups(group_a, group_b, code, count.astype(np.int64), {}, zeros, zeros, zeros),
        ordered=Ordered(ia, ib, outcome, np.zeros(ia.size, dtype=np.int64)),
        total=int(ia.size),
        last_vote_id=0,
    )
    everything = _Slice("campaign", "", "", data.groups.count, np.ones(ia.size, dtype=np.bool_))
    how = _Settings(rounds=rounds, drop_both_bad=drop_both_bad, anchor=anchor)
    board, _style = _rate(data, everything, how, with_style=False)
    return board


# The snapshots -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecomputeResult:
    """What a recompute stored: ``written`` is False when a newer snapshot was already there."""

    campaign_id: int
    scopes: list[str]
    vote_count: int
    computed_at: dt.datetime
    seconds: float
    written: bool
    timings: dict[str, float] = field(default_factory=dict)


def _settings_for(campaign: Campaign) -> _Settings:
    anchor = None
    if campaign.baseline is not None:
        anchor = (campaign.baseline.name, float(campaign.baseline_rating))
    return _Settings(
        rounds=int(settings.ARENA_BOOTSTRAP_ROUNDS),
        drop_both_bad=campaign.both_bad == Campaign.BothBad.DROP,
        anchor=anchor,
    )


class _Common(TypedDict):
    schema: int
    campaign: CampaignRef
    computed_at: dt.datetime
    min_votes: int
    both_bad: str
    baseline: RatingAnchor | None
    rounds: int


def _common(campaign: Campaign, how: _Settings, computed_at: dt.datetime) -> _Common:
    """The fields every scope's snapshot of one recompute shares."""
    return _Common(
        schema=SCHEMA,
        campaign=CampaignRef(id=campaign.pk, slug=campaign.slug, name=campaign.name),
        computed_at=computed_at,
        min_votes=MIN_VOTES,
        both_bad=campaign.both_bad,
        baseline=None
        if how.anchor is None
        else RatingAnchor(name=how.anchor[0], rating=how.anchor[1]),
        rounds=how.rounds,
    )


def _snapshots(
    campaign: Campaign,
    data: Votes | None,
    how: _Settings,
    computed_at: dt.datetime,
    timings: dict[str, float],
) -> list[Snapshot]:
    """One snapshot per scope with votes, the campaign's own first; seconds per rated scope go
    into ``timings``."""
    common = _common(campaign, how, computed_at)
    main_key = campaign_scope(campaign.pk)
    if data is None:
        empty = Snapshot(
            **common,
            scope=main_key,
            kind="campaign",
            value="",
            label="",
            status="no_votes",
            vote_count=0,
            last_vote_id=None,
            same_as_campaign=True,
            leaderboard=None,
            style=None,
            scopes=(ScopeEntry(scope=main_key, kind="campaign", value="", label="", votes=0),),
        )
        return [empty]
    out: list[Snapshot] = []
    pieces = [piece for piece in _slices(data) if piece.votes > 0]
    # A slice holding every vote is the campaign itself: same votes, same order, same seed.
    own = [piece for piece in pieces if piece.kind != "campaign" and piece.votes != data.total]

    def rate(piece: _Slice) -> tuple[Board, StyleRatings | None]:
        started = time.perf_counter()
        result = _rate(data, piece, how)
        timings[scope_key(campaign.pk, piece.kind, piece.value)] = time.perf_counter() - started
        return result

    def fragile(board: Board) -> tuple[FragilityEntry, ...] | None:
        started = time.perf_counter()
        result = _fragility(data, how, board)
        timings["fragility"] = time.perf_counter() - started
        return result

    # The slices are rated on a thread of their own while the campaign's bootstrap runs on
    # its threads, and the fragility of the campaign's top is searched there while the main
    # thread fits its style-controlled ratings: numpy outside the GIL for the most part, and
    # the bootstrap's threads leave gaps (measured at 1.7 M votes: 0.3 s less in all).
    with ThreadPoolExecutor(max_workers=1) as pool:
        slices = {id(piece): pool.submit(rate, piece) for piece in own}
        started = time.perf_counter()
        campaign_board = _board(data, pieces[0], how)
        fragility_found = pool.submit(fragile, campaign_board)
        campaign_result = (campaign_board, _style_of(data, pieces[0], campaign_board, how))
        timings[scope_key(campaign.pk)] = time.perf_counter() - started
        rated = {key: future.result() for key, future in slices.items()}
        fragility = fragility_found.result()
    for piece in pieces:
        key = scope_key(campaign.pk, piece.kind, piece.value)
        same = piece.votes == data.total
        result = campaign_result if same else rated[id(piece)]
        board, style = result
        out.append(
            Snapshot(
                **common,
                scope=key,
                kind=piece.kind,
                value=piece.value,
                label=piece.label,
                status="ok",
                vote_count=piece.votes,
                same_as_campaign=same,
                leaderboard=board,
                style=style,
            )
        )
    index = tuple(
        ScopeEntry(scope=s.scope, kind=s.kind, value=s.value, label=s.label, votes=s.vote_count)
        for s in out
    )
    out[0] = replace(out[0], scopes=index, last_vote_id=data.last_vote_id, fragility=fragility)
    return out


def _fragility(
    data: Votes, how: _Settings, board: Board | None
) -> tuple[FragilityEntry, ...] | None:
    """How many votes it takes to swap each adjacent pair of the campaign's top contestants
    (`arena.ranking.fragility`), on the fit the leaderboard rated."""
    if board is None or len(board.contestants) < 2:
        return None
    groups = data.groups
    n = len(data.names)
    weight = groups.weight
    cells = _cells(groups.ia, groups.ib, groups.outcome, groups.count, n, weight)
    if how.drop_both_bad:
        cells = cells.without_both_bad()
    index = {name: k for k, name in enumerate(data.names)}
    shown = np.array(sorted(index[c.name] for c in board.contestants), dtype=np.int64)
    fit = bt_fit(cells.restrict(shown))
    local = {data.names[k]: pos for pos, k in enumerate(shown.tolist())}
    order = [local[c.name] for c in board.contestants]
    names = [data.names[k] for k in shown.tolist()]
    searched = int(FRAGILITY_MAX_SHARE * fit.data.total)
    return tuple(
        FragilityEntry(
            place=order.index(f.upper) + 1,
            upper=names[f.upper],
            lower=names[f.lower],
            votes=f.votes,
            estimate=f.estimate,
            total=f.total,
            searched=searched,
        )
        for f in top_fragility(fit, order, top=FRAGILITY_TOP, max_share=FRAGILITY_MAX_SHARE)
    )


def ratings_recompute(*, campaign_id: int) -> RecomputeResult:
    """Recompute every scope of one campaign and replace its snapshots in one transaction.

    Reads only aggregated rows (see `arena.ratings.store`). If another recompute stored a
    snapshot of later votes meanwhile, nothing is written. After commit a
    ``leaderboard.updated`` event goes to `leaderboard_group`.
    """
    started = time.perf_counter()
    campaign = rating_campaign_get(campaign_id=campaign_id)
    how = _settings_for(campaign)
    now = timezone.now()
    exclude = campaign.tainted_votes == Campaign.TaintedVotes.EXCLUDE
    with transaction.atomic():  # one transaction, so the session settings apply to all reads
        # Exclusions cover an excluded evaluator's votes cast since they were decided, too.
        votes_exclusion_sync(campaign_id=campaign_id)
        weights = vote_weights(campaign=campaign)
        data = votes_read(
            campaign_id=campaign_id, now=now, exclude_tainted=exclude, weights=weights
        )
        excluded = tainted_excluded(campaign_id=campaign_id, last_vote_id=None) if exclude else 0
        left_out = exclusion_set_read(campaign_id=campaign_id, exclude_tainted=exclude)
        everything = None
        if left_out is not None:
            everything = votes_read(
                campaign_id=campaign_id,
                now=now,
                exclude_tainted=exclude,
                include_excluded=True,
                weights=weights,
            )
    read = time.perf_counter()
    timings: dict[str, float] = {}
    snapshots = _snapshots(campaign, data, how, now, timings)
    if exclude:
        # The campaign's own snapshot says what it left out (slices of it leave out as much).
        snapshots[0] = replace(snapshots[0], excluded_tainted=excluded)
    if left_out is not None and everything is not None:
        # The exclusion set, and the campaign's leaderboard with the excluded votes counted.
        board, _style = _rate(everything, _slices(everything)[0], how)
        snapshots[0] = replace(snapshots[0], exclusions=left_out, with_excluded=board)
    rated = time.perf_counter()
    stored_at = snapshots_replace(campaign_id=campaign_id, snapshots=snapshots, started=now)
    if stored_at is not None:
        main_key = snapshots[0].scope
        dispatch.after_commit(
            lambda: leaderboard_notify(
                campaign_id=campaign_id, scope=main_key, computed_at=stored_at
            )
        )
    done = time.perf_counter()
    return RecomputeResult(
        campaign_id=campaign_id,
        scopes=[s.scope for s in snapshots],
        vote_count=data.total if data else 0,
        computed_at=now,
        seconds=done - started,
        written=stored_at is not None,
        timings={"read": read - started, "rate": rated - read, "store": done - rated, **timings},
    )


def leaderboard_notify(*, campaign_id: int, scope: str, computed_at: dt.datetime) -> None:
    """Tell open leaderboard pages that new snapshots exist. Best effort (see
    `arena.dispatch.group_send`): a page that misses the event shows the new figures on its
    next load."""
    event = {"type": "leaderboard.updated", "scope": scope, "computed_at": computed_at.isoformat()}
    dispatch.group_send(leaderboard_group(campaign_id), event)


def ratings_recompute_all() -> list[RecomputeResult]:
    """Recompute each active campaign whose votes changed since its latest snapshot (or that has
    none): a vote newer than the snapshot, a vote id past the last one it counted, or a
    different number of votes."""
    return [
        ratings_recompute(campaign_id=pk)
        for pk in active_campaign_ids()
        if snapshot_is_stale(campaign_id=pk)
    ]
