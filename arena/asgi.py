from __future__ import annotations

import os

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, running each request's middleware and view in one hop to a
    worker thread.

    The views are synchronous (the ORM is), and so is most middleware. Loaded for ASGI,
    Django runs every middleware's request and response halves through sync_to_async, a
    dozen thread switches per request that cost more CPU than the API's views themselves
    (benchmarks/load.py). Loaded as for WSGI and called through one sync_to_async, the chain
    runs in the request's thread-sensitive context, as Django's own adapters would run it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)
        chain = self._middleware_chain  # type: ignore[has-type]
        self._middleware_chain = sync_to_async(chain, thread_sensitive=True)


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
