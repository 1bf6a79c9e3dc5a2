from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.models import Campaign
from arena.ratings.recompute import RecomputeResult, ratings_recompute, ratings_recompute_all


class Command(BaseCommand):
    help = (
        "Recompute rating snapshots now: the named campaigns, or every active campaign "
        "(with --changed, only those whose votes changed since their last snapshot)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--campaign", action="append", default=[], help="campaign slug (repeatable)"
        )
        parser.add_argument(
            "--changed", action="store_true", help="only campaigns whose votes changed"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slugs: list[str] = options["campaign"]
        results: list[RecomputeResult]
        if slugs:
            found = dict(Campaign.objects.filter(slug__in=slugs).values_list("slug", "pk"))
            unknown = sorted(set(slugs) - found.keys())
            if unknown:
                raise CommandError(f"no campaign with the slug(s): {', '.join(unknown)}")
            results = [ratings_recompute(campaign_id=found[slug]) for slug in slugs]
        elif options["changed"]:
            results = ratings_recompute_all()
        else:
            ids = Campaign.objects.filter(active=True).values_list("pk", flat=True)
            results = [ratings_recompute(campaign_id=pk) for pk in ids]
        for r in results:
            state = "stored" if r.written else "skipped (a newer snapshot exists)"
            self.stdout.write(
                f"campaign {r.campaign_id}: {r.vote_count} votes, {len(r.scopes)} scopes, "
                f"{r.seconds:.2f} s, {state}"
            )
        if not results:
            self.stdout.write("nothing to recompute")
