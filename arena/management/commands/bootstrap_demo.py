from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from arena.questions.demo import demo_bootstrap


class Command(BaseCommand):
    help = "Create the demo admin, question sets, contestants and campaign (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        credentials = demo_bootstrap()
        self.stdout.write(
            self.style.SUCCESS(
                f"demo admin: username {credentials.username!r}, password {credentials.password!r}"
            )
        )
