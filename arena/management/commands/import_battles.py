from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.battles.io import BattleImportError, battles_import
from arena.models import Campaign
from arena.questions.imports import more_errors_text


class Command(BaseCommand):
    help = (
        "Import clean battles (a JSON array or JSON Lines: model_a, model_b, winner, tstamp, "
        "judge, language, turn, optional question_id) into a campaign as votes, all or none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the battles file, or - for standard input")
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument(
            "--create-contestants",
            action="store_true",
            help="register unknown model names as inactive placeholder contestants",
        )
        parser.add_argument(
            "--recompute", action="store_true", help="recompute the campaign's ratings afterwards"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with the slug {options['campaign']!r}")
        name = options["file"]
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc.strerror}") from None
        try:
            result = battles_import(
                campaign=campaign, data=data, create_contestants=options["create_contestants"]
            )
        except BattleImportError as exc:
            for error in exc.errors:
                self.stderr.write(f"{name}: {error}")
            if exc.more:
                self.stderr.write(f"{name}: {more_errors_text(exc.more)}")
            if any("unknown model" in error.message for error in exc.errors):
                self.stderr.write("(--create-contestants registers unknown models)")
            raise CommandError(f"{name} was refused; nothing was imported") from None
        created = ", ".join(result.contestants_created) or "none"
        self.stdout.write(
            self.style.SUCCESS(
                f"{campaign.slug}: {result.battles} battles imported into "
                f"{result.question_set.name!r} ({result.questions_created} new questions; "
                f"new contestants: {created})"
            )
        )
        if options["recompute"]:
            from arena.ratings.recompute import ratings_recompute

            outcome = ratings_recompute(campaign_id=campaign.pk)
            self.stdout.write(f"ratings recomputed in {outcome.seconds:.2f} s")
