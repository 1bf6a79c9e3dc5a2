from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")


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
