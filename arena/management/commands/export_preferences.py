from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.battles.preferences import FORMATS, preferences_write
from arena.models import Campaign


class Command(BaseCommand):
    help = (
        "Export a campaign's votes as preference data for training (prompt / chosen / rejected "
        "chat messages, as TRL's DPO trainer reads them), as JSON Lines or Parquet."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")
        parser.add_argument(
            "--ties",
            choices=["drop", "flag"],
            default="drop",
            help="ties and both-bad votes: leave out (default) or keep with tie=true",
        )
        parser.add_argument(
            "--include-excluded",
            action="store_true",
            help="keep votes the ratings leave out (tainted or excluded), with excluded=true",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with the slug {options['campaign']!r}")
        output: str | None = options["output"]
        if output is None and options["format"] == "parquet" and sys.stdout.isatty():
            raise CommandError("Parquet is binary: give a file with -o")
        target = Path(output) if output else None
        partial = target.with_name(target.name + ".partial") if target else None
        try:
            if partial is None:
                report = self._write(campaign, sys.stdout.buffer, options)
                sys.stdout.flush()
            else:
                with partial.open("wb") as stream:
                    report = self._write(campaign, stream, options)
                # Renamed only when complete, so no half-written file is left under the name.
                partial.replace(target)  # type: ignore[arg-type]
        except OSError as exc:
            if partial is not None:
                partial.unlink(missing_ok=True)
            raise CommandError(f"cannot write {output}: {exc.strerror}") from None
        except BaseException:
            if partial is not None:
                partial.unlink(missing_ok=True)
            raise
        self.stderr.write(
            f"{campaign.slug}: {report.rows} preference rows exported; left out: "
            f"{report.skipped_ties} ties or both-bad, {report.skipped_excluded} excluded or "
            f"tainted, {report.skipped_empty} without answer text"
        )

    def _write(self, campaign: Campaign, stream: Any, options: dict[str, Any]) -> Any:
        return preferences_write(
            campaign=campaign,
            stream=stream,
            fmt=options["format"],
            ties=options["ties"],
            excluded="keep" if options["include_excluded"] else "drop",
        )
