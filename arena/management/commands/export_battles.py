from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.battles.io import battles_export_parquet, battles_export_text
from arena.models import Campaign


class Command(BaseCommand):
    help = "Export a campaign's votes as clean battles (a JSON array, or JSON Lines)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")
        parser.add_argument(
            "--format",
            choices=["json", "jsonl", "parquet"],
            default=None,
            help="default: jsonl for a .jsonl file, parquet for a .parquet file, else a JSON array",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with the slug {options['campaign']!r}")
        output: str | None = options["output"]
        if options["format"] == "parquet" or (
            options["format"] is None and output and output.endswith(".parquet")
        ):
            self._parquet(campaign, output)
            return
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

    def _parquet(self, campaign: Campaign, output: str | None) -> None:
        if output is None:
            raise CommandError("Parquet is binary: give a file with -o")
        target = Path(output)
        partial = target.with_name(target.name + ".partial")
        try:
            with partial.open("wb") as stream:
                count = battles_export_parquet(campaign=campaign, stream=stream)
            partial.replace(target)  # complete files only under the name asked for
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"cannot write {output}: {exc.strerror}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        self.stderr.write(f"{campaign.slug}: {count} battles exported")
