"""Absolute grading in Chromium: the keyboard flow in English (overall grade) and in Korean
(per-criterion rubric), each answer anonymous until the end.

Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User

from arena.models import Campaign, Contestant, Grade
from tests import factories
from tests.browser.conftest import ARTIFACTS, Server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]
PASSWORD = "correct horse battery"


def _make(factory: Any, **fields: Any) -> Any:
    return factory(**fields)


def _grading_campaign(rubric: str, questions: int = 2) -> tuple[Campaign, list[Contestant]]:
    campaign: Campaign = _make(
        factories.CampaignFactory, name=f"Grading {rubric}", kind="grading", rubric=rubric
    )
    question_set = _make(factories.QuestionSetFactory)
    contestants: list[Contestant] = [
        _make(factories.ContestantFactory, name=f"Hidden-{rubric}-{k}", slug=f"hidden-{rubric}-{k}")
        for k in range(2)
    ]
    for i in range(questions):
        question = _make(
            factories.QuestionFactory,
            question_set=question_set,
            text=f"Question {i + 1}: what is **2 + 2**?",
        )
        for contestant in contestants:
            _make(
                factories.AnswerFactory,
                question=question,
                contestant=contestant,
                shown_text="It is `4`.\n\n- two\n- plus two",
            )
    campaign.question_sets.add(question_set)
    campaign.contestants.add(*contestants)
    return campaign, contestants


def _evaluator(campaign: Campaign) -> User:
    user: User = _make(factories.UserFactory)
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "browsersalt", iterations=1000)
    user.save(update_fields=["password"])
    campaign.evaluators.add(user)
    return user


def _log_in(page: Page, server: Server, user: User) -> None:
    page.goto(f"{server.url}/accounts/login/?next=/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("form.login button[type=submit]")


def _assert_anonymous(page: Page, contestants: list[Contestant]) -> None:
    html = page.content()
    for c in contestants:
        assert c.name not in html
        assert c.slug not in html


def test_overall_grades_by_keyboard_in_english(server: Server, browser: Browser) -> None:
    campaign, contestants = _grading_campaign("overall")
    user = _evaluator(campaign)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    _log_in(page, server, user)
    page.goto(f"{server.url}/c/{campaign.slug}/next/")
    assert "/g/" in page.url
    assert page.locator("h3", has_text="Answer").count() == 1
    assert page.locator(".answer-body code", has_text="4").count() == 1  # Markdown rendered
    _assert_anonymous(page, contestants)
    page.screenshot(path=str(ARTIFACTS / "grading-en.png"), full_page=True)
    # 7 then Enter: the grade is sent.
    page.keyboard.press("7")
    assert page.locator('input[name="overall"][value="7"]').is_checked()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_selector("#after-grade")
    assert "Thank you, your grade is recorded." in page.content()
    # N: the next answer; 0 grades 10.
    with page.expect_navigation():
        page.keyboard.press("n")
    page.wait_for_selector("#grade-form")
    _assert_anonymous(page, contestants)
    page.keyboard.press("0")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_selector("#after-grade")
    grades = sorted(g.overall for g in Grade.objects.filter(evaluator=user))
    assert grades == [7, 10]
    context.close()


def test_criteria_rubric_in_korean(server: Server, browser: Browser) -> None:
    campaign, contestants = _grading_campaign("criteria", questions=1)
    user = _evaluator(campaign)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale="ko-KR",
        extra_http_headers={"Accept-Language": "ko"},
    )
    page = context.new_page()
    _log_in(page, server, user)
    page.goto(f"{server.url}/c/{campaign.slug}/next/")
    page.wait_for_selector("#grade-form")
    html = page.content()
    for label in ("유용성", "정확성", "무해성", "언어 품질", "점수 보내기"):
        assert label in html
    _assert_anonymous(page, contestants)
    # Each key grades the active criterion and moves on: 8, 7, 9, 6.
    for key in "8796":
        page.keyboard.press(key)
    page.screenshot(path=str(ARTIFACTS / "grading-ko.png"), full_page=True)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_selector("#after-grade")
    assert "감사합니다. 점수가 기록되었습니다." in page.content()
    grade = Grade.objects.get(evaluator=user)
    scores = (grade.helpfulness, grade.correctness, grade.harmlessness, grade.language_quality)
    assert scores == (8, 7, 9, 6)
    assert grade.overall is None
    context.close()
