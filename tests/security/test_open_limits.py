"""Ballot stuffing an open campaign: many sessions from one network, fast votes, live prompts.
The limits are django-ratelimit counters in Redis (arena/quality/limits.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from arena.models import Battle, Vote
from tests import factories

ATTACKER = "203.0.113.7"


def _open_campaign(**fields: Any) -> Any:
    campaign, _cs, _qs = factories.campaign_with_answers(
        contestants=3, questions=30, is_open=True, **fields
    )
    return campaign


def _stuff(campaign: Any, sessions: int, votes_each: int, ip: str = ATTACKER) -> list[int]:
    """Each session asks for battles and votes A on them; the status of every request."""
    statuses = []
    for _ in range(sessions):
        client = Client(REMOTE_ADDR=ip)
        for _ in range(votes_each):
            response = client.get(reverse("campaign_next", args=[campaign.slug]))
            statuses.append(response.status_code)
            if response.status_code != 302:
                break
            code = re.search(r"/b/([0-9a-f-]+)/", response["Location"])
            if code is None:
                break
            vote = client.post(reverse("battle_vote", args=[code.group(1)]), {"outcome": "a"})
            statuses.append(vote.status_code)
    return statuses


@pytest.mark.django_db
def test_two_hundred_sessions_from_one_address_are_held_to_the_limits(settings: Any) -> None:
    # Daily windows: django-ratelimit's fixed windows end at a time staggered per key, and an
    # hourly one ending during the test would let a second batch of sessions in.
    settings.ARENA_OPEN_SESSIONS_PER_IP = "5/d"
    settings.ARENA_OPEN_VOTES_PER_IP = "12/d"
    settings.ARENA_OPEN_VOTES_PER_SESSION = "3/d"
    campaign = _open_campaign()
    statuses = _stuff(campaign, sessions=200, votes_each=4)
    owners = set(Battle.objects.filter(campaign=campaign).values_list("session_key", flat=True))
    assert len(owners) == 5  # new sessions past the network's limit get no battle
    votes = Vote.objects.filter(campaign=campaign).count()
    # Every attempt counts against the network, refused ones too: each of the first three
    # sessions spent four of the network's twelve (three votes and one refused by its own
    # limit), and the last two sessions got none in.
    assert votes == 9
    assert votes <= 12
    assert statuses.count(429) >= 195
    # Another network is not held by the first one's count.
    _stuff(campaign, sessions=1, votes_each=2, ip="198.51.100.9")
    assert Vote.objects.filter(campaign=campaign).count() == 11


@pytest.mark.django_db
def test_a_forwarded_header_is_not_trusted_by_the_app(settings: Any) -> None:
    """The app keys on REMOTE_ADDR, which the ASGI server sets from X-Forwarded-For only for
    proxies in FORWARDED_ALLOW_IPS: a client's own header changes nothing."""
    settings.ARENA_OPEN_SESSIONS_PER_IP = "2/d"
    campaign = _open_campaign()
    for n in range(5):
        client = Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        client.get(reverse("campaign_next", args=[campaign.slug]))
    owners = set(Battle.objects.filter(campaign=campaign).values_list("session_key", flat=True))
    assert len(owners) == 2


@pytest.mark.django_db
def test_logged_in_members_are_not_held_by_the_open_limits(settings: Any) -> None:
    settings.ARENA_OPEN_VOTES_PER_IP = "1/d"
    campaign = _open_campaign()
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    client = Client(REMOTE_ADDR=ATTACKER)
    client.force_login(user)
    for _ in range(3):
        response = client.get(reverse("campaign_next", args=[campaign.slug]))
        code = re.search(r"/b/([0-9a-f-]+)/", response["Location"])
        assert code is not None
        client.post(reverse("battle_vote", args=[code.group(1)]), {"outcome": "b"})
    assert Vote.objects.filter(campaign=campaign, evaluator=user).count() == 3


@pytest.mark.django_db
def test_fast_votes_and_new_sessions_are_marked_low_confidence(settings: Any) -> None:
    settings.ARENA_READING_FLOOR_MS = 60_000
    settings.ARENA_NEW_SESSION_SECONDS = 0
    campaign = _open_campaign()
    _stuff(campaign, sessions=1, votes_each=1)
    vote = Vote.objects.get(campaign=campaign)
    assert vote.low_confidence  # voted in well under a minute
    settings.ARENA_READING_FLOOR_MS = 0
    settings.ARENA_NEW_SESSION_SECONDS = 3600
    _stuff(campaign, sessions=1, votes_each=1, ip="198.51.100.10")
    newest = Vote.objects.filter(campaign=campaign).latest("id")
    assert newest.low_confidence  # the session is seconds old
    settings.ARENA_NEW_SESSION_SECONDS = 0
    _stuff(campaign, sessions=1, votes_each=1, ip="198.51.100.11")
    assert not Vote.objects.filter(campaign=campaign).latest("id").low_confidence


@pytest.mark.django_db
def test_the_daily_cap_stops_serving_battles(settings: Any) -> None:
    campaign = _open_campaign(daily_vote_cap=2)
    statuses = _stuff(campaign, sessions=1, votes_each=5)
    assert Vote.objects.filter(campaign=campaign).count() == 2
    assert statuses[-1] == 200  # the "nothing left today" page, not a battle


@pytest.mark.django_db
def test_live_generation_has_an_hourly_budget_per_address(settings: Any) -> None:
    settings.ARENA_LIVE_BUDGET_PER_IP_HOUR = 2
    campaign = _open_campaign(allow_live=True)
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    client = Client(REMOTE_ADDR=ATTACKER)
    client.force_login(user)
    url = reverse("live_new", args=[campaign.slug])
    statuses = [client.post(url, {"prompt": f"Question {n}?"}).status_code for n in range(3)]
    assert statuses == [302, 302, 429]
    assert Battle.objects.filter(campaign=campaign, mode="live").count() == 2


@pytest.mark.django_db
def test_anonymous_live_prompts_are_limited_per_session(settings: Any) -> None:
    settings.ARENA_OPEN_LIVE_PER_SESSION = "1/d"
    campaign = _open_campaign(allow_live=True)
    client = Client(REMOTE_ADDR=ATTACKER)
    client.get(reverse("campaign_next", args=[campaign.slug]))  # the visitor's session
    url = reverse("live_new", args=[campaign.slug])
    statuses = [client.post(url, {"prompt": f"Question {n}?"}).status_code for n in range(2)]
    assert statuses == [302, 429]


@pytest.mark.django_db
def test_with_the_counters_out_of_reach_visitors_are_paused_not_let_through(
    settings: Any,
) -> None:
    campaign = _open_campaign()
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {**settings.CACHES["ratelimit"], "LOCATION": "redis://127.0.0.1:1/0"},
    }
    response = Client(REMOTE_ADDR=ATTACKER).get(reverse("campaign_next", args=[campaign.slug]))
    assert response.status_code == 429
    assert "Limits cannot be checked right now" in response.content.decode()
    assert not Battle.objects.filter(campaign=campaign).exists()
