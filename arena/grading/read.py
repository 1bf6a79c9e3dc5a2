"""Reads of a grading campaign's grades for the team: per-contestant mean grades with
bootstrap intervals and the graders' agreement (Krippendorff's alpha, interval level), per
criterion of the rubric. Not evaluator-facing: it names contestants."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings

from arena.models import GRADE_CRITERIA, Campaign, Contestant, Grade
from arena.ranking.grades import grade_alpha, mean_grades

BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class GradeRow:
    contestant: str
    grades: int
    mean: float | None
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True)
class CriterionSummary:
    """One criterion (or ``overall``): contestants by mean grade, and the agreement of graders
    on the answers graded more than once (None: undefined)."""

    criterion: str
    rows: list[GradeRow]
    alpha: float | None
    items_graded_twice: int


@dataclass(frozen=True)
class GradesSummary:
    grades: int
    graders: int
    criteria: list[CriterionSummary]


def _none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def grades_summary(*, campaign: Campaign, rounds: int | None = None) -> GradesSummary:
    """Every criterion the campaign's grades carry (``overall`` first; under the criteria
    rubric also their mean, as ``overall``)."""
    rows = list(
        Grade.objects.filter(campaign=campaign).values_list(
            "contestant_id",
            "grading__answer_id",
            "evaluator_id",
            "grading__session_key",
            "overall",
            *GRADE_CRITERIA,
        )
    )
    rounds = int(settings.ARENA_BOOTSTRAP_ROUNDS) if rounds is None else rounds
    if not rows:
        return GradesSummary(grades=0, graders=0, criteria=[])
    contestant_ids = sorted({r[0] for r in rows})
    names = dict(Contestant.objects.filter(pk__in=contestant_ids).values_list("id", "name"))
    position = {pk: k for k, pk in enumerate(contestant_ids)}
    graders = {f"u{r[2]}" if r[2] is not None else f"s{r[3]}" for r in rows}
    grader_index = {g: k for k, g in enumerate(sorted(graders))}
    contestant = np.array([position[r[0]] for r in rows], dtype=np.int64)
    item = np.array([r[1] for r in rows], dtype=np.int64)
    rater = np.array(
        [grader_index[f"u{r[2]}" if r[2] is not None else f"s{r[3]}"] for r in rows],
        dtype=np.int64,
    )
    scores = np.array([[np.nan if v is None else v for v in r[4:]] for r in rows], dtype=float)
    columns = ["overall", *GRADE_CRITERIA]
    if campaign.rubric == Campaign.Rubric.CRITERIA:
        # The overall grade of a criteria rubric is the mean of the four, rounded to a grade.
        present = ~np.isnan(scores[:, 1:]).any(axis=1)
        scores[present, 0] = np.rint(scores[present, 1:].mean(axis=1))
    out: list[CriterionSummary] = []
    for k, name in enumerate(columns):
        given = ~np.isnan(scores[:, k])
        if not given.any():
            continue
        values = scores[given, k].astype(np.int64)
        means = mean_grades(
            contestant[given], values, len(contestant_ids), rounds=rounds, seed=BOOTSTRAP_SEED
        )
        table = [
            GradeRow(
                contestant=names[contestant_ids[j]],
                grades=int(means.count[j]),
                mean=_none(means.mean[j]),
                ci_lower=_none(means.ci_lower[j]),
                ci_upper=_none(means.ci_upper[j]),
            )
            for j in range(len(contestant_ids))
            if means.count[j] > 0
        ]
        table.sort(key=lambda r: (-(r.mean or 0.0), r.contestant))
        twice = int((np.bincount(np.unique(item[given], return_inverse=True)[1]) >= 2).sum())
        out.append(
            CriterionSummary(
                criterion=name,
                rows=table,
                alpha=grade_alpha(item[given], rater[given], values),
                items_graded_twice=twice,
            )
        )
    return GradesSummary(grades=len(rows), graders=len(graders), criteria=out)
