from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from arena.accounts.tokens import api_token_create
from arena.models import Campaign, RatingSnapshot
from arena.ratings.history import history_keep, rating_changes, rating_history
from arena.ratings.recompute import ratings_recompute
from arena.ratings.snapshot import campaign_scope
from tests import factories
from tests.arena.test_ratings_service import cast_votes

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _few_rounds(settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 20


def test_retention_keeps_the_last_hour_then_ten_minute_windows_then_days(settings: Any) -> None:
    settings.ARENA_HISTORY_DAYS = 30
    stamps = [
        (1, NOW - dt.timedelta(minutes=5)),
        (2, NOW - dt.timedelta(minutes=50)),
        # one 10-minute window three hours ago: only its latest stays
        (3, NOW - dt.timedelta(hours=3, minutes=8)),
        (4, NOW - dt.timedelta(hours=3, minutes=1)),
        # one day ten days ago: only its latest stays
        (5, dt.datetime(2026, 11, 21, 1, 0, tzinfo=dt.UTC)),
        (6, dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)),
        (7, dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)),
        # past ARENA_HISTORY_DAYS
        (8, NOW - dt.timedelta(days=31)),
    ]
    assert history_keep(stamps, now=NOW) == {1, 2, 4, 6, 7}
    settings.ARENA_HISTORY_DAYS = 0
    assert 8 in history_keep(stamps, now=NOW)


def _age(campaign: Campaign, days: float) -> None:
    """Move every stored snapshot of the campaign ``days`` into the past."""
    for s in RatingSnapshot.objects.filter(campaign=campaign):
        s.computed_at -= dt.timedelta(days=days)
        s.payload = {**s.payload, "computed_at": s.computed_at.isoformat()}
        s.save(update_fields=["computed_at", "payload"])


@pytest.fixture
def history() -> tuple[Campaign, list[Any]]:
    """Three recomputes, ten, five and zero days ago: alpha leads, then beta overtakes it and
    gamma joins."""
    cs = [factories.ContestantFactory(name=n) for n in ("alpha", "beta", "gamma")]
    campaign = factories.CampaignFactory(
        slug="hist", leaderboard_public=True, public_refresh=Campaign.PublicRefresh.LIVE
    )
    q = factories.QuestionFactory()
    cast_votes(campaign, q, cs, [(0, 1, "a", 12), (1, 0, "a", 3)])
    ratings_recompute(campaign_id=campaign.pk)
    _age(campaign, 5)
    cast_votes(campaign, q, cs, [(0, 1, "b", 4)])
    ratings_recompute(campaign_id=campaign.pk)
    _age(campaign, 5)
    cast_votes(campaign, q, cs, [(1, 0, "a", 25), (2, 0, "a", 6), (2, 1, "b", 6)])
    ratings_recompute(campaign_id=campaign.pk)
    return campaign, cs


@pytest.mark.django_db
def test_every_recompute_keeps_its_snapshots(
    history: tuple[Campaign, list[Any]],
) -> None:
    campaign, _cs = history
    main = RatingSnapshot.objects.filter(campaign=campaign, scope=campaign_scope(campaign.pk))
    assert main.count() == 3
    language = RatingSnapshot.objects.filter(campaign=campaign, scope__endswith="|language:en")
    assert language.count() == 3

    points = rating_history(campaign=campaign)

    assert [p.vote_count for p in points] == [15, 19, 56]
    assert [r.name for r in points[0].rows] == ["alpha", "beta"]
    assert points[-1].rows[0].name == "beta"
    for p in points:
        for r in p.rows:
            assert r.ci_lower <= r.rating <= r.ci_upper


@pytest.mark.django_db
def test_changes_since_a_date_name_rank_moves_and_new_contestants(
    history: tuple[Campaign, list[Any]],
) -> None:
    campaign, _cs = history

    changes = rating_changes(campaign=campaign, since=timezone.now() - dt.timedelta(days=3))

    assert changes.before is not None
    assert changes.before.vote_count == 19
    moves = {m.name: m for m in changes.moves}
    assert changes.new == ("gamma",)
    assert moves["gamma"].rank_before is None
    assert moves["beta"].rating_now > moves["beta"].rating_before  # type: ignore[operator]
    assert moves["alpha"].rating_now < moves["alpha"].rating_before  # type: ignore[operator]
    assert changes.gone == ()
    # Before any kept snapshot: the oldest one is the baseline, and it says so.
    older = rating_changes(campaign=campaign, since=timezone.now() - dt.timedelta(days=400))
    assert older.baseline_after_since
    assert older.before is not None
    assert older.before.vote_count == 15


@pytest.mark.django_db
def test_history_and_changes_in_the_api_and_on_the_page(
    client: Client, history: tuple[Campaign, list[Any]]
) -> None:
    campaign, _cs = history
    _t, key = api_token_create(user=factories.UserFactory(), name="t", scopes=["evaluate"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    data = client.get(f"/api/v1/campaigns/{campaign.slug}/leaderboard/history", **auth).json()
    assert [p["vote_count"] for p in data["points"]] == [15, 19, 56]
    since = (timezone.now() - dt.timedelta(days=3)).date().isoformat()
    url = f"/api/v1/campaigns/{campaign.slug}/leaderboard/changes"
    changes = client.get(url, {"since": since}, **auth).json()
    assert changes["new"] == ["gamma"]
    assert changes["before"]["vote_count"] == 19
    assert client.get(url, {"since": "last week"}, **auth).status_code == 400
    assert client.get(url, **auth).status_code == 400

    page = client.get(f"/c/{campaign.slug}/leaderboard/", {"since": since}).content.decode()
    assert 'class="lb-history"' in page
    assert page.count("<polyline") == 3
    assert "lb-changes" in page
    assert "gamma" in page
    # Fragility of the top pairs, from the latest snapshot.
    assert "lb-fragility" in page
    assert "votes are removed" in page


@pytest.mark.django_db
def test_a_public_view_frozen_at_the_start_of_the_day_shows_no_later_history(
    client: Client, history: tuple[Campaign, list[Any]]
) -> None:
    campaign, _cs = history
    Campaign.objects.filter(pk=campaign.pk).update(public_refresh=Campaign.PublicRefresh.DAILY)
    _t, key = api_token_create(user=factories.UserFactory(), name="t", scopes=["evaluate"])

    url = f"/api/v1/campaigns/{campaign.slug}/leaderboard/history"
    data = client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}").json()

    # Today's recompute (56 votes) is not shown before tomorrow.
    assert [p["vote_count"] for p in data["points"]] == [15, 19]
