from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.battles.io import battles_export_text
from arena.models import Campaign


class Command(BaseCommand):
    help = "Export a campaign's votes as clean battles (a JSON array, or JSON Lines)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")
        parser.add_argument(
            "--format",
            choices=["json", "jsonl"],
            default=None,
            help="default: jsonl for a .jsonl file, else a JSON array",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with the slug {options['campaign']!r}")
        output: str | None = options["output"]
        lines = (
            options["format"] or ("jsonl" if output and output.endswith(".jsonl") else "json")
        ) == "jsonl"
        chunks = battles_export_text(campaign=campaign, lines=lines)
        count = 0
        if output is None:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
                count += 1
        else:
            try:
                with Path(output).open("w", encoding="utf-8") as stream:
                    for chunk in chunks:
                        stream.write(chunk)
                        count += 1
            except OSError as exc:
                raise CommandError(f"cannot write {output}: {exc.strerror}") from None
        battles = count if lines else count - 1
        self.stderr.write(f"{campaign.slug}: {battles} battles exported")
