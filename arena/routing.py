"""Websocket routes; each consumer joins a group named by an opaque id."""

from __future__ import annotations

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
