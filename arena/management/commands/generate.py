from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.generation.answers import answers_enqueue_missing
from arena.models import Contestant, QuestionSet


class Command(BaseCommand):
    help = "Queue generation of the missing answers of a question set (every active contestant)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--set", dest="set_name", required=True)
        parser.add_argument("--contestant", action="append", default=[], help="slug (repeat)")
        parser.add_argument("--retry-failed", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            question_set = QuestionSet.objects.get(name=options["set_name"])
        except QuestionSet.DoesNotExist:
            raise CommandError(f"no question set named {options['set_name']!r}") from None
        contestants = None
        if options["contestant"]:
            contestants = list(Contestant.objects.filter(slug__in=options["contestant"]))
            missing = set(options["contestant"]) - {c.slug for c in contestants}
            if missing:
                raise CommandError(f"unknown contestant slugs: {', '.join(sorted(missing))}")
        result = answers_enqueue_missing(
            question_set=question_set, contestants=contestants, retry_failed=options["retry_failed"]
        )
        for slug, count in result.per_contestant.items():
            self.stdout.write(f"{slug}: {count} answers queued on gen.{slug}")
        self.stdout.write(self.style.SUCCESS(f"{len(result.answer_ids)} answers queued"))
