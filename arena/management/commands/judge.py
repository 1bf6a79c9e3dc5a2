"""Start a judge run over a campaign: one judgment task per pair, order and trial."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.judging.runs import JudgeConfigError, judge_run_create
from arena.judging.store import run_progress
from arena.models import Campaign, Judge


def _pairs(value: str) -> str | int:
    if value == "all":
        return value
    try:
        number = int(value)
    except ValueError:
        raise CommandError("--pairs takes 'all' or a positive number") from None
    if number < 1:
        raise CommandError("--pairs takes 'all' or a positive number")
    return number


class Command(BaseCommand):
    help = (
        "Judge a campaign's answer pairs with an LLM judge: both orders of every pair in every "
        "trial (pairwise) or every answer in every trial (single), queued on the judge's "
        "generation queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument("--judge", required=True, help="judge slug")
        parser.add_argument("--trials", type=int, default=None, help="default: the judge's")
        parser.add_argument("--pairs", default="all", help="'all' (default) or how many pairs")
        parser.add_argument(
            "--combine-weight",
            type=float,
            default=0.0,
            help="weight of one judgment in the combined human+judge ranking (0: none)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with slug {options['campaign']!r}")
        judge = Judge.objects.select_related("serving").filter(slug=options["judge"]).first()
        if judge is None:
            raise CommandError(f"no judge with slug {options['judge']!r}")
        if options["combine_weight"] < 0:
            raise CommandError("--combine-weight must not be negative")
        try:
            run = judge_run_create(
                campaign=campaign,
                judge=judge,
                trials=options["trials"],
                pairs=_pairs(options["pairs"]),  # type: ignore[arg-type]
                combine_weight=options["combine_weight"],
            )
        except JudgeConfigError as exc:
            raise CommandError(str(exc)) from exc
        progress = run_progress(run=run)
        self.stdout.write(
            self.style.SUCCESS(
                f"run {run.pk}: {progress.total} judgments queued on {run.config['queue']} "
                f"({run.trials} trial(s))"
            )
        )
