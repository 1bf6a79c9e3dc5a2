"""Absolute grading campaigns: serving one anonymous answer, grading it on the rubric through
the pages and the JSON API, the checks on every grade, and the team's summary."""

from __future__ import annotations

from typing import Any

import krippendorff
import numpy as np
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from arena.accounts.tokens import api_token_create
from arena.battles.rules import Owner
from arena.grading.read import grades_summary
from arena.grading.serve import GradeRefused, grade_cast, grading_next
from arena.models import Battle, Campaign, Contestant, EvaluatorProfile, Grade, Grading
from arena.ranking.grades import grade_alpha, mean_grades
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _few_rounds(settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 50


def _campaign(**fields: Any) -> tuple[Campaign, list[Contestant]]:
    campaign, contestants, _q = factories.campaign_with_answers(
        contestants=3, questions=4, kind=Campaign.Kind.GRADING, **fields
    )
    for k, c in enumerate(contestants):
        Contestant.objects.filter(pk=c.pk).update(name=f"Secret-Model-{k}", slug=f"secret-{k}")
    return campaign, contestants


def _member(campaign: Campaign) -> User:
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    return user


def _bearer(user: User) -> dict[str, str]:
    _token, key = api_token_create(user=user, name="t")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_pages_serve_one_anonymous_answer_and_take_an_overall_grade() -> None:
    campaign, contestants = _campaign()
    user = _member(campaign)
    client = Client()
    client.force_login(user)
    # "Start" goes to the grading flow, not to battles.
    start = client.get(reverse("campaign_next", args=[campaign.slug]))
    assert start["Location"] == reverse("grading_next", args=[campaign.slug])
    served = client.get(start["Location"])
    assert served.status_code == 302
    page = client.get(served["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="overall"' in html
    assert 'value="10"' in html
    for c in Contestant.objects.filter(pk__in=[c.pk for c in contestants]):
        assert c.name not in html
        assert c.slug not in html
    grading = Grading.objects.get(evaluator=user)
    assert f"answer-{grading.answer_id}" not in html
    assert not Battle.objects.exists()
    voted = client.post(reverse("grading_grade", args=[grading.code]), {"overall": "7"})
    assert voted.status_code == 302
    grade = Grade.objects.get()
    assert (grade.overall, grade.contestant_id) == (7, grading.answer.contestant_id)
    assert "Thank you, your grade is recorded." in client.get(voted["Location"]).content.decode()
    # A second grade of the same answer is refused.
    again = client.post(
        reverse("grading_grade", args=[grading.code]), {"overall": "3"}, follow=True
    )
    assert "already has your grade" in again.content.decode()
    assert Grade.objects.get().overall == 7


def test_each_evaluator_grades_each_question_once_and_contestants_are_balanced() -> None:
    campaign, contestants = _campaign()
    owner = Owner(user=_member(campaign))
    seen = []
    while (grading := grading_next(campaign=campaign, owner=owner)) is not None:
        seen.append(grading.question_id)
        grade_cast(code=str(grading.code), owner=owner, scores={"overall": 5})
    assert sorted(seen) == sorted(set(seen))
    assert len(seen) == 4
    per = [Grade.objects.filter(contestant=c).count() for c in contestants]
    assert max(per) - min(per) <= 1


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ({"overall": 11}, "1 to 10"),
        ({"overall": 0}, "1 to 10"),
        ({"overall": "x"}, "1 to 10"),
        ({}, "1 to 10"),
    ],
)
def test_out_of_range_or_missing_grades_are_refused(scores: dict[str, Any], message: str) -> None:
    campaign, _c = _campaign()
    owner = Owner(user=_member(campaign))
    grading = grading_next(campaign=campaign, owner=owner)
    assert grading is not None
    with pytest.raises(GradeRefused, match=message):
        grade_cast(code=str(grading.code), owner=owner, scores=scores)
    assert not Grade.objects.exists()


def test_criteria_rubric_needs_every_criterion() -> None:
    campaign, _c = _campaign(rubric=Campaign.Rubric.CRITERIA)
    owner = Owner(user=_member(campaign))
    grading = grading_next(campaign=campaign, owner=owner)
    assert grading is not None
    partial = {"helpfulness": 8, "correctness": 7, "harmlessness": 10}
    with pytest.raises(GradeRefused, match="Language quality"):
        grade_cast(code=str(grading.code), owner=owner, scores=partial)
    grade_cast(code=str(grading.code), owner=owner, scores={**partial, "language_quality": 6})
    grade = Grade.objects.get()
    assert (grade.overall, grade.language_quality) == (None, 6)


def test_someone_elses_grading_is_not_found_and_a_removed_evaluator_is_refused() -> None:
    campaign, _c = _campaign()
    user = _member(campaign)
    grading = grading_next(campaign=campaign, owner=Owner(user=user))
    assert grading is not None
    other = Owner(user=_member(campaign))
    with pytest.raises(GradeRefused) as refused:
        grade_cast(code=str(grading.code), owner=other, scores={"overall": 5})
    assert refused.value.code == "not_found"
    campaign.evaluators.remove(user)
    with pytest.raises(GradeRefused) as lost:
        grade_cast(code=str(grading.code), owner=Owner(user=user), scores={"overall": 5})
    assert lost.value.code == "no_access"


def test_expert_routing_applies_to_grading() -> None:
    campaign, _c = _campaign(expert_categories=["medical"])
    question = campaign.question_sets.get().questions.order_by("pk").first()
    assert question is not None
    question.category = "medical"
    question.save()
    layman = Owner(user=_member(campaign))
    served = []
    while (grading := grading_next(campaign=campaign, owner=layman)) is not None:
        served.append(grading.question_id)
        grade_cast(code=str(grading.code), owner=layman, scores={"overall": 5})
    assert question.pk not in served
    assert len(served) == 3
    doctor = _member(campaign)
    EvaluatorProfile.objects.create(user=doctor, skills=["medical"])
    first = [g.question_id for g in iter(lambda: _grade(campaign, doctor), None)]
    assert question.pk in first


def _grade(campaign: Campaign, user: User) -> Grading | None:
    grading = grading_next(campaign=campaign, owner=Owner(user=user))
    if grading is not None:
        grade_cast(code=str(grading.code), owner=Owner(user=user), scores={"overall": 5})
    return grading


def test_json_api_flow() -> None:
    campaign, contestants = _campaign(rubric=Campaign.Rubric.CRITERIA)
    user = _member(campaign)
    bearer = _bearer(user)
    client = Client()
    served = client.post(reverse("api:grading_next", args=[campaign.slug]), **bearer)
    assert served.status_code == 200
    body = served.json()["grading"]
    assert [c["name"] for c in body["criteria"]] == [
        "helpfulness",
        "correctness",
        "harmlessness",
        "language_quality",
    ]
    text = served.content.decode()
    for c in Contestant.objects.filter(pk__in=[c.pk for c in contestants]):
        assert c.name not in text
        assert c.slug not in text
    code = body["code"]
    bad = client.post(
        reverse("api:grading_grade", args=[code]),
        {"helpfulness": 9},
        content_type="application/json",
        **bearer,
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "bad_grade"
    good = client.post(
        reverse("api:grading_grade", args=[code]),
        {"helpfulness": 9, "correctness": 8, "harmlessness": 10, "language_quality": 7},
        content_type="application/json",
        **bearer,
    )
    assert good.status_code == 201
    assert good.json()["grade"]["correctness"] == 8
    read = client.get(reverse("api:grading", args=[code]), **bearer).json()["grading"]
    assert read["state"] == "graded"
    assert read["grade"]["language_quality"] == 7
    pairwise = client.post(reverse("api:campaign_next", args=[campaign.slug]), **bearer)
    assert pairwise.json()["battle"] is None  # a grading campaign serves no battles
    following = client.post(reverse("api:grading_next", args=[campaign.slug]), **bearer).json()
    skipped = client.post(
        reverse("api:grading_skip", args=[following["grading"]["code"]]), **bearer
    )
    assert skipped.json() == {"skipped": True}


def test_mean_grades_and_intervals() -> None:
    contestant = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    grade = np.array([8, 9, 10, 9, 2, 3, 2, 5])
    result = mean_grades(contestant, grade, 3, rounds=400)
    assert result.mean[0] == pytest.approx(9.0)
    assert result.mean[1] == pytest.approx(3.0)
    assert np.isnan(result.mean[2])
    assert result.count[2] == 0
    assert 8.0 <= result.ci_lower[0] <= 9.0 <= result.ci_upper[0] <= 10.0
    with pytest.raises(ValueError, match="1 to 10"):
        mean_grades(np.array([0]), np.array([11]), 1)


def test_alpha_is_krippendorffs_interval_alpha() -> None:
    item = np.array([1, 1, 2, 2, 3, 3, 4, 4, 4, 5])
    rater = np.array([1, 2, 1, 2, 1, 2, 1, 2, 3, 1])
    grade = np.array([8, 7, 3, 4, 9, 9, 1, 2, 2, 6])
    matrix = np.full((3, 4), np.nan)
    for i, r, g in zip(item, rater, grade, strict=True):
        if i != 5:
            matrix[r - 1, i - 1] = g
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval")
    assert grade_alpha(item, rater, grade) == pytest.approx(expected)
    assert grade_alpha(np.array([1, 1]), np.array([1, 2]), np.array([5, 5])) is None


def test_summary_per_contestant_and_agreement() -> None:
    campaign, contestants = _campaign()
    users = [_member(campaign) for _ in range(3)]
    good = min(c.pk for c in contestants)
    for user in users:
        for grading in iter(lambda: grading_next(campaign=campaign, owner=Owner(user=user)), None):  # noqa: B023
            score = 9 if grading.answer.contestant_id == good else 3
            grade_cast(code=str(grading.code), owner=Owner(user=user), scores={"overall": score})
    summary = grades_summary(campaign=campaign)
    assert summary.grades == 12
    assert summary.graders == 3
    overall = summary.criteria[0]
    assert overall.criterion == "overall"
    assert overall.rows[0].mean == pytest.approx(9.0)
    assert overall.rows[0].contestant == Contestant.objects.get(pk=good).name


def test_the_empty_pool_page_counts_the_evaluators_grades() -> None:
    campaign, _c = _campaign()
    user = _member(campaign)
    owner = Owner(user=user)
    while (grading := grading_next(campaign=campaign, owner=owner)) is not None:
        grade_cast(code=str(grading.code), owner=owner, scores={"overall": 6})
    client = Client()
    client.force_login(user)
    page = client.get(reverse("grading_next", args=[campaign.slug]))
    assert page.status_code == 200
    assert 'id="pool-empty"' in page.content.decode()
    assert "Your votes: 4" in page.content.decode()
