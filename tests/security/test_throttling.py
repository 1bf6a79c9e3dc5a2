"""Attacks on the rate of things: guessing passwords, flooding websockets, filling the session
table, racing the live-prompt limit. Each test is the attack; it fails on the code before the
fix."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from axes.models import AccessAttempt
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import F
from django.test import Client
from django.urls import reverse

from arena import consumers, dispatch
from arena.asgi import application
from arena.battles import live
from arena.battles.live import LiveRefused, live_battle_start
from arena.battles.rules import Owner
from arena.models import Battle
from tests import factories

PASSWORD = "correct horse battery staple"


@pytest.fixture
def _three_failures(settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=15)


def _user(**fields: Any) -> Any:
    user = factories.UserFactory(**fields)
    user.set_password(PASSWORD)
    user.save()
    return user


def _login(client: Client, path: str, username: str, password: str, **extra: Any) -> Any:
    return client.post(path, {"username": username, "password": password}, **extra)


def _cool_off_passes() -> None:
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - dt.timedelta(minutes=16))


# Password guessing ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("_three_failures")
@pytest.mark.parametrize(("path", "staff"), [("/accounts/login/", False), ("/admin/login/", True)])
def test_guessing_a_password_locks_the_login_out_until_the_cool_off(path: str, staff: bool) -> None:
    user = _user(is_staff=staff)
    client = Client()
    for _ in range(2):
        assert _login(client, path, user.username, "guess").status_code == 200  # the form again
    locked = _login(client, path, user.username, "guess")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()

    # The right password does not get in while locked out.
    refused = _login(client, path, user.username, PASSWORD)
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session

    _cool_off_passes()
    allowed = _login(client, path, user.username, PASSWORD)
    assert allowed.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.django_db
@pytest.mark.usefixtures("_three_failures")
def test_the_lockout_is_of_the_username_from_that_address_only() -> None:
    user = _user()
    attacker = Client()
    for _ in range(3):
        _login(attacker, "/accounts/login/", user.username, "guess", REMOTE_ADDR="203.0.113.9")
    assert _login(attacker, "/accounts/login/", "someone-else", "guess").status_code == 200
    # The real user, elsewhere, is not locked out by the attacker's guesses.
    assert _login(Client(), "/accounts/login/", user.username, PASSWORD).status_code == 302


@pytest.mark.django_db
@pytest.mark.usefixtures("_three_failures")
def test_the_lockout_page_speaks_korean() -> None:
    user = _user()
    client = Client()
    for _ in range(3):
        locked = _login(client, "/accounts/login/", user.username, "x", HTTP_ACCEPT_LANGUAGE="ko")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "로그인 실패가 너무 많습니다" in page
    assert "15분 후에 다시 시도하세요" in page


@pytest.mark.django_db
@pytest.mark.usefixtures("_three_failures")
def test_a_successful_login_clears_earlier_failures() -> None:
    user = _user()
    client = Client()
    for _ in range(2):
        _login(client, "/accounts/login/", user.username, "typo")
    assert _login(client, "/accounts/login/", user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        assert _login(client, "/accounts/login/", user.username, "typo").status_code == 200


# Websocket floods -------------------------------------------------------------------------------

ORIGIN = [(b"origin", b"http://localhost")]


def _socket_scenario(campaign_id: int, frames: list[str]) -> list[dict[str, Any]]:
    """Connect to the leaderboard socket through the deployed websocket stack, send
    ``frames`` and return what the server sent back."""
    websocket_app = application.application_mapping["websocket"]

    async def scenario() -> list[dict[str, Any]]:
        communicator = WebsocketCommunicator(
            websocket_app, f"/ws/leaderboard/{campaign_id}/", headers=ORIGIN
        )
        connected, _code = await communicator.connect()
        assert connected
        for frame in frames:
            await communicator.send_to(text_data=frame)
        out: list[dict[str, Any]] = []
        while not await communicator.receive_nothing(timeout=0.3):
            out.append(await communicator.receive_output())
            if out[-1]["type"] == "websocket.close":
                break
        await communicator.disconnect()
        return out

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_an_oversized_websocket_frame_closes_the_connection() -> None:
    campaign = factories.CampaignFactory(leaderboard_public=True, public_refresh="live")
    out = _socket_scenario(campaign.pk, ["x" * 200_000])
    assert [(o["type"], o.get("code")) for o in out] == [("websocket.close", 1009)]


@pytest.mark.django_db(transaction=True)
def test_a_flood_of_websocket_messages_closes_the_connection_unanswered() -> None:
    campaign = factories.CampaignFactory(leaderboard_public=True, public_refresh="live")
    assert _socket_scenario(campaign.pk, ["{}"] * 3) == []  # a few: dropped, not answered
    out = _socket_scenario(campaign.pk, ["{}"] * 200)
    assert [(o["type"], o.get("code")) for o in out] == [("websocket.close", 4429)]
    assert consumers.CLOSE_TOO_MANY == 4429


# Session rows -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cookieless_visits_to_read_only_pages_create_no_session_row() -> None:
    campaign, _c, _q = factories.campaign_with_answers(is_open=True, allow_live=True)
    for _ in range(5):
        client = Client()
        assert client.get("/").status_code == 200
        assert campaign.name in client.get("/").content.decode()
        assert client.get(reverse("live_new", args=[campaign.slug])).status_code == 200
        fake = "00000000-0000-4000-8000-000000000000"
        assert client.get(reverse("battle", args=[fake])).status_code == 404
    assert Session.objects.count() == 0

    # Starting to vote is what gives an anonymous visitor a session.
    voter = Client()
    response = voter.get(reverse("campaign_next", args=[campaign.slug]))
    assert response.status_code == 302
    assert Session.objects.count() == 1
    assert voter.get(response["Location"]).status_code == 200
    assert Session.objects.count() == 1


@pytest.mark.django_db
def test_a_closed_campaign_sends_a_cookieless_visitor_to_log_in_without_a_session() -> None:
    campaign, _c, _q = factories.campaign_with_answers(is_open=False)
    response = Client().get(reverse("campaign_next", args=[campaign.slug]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert Session.objects.count() == 0


# The live-prompt limit --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_live_starts_by_one_owner_cannot_pass_the_limit(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 3
    settings.ARENA_LIVE_PER_MINUTE = limit
    monkeypatch.setattr(dispatch, "live_turn_generate_after_commit", lambda **_kw: None)
    original = live.battle_create

    def slow_battle_create(**kwargs: Any) -> Battle:
        # Widens the window between the count and the insert, as a loaded server does.
        threading.Event().wait(0.1)
        return original(**kwargs)

    monkeypatch.setattr(live, "battle_create", slow_battle_create)
    campaign = factories.CampaignFactory(allow_live=True, is_open=True)
    campaign.contestants.add(*(factories.ContestantFactory() for _ in range(2)))
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    for owner in (Owner(user=user), Owner(user=None, session_key="s" * 32)):
        outcomes = _start_at_once(campaign=campaign, owner=owner, starts=limit + 5)
        assert sorted(outcomes) == ["refused"] * 5 + ["started"] * limit
        assert Battle.objects.filter(owner.battle_q(), mode=Battle.Mode.LIVE).count() == limit


def _start_at_once(*, campaign: Any, owner: Owner, starts: int) -> list[str]:
    """``starts`` live starts by one owner, each in a thread with its own connection, released
    together."""
    barrier = threading.Barrier(starts)
    outcomes: list[str] = []

    def start() -> None:
        try:
            barrier.wait()
            live_battle_start(campaign=campaign, owner=owner, prompt="Which is bigger?")
            outcomes.append("started")
        except LiveRefused:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(starts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_by_one_owner_cannot_pass_the_per_minute_limit(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Votes sent at once on several served battles: each counts the owner's votes of the
    last minute, so without the owner's vote lock every one of them saw the same count."""
    from arena.battles import store

    limit = 2
    settings.ARENA_VOTES_PER_MINUTE = limit
    monkeypatch.setattr(dispatch, "after_commit", lambda _fn: None)
    original = store.vote_target_lock

    def slow_lock(**kwargs: Any) -> Any:
        # Widens the window between the count and the insert, as a loaded server does.
        target = original(**kwargs)
        threading.Event().wait(0.1)
        return target

    monkeypatch.setattr(store, "vote_target_lock", slow_lock)
    campaign, _cs, questions = factories.campaign_with_answers(questions=6, is_open=True)
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    for owner in (Owner(user=user), Owner(user=None, session_key="v" * 32)):
        codes = []
        for question in questions:
            a, b = list(question.answers.order_by("id"))[:2]
            battle = factories.BattleFactory(
                campaign=campaign,
                evaluator=owner.user,
                session_key=owner.session_key,
                question=question,
                answer_a=a,
                answer_b=b,
            )
            codes.append(str(battle.code))
        outcomes = _vote_at_once(codes=codes, owner=owner)
        assert sorted(outcomes) == ["rate_limited"] * (len(codes) - limit) + ["voted"] * limit


def _vote_at_once(*, codes: list[str], owner: Owner) -> list[str]:
    """One vote by ``owner`` on each battle of ``codes``, each in a thread with its own
    connection, released together; the outcome of each ("voted" or the refusal's code)."""
    from arena.battles.votes import VoteRefused, vote_cast_and_reveal

    barrier = threading.Barrier(len(codes))
    outcomes: list[str] = []

    def vote(code: str) -> None:
        try:
            barrier.wait()
            vote_cast_and_reveal(code=code, owner=owner, outcome="a")
            outcomes.append("voted")
        except VoteRefused as refused:
            outcomes.append(refused.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=vote, args=(code,)) for code in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes
