"""Read-only figures of how a campaign collects its judgements, for the team's collection
page: the active sampling plan, the expert routing's counts per skill, and the per-answer
acceptable / not acceptable verdicts beside the preference. Names contestants: staff only."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from arena.models import (
    Campaign,
    Contestant,
    EvaluatorProfile,
    Grade,
    PairLoad,
    Question,
    Vote,
)


@dataclass(frozen=True)
class PlanRow:
    first: str
    second: str
    probability: float | None
    battles: int


@dataclass(frozen=True)
class SkillRow:
    """One reserved category or language: who may take its questions and what they did."""

    kind: str  # "category" or "language"
    skill: str
    evaluators: int  # the campaign's evaluators who hold it
    questions: int
    votes: int  # votes on its questions
    expert_votes: int  # of those, by evaluators who hold it
    grades: int


@dataclass(frozen=True)
class AcceptableRow:
    contestant: str
    rated: int  # answers with a verdict
    acceptable: int


@dataclass(frozen=True)
class AcceptableFigures:
    votes: int  # votes that carry both verdicts
    both_acceptable: int
    both_unacceptable: int
    rows: list[AcceptableRow]


def sampling_plan_rows(*, campaign: Campaign) -> list[PlanRow]:
    """The pairs, most probable first (the plan of `arena.battles.active`), with battles."""
    names = dict(Contestant.objects.values_list("id", "name"))
    loads = PairLoad.objects.filter(campaign=campaign).values_list(
        "contestant_lo_id", "contestant_hi_id", "weight", "battles"
    )
    rows = [PlanRow(names[lo], names[hi], w, n) for lo, hi, w, n in loads]
    return sorted(rows, key=lambda r: (-(r.probability or 0.0), -r.battles, r.first, r.second))


def skill_counts(*, campaign: Campaign) -> list[SkillRow]:
    """Per category and language the campaign reserves for experts."""
    members = set(campaign.evaluators.values_list("pk", flat=True))
    profiles = EvaluatorProfile.objects.filter(user_id__in=members).values_list(
        "user_id", "skills", "languages"
    )
    holders: dict[tuple[str, str], set[int]] = {}
    for user_id, skills, languages in profiles:
        for skill in skills or []:
            holders.setdefault(("category", str(skill)), set()).add(user_id)
        for language in languages or []:
            holders.setdefault(("language", str(language)), set()).add(user_id)
    questions = Question.objects.filter(question_set__campaigns=campaign)
    rows = []
    wanted = [("category", c) for c in campaign.expert_categories] + [
        ("language", v) for v in campaign.expert_languages
    ]
    for kind, skill in wanted:
        mine = questions.filter(**{kind: skill})
        votes = Vote.objects.filter(campaign=campaign, question__in=mine)
        experts = holders.get((kind, skill), set())
        counted = votes.aggregate(
            n=Count("id"), experts=Count("id", filter=Q(evaluator_id__in=sorted(experts)))
        )
        rows.append(
            SkillRow(
                kind=kind,
                skill=skill,
                evaluators=len(experts),
                questions=mine.count(),
                votes=counted["n"],
                expert_votes=counted["experts"],
                grades=Grade.objects.filter(campaign=campaign, question__in=mine).count(),
            )
        )
    return rows


def acceptable_figures(*, campaign: Campaign) -> AcceptableFigures:
    """How often both answers were acceptable, both not, and each contestant's share."""
    votes = Vote.objects.filter(campaign=campaign)
    both = votes.filter(acceptable_a__isnull=False, acceptable_b__isnull=False).aggregate(
        n=Count("id"),
        good=Count("id", filter=Q(acceptable_a=True, acceptable_b=True)),
        bad=Count("id", filter=Q(acceptable_a=False, acceptable_b=False)),
    )
    per: dict[int, list[int]] = {}
    for side in ("a", "b"):
        rows = (
            votes.filter(**{f"acceptable_{side}__isnull": False})
            .values(f"contestant_{side}")
            .annotate(n=Count("id"), ok=Count("id", filter=Q(**{f"acceptable_{side}": True})))
            .values_list(f"contestant_{side}", "n", "ok")
        )
        for contestant_id, n, ok in rows:
            totals = per.setdefault(contestant_id, [0, 0])
            totals[0] += n
            totals[1] += ok
    names = dict(Contestant.objects.filter(pk__in=list(per)).values_list("id", "name"))
    table = sorted(
        (AcceptableRow(names[pk], n, ok) for pk, (n, ok) in per.items()),
        key=lambda r: (-(r.acceptable / r.rated), r.contestant),
    )
    return AcceptableFigures(
        votes=both["n"], both_acceptable=both["good"], both_unacceptable=both["bad"], rows=table
    )
