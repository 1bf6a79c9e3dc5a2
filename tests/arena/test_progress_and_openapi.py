from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from arena.generation.progress import generation_progress_notify
from arena.models import Answer
from arena.routing import websocket_urlpatterns
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_progress_socket_sends_counts_on_connect_and_on_change() -> None:
    staff = factories.UserFactory(is_staff=True)
    answer = factories.AnswerFactory(status="pending")
    contestant, question_set = answer.contestant, answer.question.question_set

    async def watch() -> list[dict[str, Any]]:
        communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/generation/{question_set.pk}/"
        )
        communicator.scope["user"] = staff
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_json_from()
        await _mark_done(answer.pk)
        second = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return [first, second]

    from channels.db import database_sync_to_async

    @database_sync_to_async
    def _mark_done(pk: int) -> None:
        Answer.objects.filter(pk=pk).update(status="done")
        generation_progress_notify(question_set_id=question_set.pk)

    first, second = async_to_sync(watch)()
    (row,) = first["progress"]["contestants"]
    assert row["slug"] == contestant.slug
    assert (row["pending"], row["done"]) == (1, 0)
    (row,) = second["progress"]["contestants"]
    assert (row["pending"], row["done"]) == (0, 1)


@pytest.mark.django_db(transaction=True)
def test_progress_socket_is_for_staff_only() -> None:
    evaluator = factories.UserFactory()
    question_set = factories.QuestionSetFactory()

    async def attempt() -> tuple[bool, int | None]:
        communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/generation/{question_set.pk}/"
        )
        communicator.scope["user"] = evaluator
        result = await communicator.connect()
        await communicator.disconnect()
        return result  # type: ignore[return-value]

    assert async_to_sync(attempt)() == (False, 4403)


def _api_routes() -> set[str]:
    (api,) = [
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and str(p.pattern) == "api/v1/"
    ]
    routes = set()
    for pattern in api.url_patterns:
        assert isinstance(pattern, URLPattern)
        route = str(pattern.pattern)
        for converter in ("<slug:slug>", "<uuid:code>", "<int:run_id>"):
            name = converter.split(":")[1].rstrip(">")
            route = route.replace(converter, "{" + name + "}")
        routes.add("/" + route)
    return routes


@pytest.mark.django_db
def test_openapi_document_describes_every_api_route(client: Client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == _api_routes()
    on_disk = json.loads((ROOT / "arena" / "openapi.json").read_text())
    assert on_disk == document
