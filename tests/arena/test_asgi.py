"""The HTTP side of arena.asgi: Django's middleware and views run in one thread hop per
request, with the whole chain (security headers, CSRF, sessions) still in force."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from asgiref.testing import ApplicationCommunicator

from arena.asgi import application, django_asgi_app

pytestmark = pytest.mark.django_db(transaction=True)


async def _request(method: str, path: str, body: bytes = b"") -> tuple[int, dict[bytes, bytes]]:
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
    communicator = ApplicationCommunicator(application, scope)
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
