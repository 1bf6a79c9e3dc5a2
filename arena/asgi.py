from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, resolve

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")

# The endpoints that take a file: their bodies may be ARENA_MAX_UPLOAD_BYTES larger.
UPLOAD_VIEWS = frozenset({"api:question_set_import", "admin:arena_questionset_upload"})


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def body_limit(scope: Any, size: int) -> int:
    """The most body bytes this request may send, once ``size`` of them are known to come:
    ARENA_MAX_BODY_BYTES, and a file's worth more on the upload endpoints. The path is
    resolved only for a body past the small limit, so ordinary requests pay nothing for it."""
    limit: int = settings.ARENA_MAX_BODY_BYTES
    if size <= limit:
        return limit
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    try:
        view_name = resolve(path.removeprefix(root) if root else path).view_name
    except Resolver404:
        return limit
    return limit + settings.ARENA_MAX_UPLOAD_BYTES if view_name in UPLOAD_VIEWS else limit


def _declared_length(scope: Any) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # Django answers a malformed one; the count below still applies
    return None


class _BoundedReceive:
    """``receive``, counting body bytes: the chunk that passes the limit raises BodyTooLarge
    instead of reaching Django, so at most the limit is ever buffered."""

    def __init__(self, receive: Any, scope: Any) -> None:
        self._receive, self._scope = receive, scope
        self.received = 0
        self.limit: int = settings.ARENA_MAX_BODY_BYTES

    async def __call__(self) -> Any:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.limit = body_limit(self._scope, self.received)
                if self.received > self.limit:
                    raise BodyTooLarge(self.limit)
        return message


async def _refuse_too_large(send: Any, limit: int) -> None:
    body = json.dumps({"error": f"The request body is over the limit of {limit:,} bytes."}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, running each request's middleware and view in one hop to a
    worker thread that is reused from request to request.

    The views are synchronous (the ORM is), and so is most middleware. Loaded for ASGI,
    Django runs every middleware's request and response halves through sync_to_async, a
    dozen thread switches per request that cost more CPU than the API's views themselves
    (benchmarks/load.py). Loaded as for WSGI and called through one sync_to_async, the chain
    runs in the request's thread-sensitive context, as Django's own adapters would run it.

    Django also starts and joins a new thread for each request's thread-sensitive context.
    Here the context runs on a one-thread executor (a lane) taken from a free list and put
    back after the response: the same guarantee (all of a request's sync code on one thread,
    so its database connection is its own) without a thread per request. Lanes grow with
    concurrent requests; at most MAX_IDLE_LANES wait for reuse. `python -m
    benchmarks.asgi_overhead` prints the server CPU per plain request against Django's own
    handler (this one: about 0.4 of it).

    Bodies are bounded before Django buffers them (`body_limit`): a Content-Length over the
    limit is answered 413 without reading a byte, and a body without one is counted as it
    arrives and cut off with a 413 at the limit.
    """

    MAX_IDLE_LANES = 32

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)
        chain = self._middleware_chain  # type: ignore[has-type]
        self._middleware_chain = sync_to_async(chain, thread_sensitive=True)
        self._idle_lanes: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        lane = (
            self._idle_lanes.pop()
            if self._idle_lanes
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="arena-request")
        )
        try:
            async with ThreadSensitiveContext(executor=lane):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle_lanes) < self.MAX_IDLE_LANES:
                self._idle_lanes.append(lane)
            else:
                lane.shutdown(wait=False)

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        declared = _declared_length(scope)
        if declared is not None and declared > (limit := body_limit(scope, declared)):
            await _refuse_too_large(send, limit)
            return
        try:
            await super().handle(scope, _BoundedReceive(receive, scope), send)
        except BodyTooLarge as exc:
            await _refuse_too_large(send, exc.limit)


django.setup(set_prefix=False)
django_asgi_app = SyncChainASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from arena.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
