"""A judge run's report from PostgreSQL: the judge leaderboard beside the human one, the
diagnostics, agreement with the humans checked against scikit-learn and scipy, the
`judge_agreement` command and the admin pages."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from arena.judging.report import judge_report_build
from arena.judging.runs import judge_run_create
from arena.models import Answer, JudgeRun, Judgment
from tests import factories
from tests.judging.test_runs import vote

pytestmark = pytest.mark.django_db
STRONG_FIRST = {0: "A>>B", 1: "A>B", 2: "B>A"}


def _verdict(strength_a: int, strength_b: int, swapped: bool) -> str:
    """A judge that ranks by a fixed strength, except that it always calls ties for the
    first position when it is shown the weaker one first in swapped order (position bias)."""
    if strength_a == strength_b:
        return "A=B"
    return "A>B" if strength_a > strength_b else ("A=B" if swapped else "B>A")


@pytest.fixture
def judged() -> tuple[JudgeRun, list[Any]]:
    campaign, contestants, questions = factories.campaign_with_answers(contestants=3, questions=6)
    strength = {c.pk: 3 - k for k, c in enumerate(contestants)}  # first is strongest
    outcomes = ["a", "b", "tie", "a", "a", "b"]
    for k, question in enumerate(questions):
        answers = list(question.answers.order_by("id"))
        for a, b in ((answers[0], answers[1]), (answers[1], answers[2]), (answers[0], answers[2])):
            vote(campaign, a, b, outcomes[k])
    judge = factories.JudgeFactory(
        maker="Zephyrine Labs", strong_weight=3, price_input=2.0, price_output=8.0
    )
    run = judge_run_create(campaign=campaign, judge=judge, trials=2, combine_weight=0.5)
    for j in Judgment.objects.filter(run=run).select_related("answer_a", "answer_b"):
        swapped = j.answer_a_id > (j.answer_b_id or 0)
        verdict = _verdict(strength[j.contestant_a_id], strength[j.contestant_b_id], swapped)
        if j.trial == 1 and verdict == "A>B":
            verdict = "A>>B"
        Judgment.objects.filter(pk=j.pk).update(
            status="done",
            verdict=verdict,
            raw_text=f"[[{verdict}]]",
            prompt_tokens=100,
            completion_tokens=10,
        )
    one = Judgment.objects.filter(run=run).first()
    assert one is not None
    Judgment.objects.filter(pk=one.pk).update(
        status="unparsed", verdict="", raw_text="hmm", reason="no verdict marker"
    )
    return run, contestants


def _labels(run: JudgeRun) -> tuple[list[int], list[int]]:
    """Human and judge classes per vote, computed here the slow and obvious way."""
    judge_scores: dict[tuple[int, int], list[float]] = {}
    score = {"A>>B": 1.0, "A>B": 1.0, "A=B": 0.5, "B>A": 0.0, "B>>A": 0.0}
    for j in Judgment.objects.filter(run=run, status="done"):
        lo, hi = sorted((j.answer_a_id, j.answer_b_id or 0))
        s = score[j.verdict] if j.answer_a_id == lo else 1.0 - score[j.verdict]
        judge_scores.setdefault((lo, hi), []).append(s)

    def cls(s: float) -> int:
        return 0 if s > 0.5 else (2 if s < 0.5 else 1)

    human, judge = [], []
    for v in run.campaign.votes.select_related("battle"):
        a, b = v.battle.answer_a_id, v.battle.answer_b_id
        lo, hi = sorted((a, b))
        s = {"a": 1.0, "b": 0.0}.get(v.outcome, 0.5)
        human.append(cls(s if a == lo else 1.0 - s))
        judge.append(cls(float(np.mean(judge_scores[(lo, hi)]))))
    return human, judge


def test_the_report_rates_judgments_and_measures_agreement(
    judged: tuple[JudgeRun, list[Any]],
) -> None:
    run, contestants = judged
    report = judge_report_build(run_id=run.pk, rounds=300)
    run.refresh_from_db()
    assert run.report == json.loads(json.dumps(report))
    board = report["judge_board"]
    assert [row["name"] for row in board["contestants"]] == [c.name for c in contestants]
    assert board["strong_weight"] == 3
    for row in board["contestants"]:
        assert row["ci_lower"] <= row["rating"] <= row["ci_upper"]
        assert row["sandwich_lower"] <= row["rating"] <= row["sandwich_upper"]
    assert 0.0 <= board["separability"] <= 1.0
    assert report["human_board"]["votes"] == 18
    assert report["progress"]["counts"]["unparsed"] == 1
    assert report["progress"]["completion_tokens"] == 10 * report["progress"]["total"]
    # The judge is position-biased by construction: first-position wins exceed a half.
    assert report["position_bias"]["share"] > 0.5
    # Counted per judgment, not per weighted win: strong verdicts (x3 here) count once.
    decisive = Judgment.objects.filter(run=run, status="done").exclude(verdict="A=B")
    assert decisive.filter(verdict__in=["A>>B", "B>>A"]).exists()
    assert report["position_bias"]["decisive"] == decisive.count()
    assert report["position_bias"]["first_wins"] == (
        decisive.filter(verdict__in=["A>>B", "A>B"]).count()
    )
    assert report["consistency"]["share"] < 1.0
    assert report["variation"]["trials"] == 2
    for row in report["variation"]["contestants"]:
        assert len(row["per_trial"]) == 2
        assert row["lower"] <= row["mean"] <= row["upper"]
        assert row["bootstrap_lower"] <= row["bootstrap_upper"]
    assert report["combined"]["weights"] == {"human": 1.0, "judge": 0.5}
    assert report["judge_style"]["method"] == "bradley-terry-style-control"
    # Self-preference: the factory's contestants are "Zephyrine" models, as is the judge's.
    assert len(report["self_preference"]) == 3

    human, judge = _labels(run)
    overall = report["agreement"]["overall"]
    assert overall["items"] == len(human) == 18
    assert overall["kappa"] == pytest.approx(cohen_kappa_score(human, judge))
    assert overall["with_ties"] == pytest.approx(np.mean(np.array(human) == np.array(judge)))
    assert set(report["agreement"]["by_language"]) == {"en"}
    assert report["agreement"]["by_language"]["en"]["items"] == 18

    humans = {r["name"]: r["rating"] for r in report["human_board"]["contestants"]}
    judges = {r["name"]: r["rating"] for r in board["contestants"]}
    names = sorted(humans)
    corr = report["correlation"]
    assert corr["contestants"] == 3
    assert corr["kendall"] == pytest.approx(
        stats.kendalltau([humans[n] for n in names], [judges[n] for n in names]).statistic
    )
    assert corr["spearman"] == pytest.approx(
        stats.spearmanr([humans[n] for n in names], [judges[n] for n in names]).statistic
    )
    gaps = [row["gap"] for row in report["agreement"]["disagreements"]]
    assert gaps == sorted(gaps, reverse=True)
    assert all(len(row["answers"]) == 2 for row in report["agreement"]["disagreements"])


def test_judge_agreement_prints_text_and_json(judged: tuple[JudgeRun, list[Any]]) -> None:
    run, _ = judged
    out = StringIO()
    call_command("judge_agreement", "--campaign", run.campaign.slug, stdout=out)
    text = out.getvalue()
    assert "Cohen's kappa" in text
    assert "Spearman" in text
    out = StringIO()
    call_command("judge_agreement", "--campaign", run.campaign.slug, "--json", stdout=out)
    section = json.loads(out.getvalue())
    assert section["run"] == run.pk
    assert section["agreement"]["overall"]["items"] == 18


def test_admin_pages_of_a_run(judged: tuple[JudgeRun, list[Any]], staff_user: Any) -> None:
    run, _ = judged
    client = Client()
    client.force_login(staff_user)
    progress = client.get(reverse("admin:arena_judgerun_progress", args=[run.pk]))
    assert progress.status_code == 200
    assert b"judge-progress" in progress.content
    data = client.get(reverse("admin:arena_judgerun_progress_json", args=[run.pk])).json()
    assert data["counts"]["done"] + data["counts"]["unparsed"] == data["total"]
    empty = client.get(reverse("admin:arena_judgerun_report", args=[run.pk]))
    assert b"No report yet" in empty.content
    client.post(reverse("admin:arena_judgerun_report", args=[run.pk]))
    page = client.get(reverse("admin:arena_judgerun_report", args=[run.pk]))
    assert b"judge-board" in page.content
    assert b"human-board" in page.content
    assert b"combined-board" in page.content
    assert b"agreement-slices" in page.content
    assert b"language: en" in page.content
    # Model output on the page is untrusted: answers go through the Markdown sanitizer, the
    # judge's text is escaped.
    stored = JudgeRun.objects.get(pk=run.pk).report
    lo, hi = stored["agreement"]["disagreements"][0]["answers"]
    Answer.objects.filter(pk=lo).update(shown_text="<script>evil()</script> **bold**")
    Judgment.objects.filter(run=run, answer_a_id=lo, answer_b_id=hi).update(
        raw_text="<img src=x onerror=evil()> [[A>B]]"
    )
    worst = client.get(reverse("admin:arena_judgerun_disagreements", args=[run.pk]))
    assert worst.status_code == 200
    assert b"<script>evil()" not in worst.content
    assert b"<strong>bold</strong>" in worst.content
    assert b"<img src=x onerror" not in worst.content
    assert b"&lt;img src=x onerror=evil()&gt;" in worst.content
    assert worst.content.count(b"judge-disagreement") == len(
        JudgeRun.objects.get(pk=run.pk).report["agreement"]["disagreements"]
    )


def test_the_judge_admin_action_takes_exactly_one_judge(staff_user: Any) -> None:
    first, second = factories.JudgeFactory(), factories.JudgeFactory()
    client = Client()
    client.force_login(staff_user)
    url = reverse("admin:arena_judge_changelist")
    one = client.post(url, {"action": "start_run", "_selected_action": [second.pk]})
    assert one.status_code == 302
    assert one["Location"] == reverse("admin:arena_judge_run", args=[second.pk])
    both = client.post(
        url, {"action": "start_run", "_selected_action": [first.pk, second.pk]}, follow=True
    )
    assert b"Choose exactly one judge." in both.content
    assert both.redirect_chain[-1][0] == url


def test_a_run_starts_from_the_judge_admin(staff_user: Any) -> None:
    campaign, *_ = factories.campaign_with_answers(contestants=2, questions=2)
    judge = factories.JudgeFactory()
    client = Client()
    client.force_login(staff_user)
    url = reverse("admin:arena_judge_run", args=[judge.pk])
    assert client.get(url).status_code == 200
    bad = client.post(
        url, {"campaign": campaign.pk, "trials": 1, "pairs": "x", "combine_weight": 0}
    )
    assert bad.status_code == 200
    assert not JudgeRun.objects.exists()
    response = client.post(
        url, {"campaign": campaign.pk, "trials": 1, "pairs": "all", "combine_weight": 0}
    )
    run = JudgeRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:arena_judgerun_progress", args=[run.pk])
    assert Judgment.objects.filter(run=run).count() == 4


def test_a_single_answer_report_rates_by_grades() -> None:
    campaign, contestants, questions = factories.campaign_with_answers(contestants=3, questions=3)
    for question in questions:
        answers = list(question.answers.order_by("id"))
        vote(campaign, answers[0], answers[2], "a")
    run = judge_run_create(campaign=campaign, judge=factories.JudgeFactory(mode="single"), trials=2)
    grade = {c.pk: 9.0 - 3 * k for k, c in enumerate(contestants)}
    for j in Judgment.objects.filter(run=run):
        Judgment.objects.filter(pk=j.pk).update(
            status="done", grade=grade[j.contestant_a_id], raw_text="Rating: [[x]]"
        )
    report = judge_report_build(run_id=run.pk, rounds=100)
    board = report["judge_board"]
    assert [row["name"] for row in board["contestants"]] == [c.name for c in contestants]
    assert report["mean_grades"] == {c.name: grade[c.pk] for c in contestants}
    assert report["position_bias"] is None  # grades have no sides
    assert report["variation"]["trials"] == 2
    overall = report["agreement"]["overall"]
    assert overall["items"] == 3
    assert overall["with_ties"] == 1.0  # the judge graded the voted winner higher every time


def test_the_judge_admin_refuses_a_template_without_its_slots(staff_user: Any) -> None:
    serving = factories.ContestantFactory()
    client = Client()
    client.force_login(staff_user)
    form = {
        "name": "Strict judge",
        "slug": "strict-judge",
        "serving": serving.pk,
        "maker": "",
        "mode": "pairwise",
        "language": "ko",
        "system_prompt": "",
        "prompt_template": "{question} {answer}",
        "use_reference": "on",
        "temperature": "0",
        "top_p": "1",
        "max_tokens": "256",
        "seed": "",
        "trials": "1",
        "strong_weight": "3",
        "queue": "",
        "price_input": "0",
        "price_output": "0",
    }
    response = client.post(reverse("admin:arena_judge_add"), form)
    assert response.status_code == 200
    assert "the template needs the slot {answer_a}" in response.content.decode()
    assert not JudgeRun.objects.exists()
    form["prompt_template"] = ""
    assert client.post(reverse("admin:arena_judge_add"), form).status_code == 302
    assert client.get(reverse("admin:arena_judgerun_add")).status_code == 403


# The JSON API for scripts ---------------------------------------------------------------------


def _bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _staff_with(*codenames: str) -> Any:
    from django.contrib.auth.models import Permission, User

    user = factories.UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # a fresh instance: no permission cache


def test_the_judge_run_api_needs_an_export_token_and_the_run_permission(
    judged: tuple[JudgeRun, list[Any]], evaluator: Any
) -> None:
    from arena.accounts.tokens import api_token_create

    run, _ = judged
    client = Client()
    urls = [
        reverse("api:judge_runs", args=[run.campaign.slug]),
        reverse("api:judge_run", args=[run.pk]),
    ]
    _token, voting = api_token_create(user=evaluator, name="v", scopes=["evaluate"])
    exporter = _staff_with("view_battle", "view_vote")  # may export battles, not judge runs
    _token, export_only = api_token_create(user=exporter, name="e", scopes=["export"])
    for url in urls:
        missing = client.get(url)
        assert missing.status_code == 401
        assert missing["WWW-Authenticate"] == "Bearer"
        assert client.get(url, HTTP_AUTHORIZATION="Bearer arena_nope").status_code == 401
        refused = client.get(url, **_bearer(voting))
        assert refused.status_code == 403
        assert refused.json()["required_scopes"] == ["export"]
        lacking = client.get(url, **_bearer(export_only))
        assert lacking.status_code == 403
        assert "arena.view_judgerun" in lacking.json()["required_permissions"]
    # Read-only: nothing but GET.
    reader = _staff_with("view_battle", "view_vote", "view_judgerun")
    _token, key = api_token_create(user=reader, name="r", scopes=["export"])
    assert client.post(urls[1], **_bearer(key)).status_code == 405


def test_the_judge_run_api_lists_runs_and_serves_the_stored_report(
    judged: tuple[JudgeRun, list[Any]], staff_user: Any, django_assert_max_num_queries: Any
) -> None:
    from arena.accounts.tokens import api_token_create

    run, contestants = judged
    other = judge_run_create(campaign=run.campaign, judge=run.judge, trials=1, pairs=2)
    _token, key = api_token_create(user=staff_user, name="judge", scopes=["export"])
    client = Client()
    listed = client.get(reverse("api:judge_runs", args=[run.campaign.slug]), **_bearer(key))
    assert listed.status_code == 200
    body = listed.json()
    assert body["campaign"] == run.campaign.slug
    assert [r["id"] for r in body["runs"]] == [other.pk, run.pk]  # newest first
    first, second = body["runs"][1], body["runs"][0]
    total = Judgment.objects.filter(run=run).count()
    assert first["judge"] == {"slug": run.judge.slug, "name": run.judge.name}
    assert (first["mode"], first["trials"], first["pairs"]) == ("pairwise", 2, "all")
    assert first["status"] == "finished"
    assert first["total"] == first["finished"] == total
    assert first["counts"]["unparsed"] == 1
    assert first["counts"]["done"] == total - 1
    assert first["completion_tokens"] == 10 * total
    assert first["prompt_tokens"] == 100 * total
    assert first["estimated_cost"] == pytest.approx((100 * total * 2.0 + 10 * total * 8.0) / 1e6)
    assert first["report_at"] is None
    # The second run: 2 pairs x 2 orders x 1 trial, all pending.
    assert (second["status"], second["total"], second["counts"]["pending"]) == ("running", 4, 4)
    assert second["pairs"] == 2
    # The list's queries do not grow with the number of runs.
    judge_run_create(campaign=run.campaign, judge=run.judge, trials=1, pairs=1)
    with django_assert_max_num_queries(8):
        more = client.get(reverse("api:judge_runs", args=[run.campaign.slug]), **_bearer(key))
    assert len(more.json()["runs"]) == 3

    detail_url = reverse("api:judge_run", args=[run.pk])
    before = client.get(detail_url, **_bearer(key)).json()
    assert before["run"]["id"] == run.pk
    assert before["report"] is None  # computed when the run finishes
    stored = judge_report_build(run_id=run.pk, rounds=100)
    detail = client.get(detail_url, **_bearer(key))
    assert detail.status_code == 200
    document = detail.json()
    assert document["run"]["report_at"] is not None
    report = document["report"]
    assert report == json.loads(json.dumps(stored))
    board = report["judge_board"]
    assert [r["name"] for r in board["contestants"]] == [c.name for c in contestants]
    assert {"separability", "strong_weight"} <= report["judge_board"].keys()
    assert report["human_board"]["votes"] == 18
    for key_name in ("consistency", "position_bias", "length_bias", "variation", "correlation"):
        assert report[key_name] is not None, key_name
    assert report["agreement"]["overall"]["items"] == 18
    assert "kappa_ci" in report["agreement"]["overall"]

    missing = client.get(reverse("api:judge_run", args=[other.pk + 1000]), **_bearer(key))
    assert missing.status_code == 404
    nowhere = client.get(reverse("api:judge_runs", args=["no-such-campaign"]), **_bearer(key))
    assert nowhere.status_code == 404


def test_the_human_board_weighs_votes_as_the_campaign_ratings_do(
    judged: tuple[JudgeRun, list[Any]],
) -> None:
    """Actively sampled battles carry inverse-propensity weights: the report's human board
    fits them as the campaign's own leaderboard does, so the two agree point for point."""
    from arena.models import Battle, RatingSnapshot
    from arena.ratings.recompute import ratings_recompute
    from arena.ratings.snapshot import campaign_scope

    run, _contestants = judged
    battles = list(Battle.objects.filter(campaign=run.campaign).order_by("id"))
    for k, battle in enumerate(battles):
        Battle.objects.filter(pk=battle.pk).update(sampling_weight=(0.4, 1.0, 2.5)[k % 3])
    weighted = judge_report_build(run_id=run.pk, rounds=50)
    ratings_recompute(campaign_id=run.campaign.pk)
    snapshot = RatingSnapshot.objects.filter(scope=campaign_scope(run.campaign.pk)).latest()
    site = {r["name"]: r["rating"] for r in snapshot.payload["leaderboard"]["contestants"]}
    board = {r["name"]: r["rating"] for r in weighted["human_board"]["contestants"]}
    assert board == pytest.approx(site, abs=1e-6)
    Battle.objects.filter(campaign=run.campaign).update(sampling_weight=None)
    plain = judge_report_build(run_id=run.pk, rounds=50)
    flat = {r["name"]: r["rating"] for r in plain["human_board"]["contestants"]}
    assert max(abs(board[name] - flat[name]) for name in board) > 1.0  # the weights mattered
