"""Read-only views of judge runs for scripts (the JSON API): a campaign's runs with their
progress, token counts and estimated cost, and one run with its stored report. Nothing here
computes a report: that happens when a run finishes (`arena.judging.report`)."""

from __future__ import annotations

from typing import Any

from arena.judging import store
from arena.models import Campaign, JudgeRun


def _summary(run: JudgeRun, progress: store.Progress) -> dict[str, Any]:
    counts = progress.to_json()
    counts.pop("run")
    unfinished = progress.counts["pending"] + progress.counts["running"]
    return {
        "id": run.pk,
        "campaign": run.campaign.slug,
        "judge": {"slug": run.judge.slug, "name": run.judge.name},
        "mode": run.config.get("mode"),
        "trials": run.trials,
        "pairs": "all" if run.pairs_limit is None else run.pairs_limit,
        "combine_weight": run.combine_weight,
        "status": "running" if unfinished else "finished",
        "created_at": run.created_at.isoformat(),
        "report_at": None if run.report_at is None else run.report_at.isoformat(),
        **counts,
    }


def judge_run_list(*, campaign: Campaign) -> list[dict[str, Any]]:
    """The campaign's judge runs, newest first: status, judgment counts, tokens and cost.
    Three queries whatever the number of runs."""
    runs = store.campaign_runs(campaign_id=campaign.pk)
    for run in runs:
        run.campaign = campaign
    progress = store.runs_progress(runs=runs)
    return [_summary(run, progress[run.pk]) for run in runs]


def judge_run_get(*, run_id: int) -> JudgeRun | None:
    return store.run_get(run_id=run_id)


def judge_run_document(*, run: JudgeRun) -> dict[str, Any]:
    """One run's summary and its stored report (the judge leaderboard beside the human one,
    run-to-run variation, diagnostics, agreement and correlation); the report is null until
    the run's last judgment finishes."""
    return {
        "run": _summary(run, store.run_progress(run=run)),
        "report": run.report or None,
    }
