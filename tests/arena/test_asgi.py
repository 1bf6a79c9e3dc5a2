"""The HTTP side of arena.asgi: Django's middleware and views run in one thread hop per
request, with the whole chain (security headers, CSRF, sessions) still in force."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from asgiref.testing import ApplicationCommunicator

from arena.asgi import SyncChainASGIHandler, application, django_asgi_app

pytestmark = pytest.mark.django_db(transaction=True)


async def _request(
    method: str, path: str, body: bytes = b"", app: Any = application
) -> tuple[int, dict[bytes, bytes]]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(10)
    await communicator.receive_output(10)  # the body
    await communicator.wait(10)
    return start["status"], {k.lower(): v for k, v in start["headers"]}


def test_the_middleware_chain_is_one_sync_to_async_call() -> None:
    assert isinstance(django_asgi_app._middleware_chain, SyncToAsync)


def test_a_request_through_the_asgi_application_runs_middleware_and_view() -> None:
    status, headers = async_to_sync(_request)("GET", "/healthz")
    assert status == 200, headers
    # SecurityMiddleware and XFrameOptionsMiddleware ran on the way out.
    assert headers.get(b"x-content-type-options") == b"nosniff", headers
    assert headers.get(b"x-frame-options") == b"DENY"


def test_csrf_still_guards_the_browser_forms_under_asgi() -> None:
    status, _headers = async_to_sync(_request)("POST", "/accounts/login/", b"username=a&password=b")
    assert status == 403


def test_requests_one_after_another_reuse_one_worker_thread() -> None:
    handler = SyncChainASGIHandler()
    for _ in range(3):
        status, _headers = async_to_sync(_request)("GET", "/healthz", app=handler)
        assert status == 200
    assert len(handler._idle_lanes) == 1


def test_lanes_beyond_the_idle_limit_are_shut_down() -> None:
    handler = SyncChainASGIHandler()
    handler.MAX_IDLE_LANES = 0
    status, _headers = async_to_sync(_request)("GET", "/healthz", app=handler)
    assert status == 200
    assert handler._idle_lanes == []
