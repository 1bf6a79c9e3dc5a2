from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ArenaConfig(AppConfig):
    name = "arena"
    verbose_name = _("Arena")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The project's Celery app becomes the current one before any task is sent.
        from arena import celery  # noqa: F401
