from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from arena.battles.demo import SAMPLE, SLUG, arena_demo_bootstrap


class Command(BaseCommand):
    help = (
        "Create the demo campaign of public Chatbot Arena battles (a sample drawn from the "
        "2024-08-14 counts in tests/data) with its rating history; idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sample", type=int, default=SAMPLE, help="battles to draw")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        demo = arena_demo_bootstrap(sample=max(100, options["sample"]))
        if demo.created:
            self.stdout.write(
                f"campaign {SLUG}: {demo.battles:,} public Chatbot Arena battles loaded and "
                f"rated in {time.perf_counter() - started:.1f} s"
            )
        else:
            self.stdout.write(f"campaign {SLUG} exists ({demo.battles:,} votes); left as it is")
