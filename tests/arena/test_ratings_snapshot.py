from __future__ import annotations

import json
from typing import Any

import pytest

from arena.models import RatingSnapshot
from arena.ratings.recompute import ratings_recompute
from arena.ratings.snapshot import (
    SCHEMA,
    Board,
    ScopeKind,
    Snapshot,
    SnapshotError,
    campaign_scope,
    scope_key,
    scope_parse,
)
from tests import factories
from tests.arena.test_ratings_service import ROUND_ROBIN, cast_votes


@pytest.fixture(autouse=True)
def _few_rounds(settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 20


def _rated() -> list[RatingSnapshot]:
    campaign, cs, questions = factories.campaign_with_answers(contestants=4, questions=2)
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    cast_votes(campaign, questions[1], cs, [*ROUND_ROBIN, (3, 0, "a", 6), (3, 1, "tie", 2)])
    ratings_recompute(campaign_id=campaign.pk)
    return list(RatingSnapshot.objects.filter(campaign=campaign).order_by("id"))


@pytest.mark.django_db
def test_every_stored_payload_round_trips_through_the_typed_snapshot() -> None:
    stored = _rated()
    assert len(stored) > 2  # the campaign and its slices
    for row in stored:
        snapshot = Snapshot.from_json(row.payload)
        assert snapshot.to_json() == row.payload
        assert json.dumps(snapshot.to_json(), sort_keys=True) == json.dumps(
            row.payload, sort_keys=True
        )
        assert snapshot.scope == row.scope
        assert snapshot.vote_count == row.vote_count


@pytest.mark.django_db
def test_only_the_campaign_snapshot_carries_the_scope_index_and_last_vote() -> None:
    main, *slices = _rated()
    snapshot = Snapshot.from_json(main.payload)
    assert snapshot.scope == campaign_scope(snapshot.campaign.id)
    assert snapshot.scopes is not None
    assert [s.scope for s in snapshot.scopes] == [main.scope] + [s.scope for s in slices]
    assert snapshot.last_vote_id is not None
    assert isinstance(snapshot.leaderboard, Board)
    assert snapshot.leaderboard.contestants[0].rank == 1
    for row in slices:
        assert "scopes" not in row.payload
        assert "last_vote_id" not in row.payload
        assert Snapshot.from_json(row.payload).scopes is None


@pytest.mark.django_db
def test_the_snapshot_of_a_campaign_without_votes_round_trips() -> None:
    campaign = factories.CampaignFactory()
    ratings_recompute(campaign_id=campaign.pk)
    payload = RatingSnapshot.objects.get(campaign=campaign).payload
    snapshot = Snapshot.from_json(payload)
    assert snapshot.status == "no_votes"
    assert snapshot.leaderboard is None
    assert snapshot.last_vote_id is None
    assert snapshot.to_json() == payload


@pytest.mark.django_db
@pytest.mark.parametrize("schema", [SCHEMA + 1, 0, None, "1"])
def test_a_payload_of_another_schema_version_is_refused(schema: Any) -> None:
    payload = dict(_rated()[0].payload)
    payload["schema"] = schema
    with pytest.raises(SnapshotError, match="schema version"):
        Snapshot.from_json(payload)


@pytest.mark.parametrize("payload", [{}, [], "x", {"schema": SCHEMA}])
def test_a_payload_that_is_not_a_snapshot_is_refused(payload: Any) -> None:
    with pytest.raises(SnapshotError):
        Snapshot.from_json(payload)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("campaign", ""),
        ("set", "12"),
        ("category", "a|b"),
        ("category", "k:v"),
        ("language", "|:|%7C:"),
        ("category", "campaign:1|set:2"),
        ("days", "7"),
    ],
)
def test_scope_keys_with_separators_in_values_round_trip(kind: ScopeKind, value: str) -> None:
    key = scope_key(42, kind, value)
    assert key.count("|") == (0 if kind == "campaign" else 1)
    assert key.split("|", 1)[-1].count(":") == 1
    assert scope_parse(key) == (42, kind, value)
