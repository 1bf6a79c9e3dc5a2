"""Websocket routes; each consumer joins a group named by an opaque id."""

from __future__ import annotations

from django.urls import URLPattern, path

from arena import consumers

websocket_urlpatterns: list[URLPattern] = [
    path(
        "ws/generation/<int:question_set_id>/",
        consumers.GenerationProgressConsumer.as_asgi(),
    ),
    path("ws/battle/<uuid:code>/", consumers.BattleConsumer.as_asgi()),
    path("ws/leaderboard/<int:campaign_id>/", consumers.LeaderboardConsumer.as_asgi()),
]
