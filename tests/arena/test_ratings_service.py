from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from arena.models import Answer, Battle, Campaign, Contestant, Question, RatingSnapshot, Vote
from arena.ratings.recompute import MIN_VOTES, ratings_recompute, ratings_recompute_all
from arena.ratings.snapshot import campaign_scope, leaderboard_group, scope_key, scope_parse
from tests import factories

pytestmark = pytest.mark.django_db

Spec = Sequence[tuple[int, int, str, int]]  # (side-a contestant, side-b contestant, outcome, n)


@pytest.fixture(autouse=True)
def _few_rounds(settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 20


def cast_votes(
    campaign: Campaign,
    question: Question,
    contestants: Sequence[Contestant],
    spec: Spec,
    *,
    when: dt.datetime | None = None,
    answers: dict[int, Answer] | None = None,
) -> list[Vote]:
    """Voted battles on ``question``: ``n`` votes with ``outcome`` per (a, b, outcome, n) row.
    ``answers`` (contestant id -> answer) picks which answer each side showed."""
    chosen = answers or {a.contestant_id: a for a in Answer.objects.filter(question=question)}
    for contestant in contestants:
        if contestant.pk not in chosen:
            chosen[contestant.pk] = factories.AnswerFactory(
                question=question, contestant=contestant
            )
    battles = [
        (
            Battle(
                campaign=campaign,
                session_key="test",
                question=question,
                answer_a=chosen[contestants[a].pk],
                answer_b=chosen[contestants[b].pk],
                state=Battle.State.VOTED,
                expires_at=timezone.now(),
            ),
            outcome,
        )
        for a, b, outcome, n in spec
        for _ in range(n)
    ]
    created = Battle.objects.bulk_create([b for b, _o in battles])
    votes = Vote.objects.bulk_create(
        Vote(
            battle=battle,
            campaign=campaign,
            question=question,
            contestant_a=battle.answer_a.contestant,
            contestant_b=battle.answer_b.contestant,
            outcome=outcome,
        )
        for battle, (_b, outcome) in zip(created, battles, strict=True)
    )
    if when is not None:
        Vote.objects.filter(pk__in=[v.pk for v in votes]).update(created_at=when)
    return votes


def snapshot(campaign: Campaign, kind: str = "campaign", value: str = "") -> RatingSnapshot:
    """The latest snapshot of a scope (the campaign's own keeps its history)."""
    scope = scope_key(campaign.pk, kind, value)  # type: ignore[arg-type]
    return RatingSnapshot.objects.filter(scope=scope).latest()


def by_name(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in payload["leaderboard"]["contestants"]}


ROUND_ROBIN: Spec = [
    (0, 1, "a", 6),
    (1, 0, "a", 2),
    (0, 2, "a", 5),
    (2, 0, "tie", 2),
    (1, 2, "a", 4),
    (2, 1, "a", 3),
    (1, 2, "both_bad", 2),
]


def test_recompute_stores_a_snapshot_per_scope_with_the_database_counts() -> None:
    cs = [factories.ContestantFactory() for _ in range(3)]
    campaign = factories.CampaignFactory(baseline=cs[0], baseline_rating=1200.0)
    set_one, set_two = factories.QuestionSetFactory(), factories.QuestionSetFactory()
    math = factories.QuestionFactory(question_set=set_one, category="math", language="en")
    poem = factories.QuestionFactory(question_set=set_two, category="", language="ko")
    cast_votes(campaign, math, cs, ROUND_ROBIN)
    cast_votes(campaign, poem, cs, ROUND_ROBIN, when=timezone.now() - dt.timedelta(days=10))
    cast_votes(campaign, poem, cs, [(0, 1, "b", 1)], when=timezone.now() - dt.timedelta(days=90))

    result = ratings_recompute(campaign_id=campaign.pk)

    per_copy = sum(n for *_x, n in ROUND_ROBIN)
    expected = {
        campaign_scope(campaign.pk): 2 * per_copy + 1,
        scope_key(campaign.pk, "set", str(set_one.pk)): per_copy,
        scope_key(campaign.pk, "set", str(set_two.pk)): per_copy + 1,
        scope_key(campaign.pk, "category", "math"): per_copy,
        scope_key(campaign.pk, "language", "en"): per_copy,
        scope_key(campaign.pk, "language", "ko"): per_copy + 1,
        scope_key(campaign.pk, "days", "7"): per_copy,
        scope_key(campaign.pk, "days", "30"): 2 * per_copy,
    }
    stored = dict(
        RatingSnapshot.objects.filter(campaign=campaign).values_list("scope", "vote_count")
    )
    assert stored == expected
    assert result.scopes[0] == campaign_scope(campaign.pk)
    assert set(result.scopes) == set(expected)

    main = snapshot(campaign).payload
    assert main["status"] == "ok"
    assert main["leaderboard"]["votes"] == 2 * per_copy + 1
    assert [s["scope"] for s in main["scopes"]] == result.scopes
    rows = by_name(main)
    assert rows[cs[0].name]["rating"] == pytest.approx(1200.0)
    assert main["leaderboard"]["settings"]["anchor_applied"] is True
    # Votes per contestant come from the counted cells: contestant 0 is in 6+2+5+2 votes a copy.
    assert rows[cs[0].name]["votes"] == 2 * 15 + 1
    assert all(row["elo"] is not None for row in rows.values())
    assert {c["name"] for c in main["style"]["contestants"]} == {c.name for c in cs}

    math_board = snapshot(campaign, "category", "math").payload
    assert math_board["label"] == "math"
    assert math_board["leaderboard"]["votes"] == per_copy
    assert snapshot(campaign, "set", str(set_two.pk)).payload["label"] == set_two.name


def test_a_slice_equal_to_the_campaign_reuses_its_figures() -> None:
    campaign, cs, questions = factories.campaign_with_answers(contestants=3, questions=1)
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    ratings_recompute(campaign_id=campaign.pk)
    main = snapshot(campaign).payload
    language = snapshot(campaign, "language", "en").payload
    assert language["same_as_campaign"] is True
    assert language["leaderboard"] == main["leaderboard"]


def test_both_bad_votes_are_left_out_when_the_campaign_drops_them() -> None:
    campaign, cs, questions = factories.campaign_with_answers(
        contestants=3, questions=1, both_bad=Campaign.BothBad.DROP
    )
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    ratings_recompute(campaign_id=campaign.pk)
    payload = snapshot(campaign).payload
    total = sum(n for *_x, n in ROUND_ROBIN)
    assert payload["vote_count"] == total
    assert payload["leaderboard"]["votes"] == total - 2
    assert payload["leaderboard"]["settings"]["drop_both_bad"] is True
    assert payload["style"]["votes"] == total - 2


def test_both_bad_votes_count_as_ties_by_default() -> None:
    campaign, cs, questions = factories.campaign_with_answers(contestants=3, questions=1)
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    ratings_recompute(campaign_id=campaign.pk)
    assert snapshot(campaign).payload["leaderboard"]["votes"] == sum(n for *_x, n in ROUND_ROBIN)


def test_a_campaign_without_votes_gets_a_snapshot_that_says_so() -> None:
    campaign = factories.CampaignFactory()
    result = ratings_recompute(campaign_id=campaign.pk)
    assert result.vote_count == 0
    only = RatingSnapshot.objects.get(campaign=campaign)
    assert only.scope == campaign_scope(campaign.pk)
    assert only.vote_count == 0
    assert only.payload["status"] == "no_votes"
    assert only.payload["leaderboard"] is None


def test_contestants_with_too_few_votes_are_hidden_and_listed() -> None:
    campaign, cs, questions = factories.campaign_with_answers(contestants=4, questions=1)
    cast_votes(campaign, questions[0], cs, [*ROUND_ROBIN, (3, 0, "a", MIN_VOTES - 2)])
    ratings_recompute(campaign_id=campaign.pk)
    board = snapshot(campaign).payload["leaderboard"]
    assert board["settings"]["min_votes"] == MIN_VOTES
    assert board["hidden"] == [{"name": cs[3].name, "votes": MIN_VOTES - 2}]
    assert cs[3].name not in {row["name"] for row in board["contestants"]}


def test_the_number_of_queries_does_not_grow_with_the_votes() -> None:
    from django.db import connection

    campaign, cs, questions = factories.campaign_with_answers(contestants=3, questions=2)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            ratings_recompute(campaign_id=campaign.pk)
        return len(captured)

    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    few = queries()
    cast_votes(campaign, questions[0], cs, [(a, b, o, 10 * n) for a, b, o, n in ROUND_ROBIN])
    assert queries() == few


def test_a_contestant_with_two_answers_to_one_question_is_counted_per_answer() -> None:
    campaign, cs, questions = factories.campaign_with_answers(contestants=2, questions=1)
    question = questions[0]
    first = Answer.objects.get(question=question, contestant=cs[0])
    fancy = Answer.objects.get(question=question, contestant=cs[1])
    fancy.shown_text = "# Title\n\n- one\n- two\n\n**bold** and **more** " + "word " * 50
    plain = factories.AnswerFactory(
        question=question, contestant=cs[1], config_hash="older-settings", shown_text="short"
    )
    fancy.save()
    cast_votes(campaign, question, cs, [(0, 1, "a", 6)], answers={cs[0].pk: first, cs[1].pk: plain})
    cast_votes(campaign, question, cs, [(0, 1, "b", 7)], answers={cs[0].pk: first, cs[1].pk: fancy})
    ratings_recompute(campaign_id=campaign.pk)
    payload = snapshot(campaign).payload
    assert payload["leaderboard"]["votes"] == 13
    assert by_name(payload)[cs[1].name]["votes"] == 13
    # The length of the shown answer went with the wins, so style control credits length.
    assert payload["style"]["coefficients"]["length"] > 0


def test_recompute_keeps_the_history_of_every_scope() -> None:
    campaign, cs, questions = factories.campaign_with_answers(contestants=3, questions=1)
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    ratings_recompute(campaign_id=campaign.pk)
    cast_votes(campaign, questions[0], cs, [(0, 1, "a", 1)])
    ratings_recompute(campaign_id=campaign.pk)
    main = RatingSnapshot.objects.filter(scope=campaign_scope(campaign.pk))
    total = sum(n for *_x, n in ROUND_ROBIN)
    assert sorted(main.values_list("vote_count", flat=True)) == [total, total + 1]
    assert main.latest().vote_count == total + 1
    language = RatingSnapshot.objects.filter(scope=scope_key(campaign.pk, "language", "en"))
    assert language.count() == 2


def test_recompute_all_recomputes_only_campaigns_whose_votes_changed() -> None:
    busy, cs, questions = factories.campaign_with_answers(contestants=3, questions=1)
    quiet, cs2, questions2 = factories.campaign_with_answers(contestants=3, questions=1)
    factories.CampaignFactory(active=False)
    cast_votes(busy, questions[0], cs, ROUND_ROBIN)
    cast_votes(quiet, questions2[0], cs2, ROUND_ROBIN)

    assert {r.campaign_id for r in ratings_recompute_all()} == {busy.pk, quiet.pk}
    assert ratings_recompute_all() == []
    cast_votes(busy, questions[0], cs, [(0, 1, "a", 1)])
    assert [r.campaign_id for r in ratings_recompute_all()] == [busy.pk]
    # Imported votes carry their old time; the new id still marks the campaign as changed.
    cast_votes(
        quiet, questions2[0], cs2, [(0, 1, "a", 1)], when=timezone.now() - dt.timedelta(days=400)
    )
    assert [r.campaign_id for r in ratings_recompute_all()] == [quiet.pk]
    # A deleted vote changes the count.
    Vote.objects.filter(campaign=busy).order_by("-id").first().delete()  # type: ignore[union-attr]
    assert [r.campaign_id for r in ratings_recompute_all()] == [busy.pk]


def test_the_update_event_goes_to_the_campaign_group_after_commit(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    campaign, cs, questions = factories.campaign_with_answers(contestants=3, questions=1)
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(leaderboard_group(campaign.pk), channel)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            ratings_recompute(campaign_id=campaign.pk)
        assert len(callbacks) == 1  # nothing is sent before commit
        callbacks[0]()
        event = async_to_sync(layer.receive)(channel)
    finally:
        async_to_sync(layer.group_discard)(leaderboard_group(campaign.pk), channel)
    stored = snapshot(campaign)
    assert event == {
        "type": "leaderboard.updated",
        "scope": campaign_scope(campaign.pk),
        "computed_at": stored.computed_at.isoformat(),
    }


@pytest.mark.parametrize(
    ("kind", "value"),
    [("campaign", ""), ("set", "12"), ("category", "a|b:c d/é"), ("language", "ko"), ("days", "7")],
)
def test_scope_keys_round_trip(kind: str, value: str) -> None:
    key = scope_key(7, kind, value)  # type: ignore[arg-type]
    assert key.count("|") == (0 if kind == "campaign" else 1)
    assert scope_parse(key) == (7, kind, value)


@pytest.mark.parametrize("key", ["", "campaign:x", "campaign:1|", "campaign:1|model:x", "set:1"])
def test_malformed_scope_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="not a scope key"):
        scope_parse(key)


def test_all_outcomes_are_mapped() -> None:
    from arena.ratings.store import OUTCOME_CODES

    assert set(OUTCOME_CODES) == set(Vote.Outcome.values)
    assert sorted(OUTCOME_CODES.values()) == list(range(4))


def test_the_portable_read_path_gives_the_same_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection

    campaign, cs, questions = factories.campaign_with_answers(contestants=3, questions=2)
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    cast_votes(campaign, questions[1], cs, ROUND_ROBIN[:3])
    ratings_recompute(campaign_id=campaign.pk)
    packed = snapshot(campaign).payload
    # SQLite (the zero-setup `make run`) reads the vote order as plain rows; only the read of
    # the votes is made to take that path (the snapshot store's JSON lookups stay PostgreSQL's).
    from arena.ratings import recompute, store

    def read_as_sqlite(**kwargs: Any) -> Any:
        with monkeypatch.context() as patch:
            patch.setattr(connection, "vendor", "sqlite")
            return store.votes_read(**kwargs)

    monkeypatch.setattr(recompute, "votes_read", read_as_sqlite)
    ratings_recompute(campaign_id=campaign.pk)
    plain = snapshot(campaign).payload
    assert plain["leaderboard"] == packed["leaderboard"]
    assert plain["style"] == packed["style"]


def test_the_one_scan_read_orders_votes_by_time_when_ids_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Imported votes carry past times under new ids: the PostgreSQL scan must sort them into
    vote order as the portable read does (online Elo depends on it), and count the same."""
    from django.db import connection

    from arena.ratings import recompute, store

    campaign, cs, questions = factories.campaign_with_answers(contestants=3, questions=2)
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    late = cast_votes(campaign, questions[1], cs, [(2, 0, "a", 9), (1, 2, "b", 4)])
    for k, vote in enumerate(late):
        Vote.objects.filter(pk=vote.pk).update(
            created_at=timezone.now() - dt.timedelta(days=40 + k)
        )
    ratings_recompute(campaign_id=campaign.pk)
    scanned = snapshot(campaign).payload

    def read_as_sqlite(**kwargs: Any) -> Any:
        with monkeypatch.context() as patch:
            patch.setattr(connection, "vendor", "sqlite")
            return store.votes_read(**kwargs)

    monkeypatch.setattr(recompute, "votes_read", read_as_sqlite)
    ratings_recompute(campaign_id=campaign.pk)
    plain = snapshot(campaign).payload
    assert plain["leaderboard"] == scanned["leaderboard"]
    assert plain["scopes"] == scanned["scopes"]
    elo = [c["elo"] for c in scanned["leaderboard"]["contestants"]]
    assert len(set(elo)) == 3


def _same_votes(kept: Any, fresh: Any) -> None:
    """Two `store.Votes` are equal field by field (arrays element by element)."""
    import dataclasses

    import numpy as np

    if dataclasses.is_dataclass(fresh):
        for f in dataclasses.fields(fresh):
            _same_votes(getattr(kept, f.name), getattr(fresh, f.name))
    elif isinstance(fresh, np.ndarray):
        assert np.array_equal(kept, fresh)
    elif isinstance(fresh, dict):
        assert kept.keys() == fresh.keys()
        for key in fresh:
            _same_votes(kept[key], fresh[key])
    elif hasattr(fresh, "__dict__"):
        _same_votes(vars(kept), vars(fresh))
    else:
        assert kept == fresh


def test_a_kept_scan_reads_only_new_votes_and_always_equals_a_whole_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each recompute of a worker reads only the votes after those it kept, once a check shows
    the kept ones unchanged. After every kind of change (new votes, votes older than the kept
    ones, a vote tainted, one deleted, one committed late under a lower id, an outcome
    rewritten, an exclusion), the read equals a whole read of a process that kept nothing."""
    from arena.ratings import store

    campaign, cs, questions = factories.campaign_with_answers(contestants=3, questions=2)
    # Settled votes (cast before `KEPT_SETTLE`): a worker keeps those.
    votes = cast_votes(
        campaign, questions[0], cs, ROUND_ROBIN, when=timezone.now() - dt.timedelta(minutes=5)
    )
    gap = votes[-2]
    gap_fields = {f.attname: getattr(gap, f.attname) for f in Vote._meta.concrete_fields}
    gap_battle = gap.battle
    gap.delete()  # its id comes back below, as a vote whose transaction committed late
    statements: list[str] = []
    fetch = store._fetch_binary

    def recorded(sql: str, params: Sequence[Any]) -> Sequence[Any]:
        statements.append(sql)
        return fetch(sql, params)

    monkeypatch.setattr(store, "_fetch_binary", recorded)

    def read() -> Any:
        return store.votes_read(campaign_id=campaign.pk, now=timezone.now(), exclude_tainted=True)

    def check(*, incremental: bool) -> None:
        statements.clear()
        kept = read()
        # The check (with the tail), then a whole read only when the check failed.
        assert "AS tail" in statements[0]
        assert len(statements) == (1 if incremental else 2)
        store.kept_scans_clear()
        _same_votes(kept, read())
        store.kept_scans_clear()
        read()  # keep this state for the next change, read whole

    store.kept_scans_clear()
    read()
    recent = cast_votes(campaign, questions[1], cs, [(0, 1, "b", 3), (2, 1, "tie", 2)])
    check(incremental=True)
    # A recent vote committed late under a lower id than others already read (its transaction
    # was in flight): recent votes are never kept, so the check still passes.
    late = recent[1]
    late_fields = {f.attname: getattr(late, f.attname) for f in Vote._meta.concrete_fields}
    late_battle = late.battle
    late.delete()
    check(incremental=True)
    late_battle.save()
    Vote.objects.create(**late_fields)
    check(incremental=True)
    # Votes older than the kept ones (imported, say): read as new, sorted into vote order.
    older = cast_votes(campaign, questions[1], cs, [(1, 0, "a", 2)])
    Vote.objects.filter(pk__in=[v.pk for v in older]).update(
        created_at=timezone.now() - dt.timedelta(days=3)
    )
    check(incremental=True)
    first = Vote.objects.filter(campaign=campaign).order_by("id")
    Vote.objects.filter(pk=first[0].pk).update(tainted=True)
    check(incremental=False)
    first[1].delete()
    check(incremental=False)
    gap_battle.save()
    Vote.objects.create(**gap_fields)
    check(incremental=False)
    changed = first[2]
    Vote.objects.filter(pk=changed.pk).update(outcome="tie" if changed.outcome != "tie" else "a")
    check(incremental=False)
    Vote.objects.filter(pk=first[3].pk).update(excluded=True)
    check(incremental=False)
    # Nothing changed: the check passes and the tail is empty.
    check(incremental=True)
