from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.models import Campaign
from arena.quality.control import GoldImportError, gold_items_import


class Command(BaseCommand):
    help = (
        "Import gold items (a question and two of its answers, the better one known) from JSON "
        "Lines: question_set, question_id, better, worse (contestant slugs), optional note."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a JSON Lines file")
        parser.add_argument("--campaign", required=True, help="campaign slug")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with the slug {options['campaign']!r}")
        try:
            text = Path(options["file"]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}") from exc
        try:
            items = gold_items_import(campaign=campaign, text=text)
        except GoldImportError as exc:
            raise CommandError("\n".join(exc.errors)) from exc
        self.stdout.write(f"{len(items)} gold items imported into {campaign.slug}.")
