from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.battles.votes import votes_taint_again
from arena.generation.answers import names_record_all
from arena.models import Campaign


class Command(BaseCommand):
    help = (
        "Record which model names every finished answer and its question use, then decide "
        "again which votes are tainted (answers stored before names were recorded, or new "
        "contestants registered). The ratings pick the change up on their next recompute."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", help="only this campaign's question sets and votes")

    def handle(self, *args: Any, **options: Any) -> None:
        campaigns = Campaign.objects.all()
        if options["campaign"]:
            campaigns = campaigns.filter(slug=options["campaign"])
            if not campaigns.exists():
                raise CommandError(f"no campaign with the slug {options['campaign']!r}")
        sets = None
        if options["campaign"]:
            sets = [s for c in campaigns for s in c.question_sets.all()]
        recorded = names_record_all(question_sets=sets)
        self.stdout.write(
            f"names recorded again: {recorded.answers} answers, {recorded.questions} questions"
        )
        for campaign in campaigns:
            changed = votes_taint_again(campaign=campaign)
            self.stdout.write(f"{campaign.slug}: {changed} votes changed taint")
