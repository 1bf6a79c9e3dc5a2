"""Every surface an evaluator sees before voting carries no contestant identity."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from arena.accounts.tokens import api_token_create
from arena.battles.rules import Owner
from arena.models import Answer, Battle, Campaign, Contestant
from arena.routing import websocket_urlpatterns
from tests import factories


def _contestants() -> list[Contestant]:
    return [
        factories.ContestantFactory(
            pk=987_651,
            name="Quokka-70B-Chat",
            slug="quokka-70b",
            family="Quokka",
            aliases=["QuokkaLM"],
            backend="vllm",
            model="/srv/weights/quokka-70b-chat",
        ),
        factories.ContestantFactory(
            pk=987_652,
            name="Heron Ultra",
            slug="heron-ultra",
            family="Heron",
            backend="openai",
            model="heron-ultra-2025",
            base_url="https://api.heronhost.example/v1",
            api_key_env="HERON_API_KEY",
        ),
        factories.ContestantFactory(
            pk=987_653,
            name="Marmot 8B",
            slug="marmot-8b",
            family="Marmot",
            backend="vllm",
            model="/srv/weights/marmot-8b",
        ),
    ]


def _forbidden(contestants: list[Contestant]) -> list[str]:
    words: list[str] = []
    for c in contestants:
        words += [c.name, c.slug, c.family, c.model, str(c.pk), c.queue_name, *c.aliases]
        if c.base_url:
            words += [c.base_url, "heronhost", c.api_key_env]
    words += ["vllm", "openai", "4242", "1717", "98765"]
    for answer in Answer.objects.all():
        words.append(f"answer-{answer.pk}")
        words.append(f'"{answer.pk}"')
    return words


def _assert_clean(surface: str, content: str, forbidden: list[str]) -> None:
    lowered = content.lower()
    for word in forbidden:
        assert word.lower() not in lowered, f"{word!r} leaks in {surface}"


@pytest.fixture
def setup(transactional_db: None) -> tuple[Campaign, list[Contestant], User]:
    contestants = _contestants()
    campaign = factories.CampaignFactory(slug="blind", name="Blind test")
    question_set = factories.QuestionSetFactory()
    for i in range(3):
        q = factories.QuestionFactory(question_set=question_set, text=f"Question {i}: explain.")
        for j, c in enumerate(contestants):
            factories.AnswerFactory(
                pk=55_500 + i * 10 + j,
                question=q,
                contestant=c,
                shown_text=f"Plain answer {i}-{j}.",
                completion_tokens=4242,
                prompt_tokens=1717,
                latency_ms=98765,
            )
    campaign.question_sets.add(question_set)
    campaign.contestants.add(*contestants)
    evaluator = factories.UserFactory(username="rater")
    campaign.evaluators.add(evaluator)
    return campaign, contestants, evaluator


def test_no_surface_before_the_vote_reveals_a_contestant(
    setup: tuple[Campaign, list[Contestant], User],
) -> None:
    campaign, contestants, evaluator = setup
    forbidden = _forbidden(contestants)
    client = Client()
    client.force_login(evaluator)
    _token, key = api_token_create(user=evaluator, name="t")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    pairs_seen = set()

    _assert_clean("home page", client.get("/").content.decode(), forbidden)
    _assert_clean(
        "campaign list API",
        client.get(reverse("api:campaigns"), **bearer).content.decode(),
        forbidden,
    )
    for _round in range(3):
        response = client.get(reverse("campaign_next", args=[campaign.slug]))
        assert response.status_code == 302
        location = response["Location"]
        _assert_clean("redirect URL", location, forbidden)
        page = client.get(location)
        assert page.status_code == 200
        html = page.content.decode()
        _assert_clean("battle page", html, forbidden)
        code = location.rstrip("/").split("/")[-1]
        battle = Battle.objects.get(code=code)
        pairs_seen.add(frozenset((battle.answer_a.contestant_id, battle.answer_b.contestant_id)))

        api_next = client.post(reverse("api:campaign_next", args=[campaign.slug]), **bearer)
        _assert_clean("next-battle API", api_next.content.decode(), forbidden)
        assert api_next.json()["battle"]["code"] == code  # the same open battle
        _assert_clean(
            "battle API",
            client.get(reverse("api:battle", args=[code]), **bearer).content.decode(),
            forbidden,
        )
        early = client.get(reverse("api:battle_reveal", args=[code]), **bearer)
        assert early.status_code == 403
        _assert_clean("early reveal error", early.content.decode(), forbidden)
        bad = client.post(
            reverse("api:battle_vote", args=[code]),
            data=json.dumps({"outcome": "z"}),
            content_type="application/json",
            **bearer,
        )
        assert bad.status_code == 400
        _assert_clean("vote error", bad.content.decode(), forbidden)
        bad_page = client.post(reverse("battle_vote", args=[code]), {"outcome": "z"}, follow=True)
        _assert_clean("vote error page", bad_page.content.decode(), forbidden)
        _assert_clean("live socket frames", _socket_frames(evaluator, code), forbidden)

        voted = client.post(reverse("battle_vote", args=[code]), {"outcome": "a"}, follow=True)
        after = voted.content.decode()
        a_name = battle.answer_a.contestant.name
        assert a_name in after, "after the vote the reveal names the models"
        reveal = client.get(reverse("api:battle_reveal", args=[code]), **bearer).json()
        assert reveal["a"] == a_name
        assert reveal["b"] == battle.answer_b.contestant.name

        other = factories.UserFactory()
        _t, other_key = api_token_create(user=other, name="t")
        stolen = client.get(
            reverse("api:battle_reveal", args=[code]), HTTP_AUTHORIZATION=f"Bearer {other_key}"
        )
        assert stolen.status_code == 404
        _assert_clean("someone else's reveal", stolen.content.decode(), forbidden)
        intruder = Client()
        intruder.force_login(other)
        assert intruder.get(reverse("battle", args=[code])).status_code == 404
    assert len(pairs_seen) >= 2, "battles across at least three contestants"


def _socket_frames(user: User, code: str) -> str:
    async def collect() -> list[dict[str, Any]]:
        communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/battle/{code}/"
        )
        communicator.scope["user"] = user
        connected, _subprotocol = await communicator.connect()
        frames: list[dict[str, Any]] = []
        if connected:
            while not await communicator.receive_nothing(timeout=0.2):
                frames.append(await communicator.receive_json_from())
        await communicator.disconnect()
        return frames

    return json.dumps(async_to_sync(collect)())


@pytest.mark.django_db(transaction=True)
def test_battle_socket_refuses_other_evaluators() -> None:
    campaign, _c, _q = factories.campaign_with_answers()
    owner_user, other = factories.UserFactory(), factories.UserFactory()
    campaign.evaluators.add(owner_user, other)  # both members: the battle is still not other's
    from arena.battles.sampler import battle_next

    battle = battle_next(campaign=campaign, owner=Owner(user=owner_user))
    assert battle is not None

    async def attempt(user: User) -> tuple[bool, int | None]:
        communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/battle/{battle.code}/"
        )
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(attempt)(other) == (False, 4404)
    assert async_to_sync(attempt)(owner_user)[0] is True


def test_no_grading_surface_before_the_grade_reveals_a_contestant(
    setup: tuple[Campaign, list[Contestant], User],
) -> None:
    campaign, contestants, evaluator = setup
    Campaign.objects.filter(pk=campaign.pk).update(kind=Campaign.Kind.GRADING)
    forbidden = _forbidden(contestants)
    client = Client()
    client.force_login(evaluator)
    _token, key = api_token_create(user=evaluator, name="t")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    for _round in range(3):
        response = client.get(reverse("grading_next", args=[campaign.slug]))
        assert response.status_code == 302
        location = response["Location"]
        _assert_clean("grading redirect URL", location, forbidden)
        page = client.get(location)
        assert page.status_code == 200
        _assert_clean("grading page", page.content.decode(), forbidden)
        code = location.rstrip("/").split("/")[-1]
        api_next = client.post(reverse("api:grading_next", args=[campaign.slug]), **bearer)
        _assert_clean("next-grading API", api_next.content.decode(), forbidden)
        _assert_clean(
            "grading API",
            client.get(reverse("api:grading", args=[code]), **bearer).content.decode(),
            forbidden,
        )
        bad = client.post(
            reverse("api:grading_grade", args=[code]),
            data=json.dumps({"overall": 11}),
            content_type="application/json",
            **bearer,
        )
        assert bad.status_code == 400
        _assert_clean("grade error", bad.content.decode(), forbidden)
        skipped = client.post(reverse("api:grading_skip", args=[code]), **bearer)
        assert skipped.status_code == 200
        _assert_clean("skip answer", skipped.content.decode(), forbidden)
