"""Attack: keep using a battle after losing access to its campaign.

An evaluator is served a battle, then removed from the campaign (or the campaign is closed
to anonymous visitors, or deactivated). Every action on that battle — page, vote, skip,
continue, reveal, the API's and the websocket — must be refused with a clear message, and
nothing may be written.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from arena.accounts.tokens import api_token_create
from arena.battles.live import LiveRefused, live_battle_continue
from arena.battles.rules import Owner
from arena.battles.sampler import battle_next
from arena.models import Battle, Campaign, Vote
from arena.routing import websocket_urlpatterns
from tests import factories

LOST = "no longer open to you"


def _member_battle() -> tuple[Campaign, User, Battle]:
    campaign, _c, _q = factories.campaign_with_answers(reveal_after_vote=True)
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    battle = battle_next(campaign=campaign, owner=Owner(user=user))
    assert battle is not None
    return campaign, user, battle


def _remove(campaign: Campaign, user: User) -> None:
    campaign.evaluators.remove(user)


def _deactivate(campaign: Campaign, user: User) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(active=False)


LOSSES: list[Callable[[Campaign, User], None]] = [_remove, _deactivate]


@pytest.mark.django_db
@pytest.mark.parametrize("lose", LOSSES, ids=["removed", "deactivated"])
def test_web_actions_on_a_battle_served_before_losing_access_are_refused(
    lose: Callable[[Campaign, User], None],
) -> None:
    campaign, user, battle = _member_battle()
    client = Client()
    client.force_login(user)
    assert client.get(f"/b/{battle.code}/").status_code == 200
    lose(campaign, user)

    page = client.get(f"/b/{battle.code}/")
    assert page.status_code == 403
    assert LOST in page.content.decode()
    vote = client.post(f"/b/{battle.code}/vote/", {"outcome": "a"})
    assert vote.status_code == 403
    assert LOST in vote.content.decode()
    skip = client.post(f"/b/{battle.code}/skip/")
    assert skip.status_code == 403
    battle.refresh_from_db()
    assert battle.state == Battle.State.SERVED, "the skip was written"
    assert not Vote.objects.filter(battle=battle).exists(), "the vote was written"


@pytest.mark.django_db
@pytest.mark.parametrize("lose", LOSSES, ids=["removed", "deactivated"])
def test_api_actions_on_a_battle_served_before_losing_access_are_refused(
    lose: Callable[[Campaign, User], None],
) -> None:
    campaign, user, battle = _member_battle()
    _token, key = api_token_create(user=user, name="script")
    api = Client(headers={"Authorization": f"Bearer {key}"})
    assert api.get(f"/api/v1/battles/{battle.code}").status_code == 200
    lose(campaign, user)

    for response in (
        api.get(f"/api/v1/battles/{battle.code}"),
        api.post(
            f"/api/v1/battles/{battle.code}/vote",
            data=json.dumps({"outcome": "b"}),
            content_type="application/json",
        ),
        api.post(f"/api/v1/battles/{battle.code}/skip"),
        api.get(f"/api/v1/battles/{battle.code}/reveal"),
    ):
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "no_access"
        assert LOST in response.json()["error"]
    assert not Vote.objects.filter(battle=battle).exists()
    assert Battle.objects.get(pk=battle.pk).state == Battle.State.SERVED


@pytest.mark.django_db
def test_the_reveal_of_a_voted_battle_is_refused_after_removal() -> None:
    campaign, user, battle = _member_battle()
    _token, key = api_token_create(user=user, name="script")
    api = Client(headers={"Authorization": f"Bearer {key}"})
    voted = api.post(
        f"/api/v1/battles/{battle.code}/vote",
        data=json.dumps({"outcome": "tie"}),
        content_type="application/json",
    )
    assert voted.status_code == 201
    assert api.get(f"/api/v1/battles/{battle.code}/reveal").status_code == 200
    _remove(campaign, user)
    assert api.get(f"/api/v1/battles/{battle.code}/reveal").status_code == 403


@pytest.mark.django_db
def test_an_open_campaign_closed_to_visitors_refuses_their_served_battles() -> None:
    campaign, _c, _q = factories.campaign_with_answers(is_open=True)
    visitor = Client()
    page = visitor.get(f"/c/{campaign.slug}/next/")
    assert page.status_code in (200, 302)
    battle = Battle.objects.get(campaign=campaign, evaluator__isnull=True)
    Campaign.objects.filter(pk=campaign.pk).update(is_open=False)
    refused = visitor.post(f"/b/{battle.code}/vote/", {"outcome": "a"})
    assert refused.status_code == 403
    assert not Vote.objects.exists()


@pytest.mark.django_db
def test_a_live_follow_up_is_refused_after_removal() -> None:
    campaign, user, _battle = _member_battle()
    live = factories.BattleFactory(
        campaign=campaign, evaluator=user, mode=Battle.Mode.LIVE, question__turns=[]
    )
    _remove(campaign, user)
    with pytest.raises(LiveRefused, match=LOST):
        live_battle_continue(code=str(live.code), owner=Owner(user=user), prompt="And then?")
    live.question.refresh_from_db()
    assert live.question.turns == []


@pytest.mark.django_db(transaction=True)
def test_the_battle_socket_refuses_an_evaluator_removed_from_the_campaign() -> None:
    campaign, user, battle = _member_battle()

    async def attempt() -> tuple[bool, int | None]:
        communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/battle/{battle.code}/"
        )
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(attempt)()[0] is True
    _remove(campaign, user)
    assert async_to_sync(attempt)() == (False, 4403)
