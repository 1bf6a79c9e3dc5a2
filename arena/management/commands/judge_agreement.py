"""Print how a judge agrees with the human votes of a campaign (its latest run, or --run)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.judging.report import judge_report_build
from arena.models import Campaign, JudgeRun


def _fmt(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ci(pair: Any) -> str:
    if not pair or pair[0] is None:
        return ""
    return f" [{pair[0]:.3f}, {pair[1]:.3f}]"


class Command(BaseCommand):
    help = (
        "Recompute a judge run's report and print its agreement with the campaign's human "
        "votes: agreement with and without ties, Cohen's kappa, per category and language, "
        "and the rank correlation of the two leaderboards."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument("--judge", help="judge slug (default: the latest run of any judge)")
        parser.add_argument("--run", type=int, help="a run id instead of the latest")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with slug {options['campaign']!r}")
        runs = JudgeRun.objects.filter(campaign=campaign)
        if options["judge"]:
            runs = runs.filter(judge__slug=options["judge"])
        if options["run"] is not None:
            runs = runs.filter(pk=options["run"])
        run = runs.order_by("-created_at", "-id").first()
        if run is None:
            raise CommandError("no judge run matches: start one with manage.py judge")
        report = judge_report_build(run_id=run.pk)
        section = {
            "run": run.pk,
            "judge": run.config.get("judge"),
            "campaign": campaign.slug,
            "progress": report["progress"],
            "agreement": report["agreement"],
            "correlation": report["correlation"],
        }
        if options["json"]:
            self.stdout.write(json.dumps(section, indent=2, ensure_ascii=False))
            return
        self._print(section)

    def _print(self, section: dict[str, Any]) -> None:
        out = self.stdout.write
        progress = section["progress"]
        out(
            f"run {section['run']} ({section['judge']}) on {section['campaign']}: "
            f"{progress['counts']['done']} judged, {progress['counts']['unparsed']} unparseable, "
            f"{progress['counts']['failed']} failed"
        )
        overall = section["agreement"]["overall"]
        if overall is None:
            out("no battle was both voted on by humans and judged")
        else:
            out(f"battles: {overall['items']}")
            out(
                f"agreement with ties:    {_fmt(overall['with_ties'])}"
                f"{_ci(overall['with_ties_ci'])}"
            )
            out(
                f"agreement without ties: {_fmt(overall['without_ties'])}"
                f"{_ci(overall['without_ties_ci'])} over {overall['decisive']} decisive"
            )
            out(f"Cohen's kappa:          {_fmt(overall['kappa'])}{_ci(overall['kappa_ci'])}")
            for title, key in (("category", "by_category"), ("language", "by_language")):
                for value, row in section["agreement"][key].items():
                    out(
                        f"  {title} {value}: {row['items']} battles, agreement "
                        f"{_fmt(row['with_ties'])}, kappa {_fmt(row['kappa'])}"
                    )
        corr = section["correlation"]
        if corr is not None:
            out(
                f"leaderboards ({corr['contestants']} contestants): Spearman "
                f"{_fmt(corr['spearman'])}{_ci(corr['spearman_ci'])}, Kendall "
                f"{_fmt(corr['kendall'])}{_ci(corr['kendall_ci'])}"
            )
