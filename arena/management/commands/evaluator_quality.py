from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.models import Campaign
from arena.quality.read import QualityReport, Share, evaluator_quality_list


def _pct(share: Share) -> str:
    return "-" if share.share is None else f"{share.share:.0%}"


class Command(BaseCommand):
    help = (
        "Per-evaluator vote quality of a campaign: votes, time to vote, side-A share, ties, "
        "agreement with the consensus, gold accuracy, self-agreement and the outlier flag."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument("--json", action="store_true", help="print JSON (a list per evaluator)")
        parser.add_argument(
            "--flagged", action="store_true", help="only the evaluators the outlier test flags"
        )
        parser.add_argument(
            "--rounds", type=int, default=500, help="bootstrap rounds of the agreement interval"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with the slug {options['campaign']!r}")
        if options["rounds"] < 0:
            raise CommandError("--rounds must be 0 or more")
        report = evaluator_quality_list(campaign=campaign, agreement_rounds=options["rounds"])
        rows = [e for e in report.evaluators if e.flagged or not options["flagged"]]
        if options["json"]:
            self.stdout.write(json.dumps([e.to_json() for e in rows], ensure_ascii=False, indent=1))
            return
        self._table(report, rows)

    def _table(self, report: QualityReport, rows: list[Any]) -> None:
        head = ("evaluator", "votes", "median s", "fast", "side A", "ties", "consensus", "gold")
        self.stdout.write("  ".join(f"{h:>10}" for h in head) + "  flag")
        for e in rows:
            median = "-" if e.median_ms is None else f"{e.median_ms / 1000:.1f}"
            cells = (
                e.evaluator[:10],
                str(e.votes),
                median,
                _pct(e.too_fast),
                _pct(e.side_a),
                _pct(e.ties),
                _pct(e.consensus),
                _pct(e.gold),
            )
            flag = ("EXCLUDED " if e.excluded else "") + ("; ".join(e.reasons) or "-")
            self.stdout.write("  ".join(f"{c:>10}" for c in cells) + "  " + flag)
        for figure in report.agreement:
            alpha = figure.alpha
            value = "undefined" if alpha.alpha is None else f"{alpha.alpha:.3f}"
            interval = (
                ""
                if alpha.ci_lower is None or alpha.ci_upper is None
                else f" [{alpha.ci_lower:.3f}, {alpha.ci_upper:.3f}]"
            )
            self.stdout.write(
                f"Krippendorff's alpha ({figure.scope}): {value}{interval} over "
                f"{alpha.items} items rated by two or more evaluators"
            )
