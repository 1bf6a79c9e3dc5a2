"""While a campaign runs, its evaluators cannot watch a leaderboard that moves with their own
votes (issue #11): a public leaderboard shows nothing until the campaign closes, or the ratings
as they stood at the start of the day; only a campaign set to "live" moves with every vote.
Staff (the team) always see the latest ratings. Reveal is off unless chosen in open campaigns."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from arena.battles.rules import Owner
from arena.battles.sampler import battle_next
from arena.battles.votes import vote_cast_and_reveal
from arena.models import Campaign, RatingSnapshot
from arena.ratings.read import leaderboard_listed
from arena.ratings.snapshot import campaign_scope
from arena.routing import websocket_urlpatterns
from tests import factories
from tests.arena.test_leaderboard_page import _bearer, rated_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _few_rounds(settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 20


def _page(client: Client, campaign: Campaign) -> Any:
    return client.get(reverse("leaderboard", args=[campaign.slug]))


def _api(client: Client, campaign: Campaign, headers: dict[str, str]) -> Any:
    return client.get(f"/api/v1/campaigns/{campaign.slug}/leaderboard", **headers)


def test_a_public_leaderboard_is_held_until_its_campaign_closes(client: Client) -> None:
    campaign, _cs = rated_campaign(leaderboard_public=True)
    assert campaign.public_refresh == Campaign.PublicRefresh.CLOSED  # the default
    evaluator = factories.UserFactory()
    for user in (None, evaluator):
        viewer = Client()
        if user is not None:
            viewer.force_login(user)
        response = _page(viewer, campaign)
        assert response.status_code == 403
        assert "opens when the campaign closes" in response.content.decode()
        csv_response = viewer.get(reverse("leaderboard_csv", args=[campaign.slug]))
        assert csv_response.status_code == 403
    api = _api(client, campaign, _bearer(evaluator))
    assert api.status_code == 403
    assert "opens when the campaign closes" in api.json()["error"]
    assert not leaderboard_listed(campaign=campaign, user=evaluator)

    staff = Client()
    staff.force_login(factories.UserFactory(is_staff=True))
    assert _page(staff, campaign).status_code == 200

    Campaign.objects.filter(pk=campaign.pk).update(active=False)
    campaign.refresh_from_db()
    response = _page(Client(), campaign)
    assert response.status_code == 200
    assert "Computed" in response.content.decode()
    assert leaderboard_listed(campaign=campaign, user=evaluator)


def test_a_daily_public_leaderboard_shows_the_ratings_of_the_start_of_the_day(
    client: Client,
) -> None:
    campaign, _cs = rated_campaign(
        leaderboard_public=True, public_refresh=Campaign.PublicRefresh.DAILY
    )
    today = RatingSnapshot.objects.get(campaign=campaign, scope=campaign_scope(campaign.pk))
    # Computed today: the public does not see it yet, the team does.
    response = _page(client, campaign)
    assert response.status_code == 200
    body = response.content.decode()
    assert "have not been computed" in body
    assert "refreshed once a day" in body
    assert 'data-frozen="1"' in body
    staff = Client()
    staff.force_login(factories.UserFactory(is_staff=True))
    assert "have not been computed" not in _page(staff, campaign).content.decode()

    # The same snapshot dated yesterday is the one the public sees.
    yesterday = timezone.now() - dt.timedelta(days=1)
    RatingSnapshot.objects.filter(pk=today.pk).update(computed_at=yesterday)
    body = _page(client, campaign).content.decode()
    assert "have not been computed" not in body
    assert f"Computed {yesterday:%Y-%m-%d}" in body
    api = _api(client, campaign, _bearer(factories.UserFactory()))
    assert api.status_code == 200


def test_a_live_public_leaderboard_moves_with_every_vote(client: Client) -> None:
    campaign, _cs = rated_campaign(
        leaderboard_public=True, public_refresh=Campaign.PublicRefresh.LIVE
    )
    response = _page(client, campaign)
    assert response.status_code == 200
    assert 'data-frozen="1"' not in response.content.decode()


def _socket(campaign_id: int, user: Any) -> tuple[bool, Any]:
    async def attempt() -> tuple[bool, Any]:
        communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/leaderboard/{campaign_id}/"
        )
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    return async_to_sync(attempt)()


@pytest.mark.django_db(transaction=True)
def test_only_readers_of_the_latest_ratings_are_told_of_updates() -> None:
    staff = factories.UserFactory(is_staff=True)
    for refresh, public_listens in (("closed", False), ("daily", False), ("live", True)):
        campaign = factories.CampaignFactory(leaderboard_public=True, public_refresh=refresh)
        assert _socket(campaign.pk, AnonymousUser())[0] is public_listens, refresh
        assert _socket(campaign.pk, staff)[0] is True


def _voted(campaign: Campaign, owner: Owner) -> Any:
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    return vote_cast_and_reveal(code=str(battle.code), owner=owner, outcome="a")


def test_reveal_is_off_by_default_in_an_open_campaign_and_on_in_a_team_one() -> None:
    open_campaign, _cs, _q = factories.campaign_with_answers(is_open=True)
    assert open_campaign.reveal_after_vote is None
    cast = _voted(open_campaign, Owner(user=None, session_key="s" * 32))
    assert cast.reveal is None

    team, _cs, _q = factories.campaign_with_answers()
    member = factories.UserFactory()
    team.evaluators.add(member)
    cast = _voted(team, Owner(user=member))
    assert cast.reveal is not None

    chosen, _cs, _q = factories.campaign_with_answers(is_open=True, reveal_after_vote=True)
    cast = _voted(chosen, Owner(user=None, session_key="t" * 32))
    assert cast.reveal is not None


@pytest.mark.django_db(transaction=True)
def test_a_listener_is_asked_again_at_each_update() -> None:
    """A reader who connected while the campaign was live is not told of updates once it
    shows a frozen view: the socket closes instead of carrying the moment of the update."""
    from arena.ratings.recompute import leaderboard_notify

    campaign = factories.CampaignFactory(leaderboard_public=True, public_refresh="live")

    async def listen() -> tuple[dict[str, Any], dict[str, Any]]:
        communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/leaderboard/{campaign.pk}/"
        )
        communicator.scope["user"] = AnonymousUser()
        connected, _code = await communicator.connect()
        assert connected
        notify = database_sync_to_async(leaderboard_notify)
        await notify(campaign_id=campaign.pk, scope="x", computed_at=timezone.now())
        told = await communicator.receive_output(timeout=5)
        await database_sync_to_async(Campaign.objects.filter(pk=campaign.pk).update)(
            public_refresh="daily"
        )
        await notify(campaign_id=campaign.pk, scope="x", computed_at=timezone.now())
        closed = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return told, closed

    told, closed = async_to_sync(listen)()
    assert told["type"] == "websocket.send"
    assert "leaderboard.updated" in told["text"]
    assert closed == {"type": "websocket.close", "code": 4403}


@pytest.mark.django_db(transaction=True)
def test_a_listener_who_loses_staff_rights_is_not_told_of_updates() -> None:
    """Staff listen to a closed campaign's updates; once the account is no longer staff (read
    again from the database, not from the socket's login), the next update closes the socket."""
    from arena.ratings.recompute import leaderboard_notify

    campaign = factories.CampaignFactory(leaderboard_public=True, public_refresh="closed")
    staff = factories.UserFactory(is_staff=True)

    async def listen() -> tuple[dict[str, Any], dict[str, Any]]:
        communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/leaderboard/{campaign.pk}/"
        )
        communicator.scope["user"] = staff
        connected, _code = await communicator.connect()
        assert connected
        notify = database_sync_to_async(leaderboard_notify)
        await notify(campaign_id=campaign.pk, scope="x", computed_at=timezone.now())
        told = await communicator.receive_output(timeout=5)
        await database_sync_to_async(type(staff).objects.filter(pk=staff.pk).update)(is_staff=False)
        await notify(campaign_id=campaign.pk, scope="x", computed_at=timezone.now())
        closed = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return told, closed

    told, closed = async_to_sync(listen)()
    assert "leaderboard.updated" in told["text"]
    assert closed == {"type": "websocket.close", "code": 4403}
