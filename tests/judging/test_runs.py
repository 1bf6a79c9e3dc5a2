"""Judge runs against PostgreSQL: which judgments a run creates, the idempotent execution of
one judgment (a fake backend stands in for the model here; tests/arena/test_judge_pipeline.py
runs the real engine), unparseable verdicts, retries, and the prompts."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from arena.generation import backend
from arena.generation.backend import BackendUnavailable, GenerationFailed, GenerationResult
from arena.judging import prompts, runs
from arena.judging.runs import (
    JudgeConfigError,
    JudgmentBusy,
    judge_run_create,
    judge_run_enqueue,
    judge_runs_retry,
    judgment_claim,
    judgment_execute,
    judgment_prompt,
    judgment_store,
)
from arena.models import Campaign, Judge, JudgeRun, Judgment, Vote
from tests import factories

pytestmark = pytest.mark.django_db


def vote(campaign: Campaign, a: Any, b: Any, outcome: str) -> Vote:
    battle = factories.BattleFactory(campaign=campaign, question=a.question, answer_a=a, answer_b=b)
    return Vote.objects.create(
        battle=battle,
        campaign=campaign,
        evaluator=battle.evaluator,
        question=a.question,
        contestant_a=a.contestant,
        contestant_b=b.contestant,
        outcome=outcome,
    )


class FakeBackend:
    """Answers every judge call with the next scripted text (or raises it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *replies: str | Exception) -> None:
        self.replies = list(replies)
        self.requests: list[Any] = []
        monkeypatch.setattr(backend, "generate", self)

    def __call__(self, request: Any, contestant: Any, *, timeout: float) -> GenerationResult:
        self.requests.append((request, contestant))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return GenerationResult(reply, prompt_tokens=120, completion_tokens=9, finish_reason="stop")


def test_a_pairwise_run_judges_both_orders_of_every_pair_in_every_trial() -> None:
    campaign, _contestants, questions = factories.campaign_with_answers(contestants=3, questions=2)
    judge = factories.JudgeFactory()
    run = judge_run_create(campaign=campaign, judge=judge, trials=2)
    rows = list(Judgment.objects.filter(run=run))
    # 2 questions x 3 pairs x 2 orders x 2 trials.
    assert len(rows) == 24
    keys = {(r.answer_a_id, r.answer_b_id, r.trial) for r in rows}
    assert len(keys) == 24
    assert all((b, a, t) in keys for a, b, t in keys)
    assert all(r.contestant_a_id != r.contestant_b_id for r in rows)
    assert run.config["template"] == prompts.default_template("pairwise", "en")
    assert {r.question_id for r in rows} == {q.pk for q in questions}


def test_pairs_n_takes_the_pairs_humans_voted_on_first() -> None:
    campaign, _contestants, questions = factories.campaign_with_answers(contestants=3, questions=3)
    answers = list(questions[2].answers.order_by("id"))
    vote(campaign, answers[0], answers[2], "a")
    run = judge_run_create(campaign=campaign, judge=factories.JudgeFactory(), pairs=1)
    pairs = {frozenset((r.answer_a_id, r.answer_b_id)) for r in Judgment.objects.filter(run=run)}
    assert pairs == {frozenset((answers[0].pk, answers[2].pk))}


def test_a_single_answer_run_grades_every_answer_in_every_trial() -> None:
    campaign, _contestants, _questions = factories.campaign_with_answers(contestants=2, questions=3)
    run = judge_run_create(campaign=campaign, judge=factories.JudgeFactory(mode="single"), trials=3)
    rows = list(Judgment.objects.filter(run=run))
    assert len(rows) == 6 * 3
    assert all(r.answer_b_id is None for r in rows)


def test_a_run_needs_answers_and_a_sound_template() -> None:
    empty = factories.CampaignFactory()
    with pytest.raises(JudgeConfigError, match="no two done answers"):
        judge_run_create(campaign=empty, judge=factories.JudgeFactory())
    campaign, *_ = factories.campaign_with_answers(contestants=2, questions=1)
    broken = factories.JudgeFactory(prompt_template="Judge {question} and {answer_a}")
    with pytest.raises(JudgeConfigError, match="answer_b"):
        judge_run_create(campaign=campaign, judge=broken)
    assert not Judgment.objects.exists()


def _one(monkeypatch: pytest.MonkeyPatch, *replies: str | Exception, **judge: Any) -> Judgment:
    campaign, *_ = factories.campaign_with_answers(contestants=2, questions=1)
    run = judge_run_create(campaign=campaign, judge=factories.JudgeFactory(**judge))
    return Judgment.objects.filter(run=run).order_by("id").first()  # type: ignore[return-value]


@pytest.mark.django_db(transaction=True)
def test_a_judgment_is_stored_once_and_a_redelivered_task_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeBackend(monkeypatch, "A is clearer.\nMy final verdict is: [[A>>B]]")
    judgment = _one(monkeypatch)
    assert judgment_execute(judgment_id=judgment.pk) == "done"
    judgment.refresh_from_db()
    assert (judgment.status, judgment.verdict, judgment.reason) == ("done", "A>>B", "")
    assert (judgment.prompt_tokens, judgment.completion_tokens, judgment.attempts) == (120, 9, 1)
    assert judgment_execute(judgment_id=judgment.pk) == "skipped"
    assert len(fake.requests) == 1
    request, serving = fake.requests[0]
    assert serving == judgment.run.judge.serving
    assert "[[A>>B]]" in request.system_prompt
    assert judgment.answer_a.shown_text in request.messages[0].content


@pytest.mark.django_db(transaction=True)
def test_an_unparseable_verdict_is_kept_with_its_text_and_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeBackend(monkeypatch, "Both are fine, I suppose A>B.")
    judgment = _one(monkeypatch)
    assert judgment_execute(judgment_id=judgment.pk) == "unparsed"
    judgment.refresh_from_db()
    assert judgment.status == "unparsed"
    assert judgment.verdict == ""
    assert judgment.raw_text == "Both are fine, I suppose A>B."
    assert "no verdict marker" in judgment.reason


@pytest.mark.django_db(transaction=True)
def test_a_fallback_verdict_is_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeBackend(monkeypatch, "Reasons.\nFinal verdict: B>A")
    judgment = _one(monkeypatch)
    judgment_execute(judgment_id=judgment.pk)
    judgment.refresh_from_db()
    assert (judgment.status, judgment.verdict) == ("done", "B>A")
    assert "fallback" in judgment.reason


@pytest.mark.django_db(transaction=True)
def test_a_transient_error_gives_the_judgment_back_and_a_permanent_one_fails_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeBackend(monkeypatch, BackendUnavailable("server busy"))
    judgment = _one(monkeypatch)
    with pytest.raises(BackendUnavailable):
        judgment_execute(judgment_id=judgment.pk)
    judgment.refresh_from_db()
    assert judgment.status == "pending"
    FakeBackend(monkeypatch, GenerationFailed("prompt too long"))
    assert judgment_execute(judgment_id=judgment.pk) == "failed"
    judgment.refresh_from_db()
    assert judgment.status == "failed"
    assert "prompt too long" in judgment.reason


@pytest.mark.django_db(transaction=True)
def test_the_last_two_judgments_finishing_at_once_still_queue_the_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign, *_ = factories.campaign_with_answers(contestants=2, questions=1)
    run = judge_run_create(campaign=campaign, judge=factories.JudgeFactory(), trials=1)
    first, second = Judgment.objects.filter(run=run).order_by("id")
    Judgment.objects.filter(run=run).update(status="running")
    queued: list[int] = []
    monkeypatch.setattr(
        runs.dispatch, "judge_report_after_commit", lambda *, run_id: queued.append(run_id)
    )

    def finish(judgment_id: int) -> None:
        judgment_store(
            judgment_id=judgment_id,
            text="[[A>B]]",
            mode="pairwise",
            prompt_tokens=1,
            completion_tokens=1,
            finish_reason="stop",
            latency_ms=1,
        )

    def finish_elsewhere() -> None:
        try:
            finish(second.pk)
        finally:
            connection.close()

    other = threading.Thread(target=finish_elsewhere)
    with transaction.atomic():
        finish(first.pk)
        assert queued == []  # the second is still running
        other.start()
        other.join(timeout=1.0)
        # The second finish waits for the first to commit before it counts: otherwise it
        # would see the first still running and, like the first, queue nothing.
        assert other.is_alive()
    other.join(timeout=30)
    assert queued == [run.pk]
    assert Judgment.objects.filter(run=run, status="done").count() == 2


def test_queueing_again_takes_pending_stale_and_failed_judgments_never_finished_ones(
    settings: Any,
) -> None:
    campaign, *_ = factories.campaign_with_answers(contestants=2, questions=3)
    run = judge_run_create(campaign=campaign, judge=factories.JudgeFactory(), trials=1)
    done, unparsed, failed, fresh, stale, pending = Judgment.objects.filter(run=run).order_by("id")
    long_ago = timezone.now() - dt.timedelta(seconds=settings.ARENA_GENERATION_HARD_LIMIT + 5)
    Judgment.objects.filter(pk=done.pk).update(status="done", verdict="A>B")
    Judgment.objects.filter(pk=unparsed.pk).update(status="unparsed", reason="no marker")
    Judgment.objects.filter(pk=failed.pk).update(status="failed", reason="prompt too long")
    Judgment.objects.filter(pk=fresh.pk).update(status="running", started_at=timezone.now())
    Judgment.objects.filter(pk=stale.pk).update(status="running", started_at=long_ago)
    assert judge_run_enqueue(run=run) == 2  # pending and stale
    assert judge_runs_retry(runs=[run]) == 3  # and the failed one, now pending again
    statuses = dict(Judgment.objects.filter(run=run).values_list("id", "status"))
    assert statuses[failed.pk] == "pending"
    assert (statuses[done.pk], statuses[unparsed.pk]) == ("done", "unparsed")
    assert statuses[fresh.pk] == statuses[stale.pk] == "running"
    assert statuses[pending.pk] == "pending"


def test_a_fresh_claim_makes_a_second_worker_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    judgment = _one(monkeypatch)
    assert judgment_claim(judgment_id=judgment.pk)
    with pytest.raises(JudgmentBusy):
        judgment_claim(judgment_id=judgment.pk)


@pytest.mark.django_db(transaction=True)
def test_the_task_retries_transient_errors_only(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from arena.tasks import judge_judgment

    settings.ARENA_GENERATION_MAX_RETRIES = 0
    FakeBackend(monkeypatch, BackendUnavailable("down"))
    judgment = _one(monkeypatch)
    # With no retries left a transient error is recorded as a failure, not retried forever.
    assert judge_judgment.apply(kwargs={"judgment_id": judgment.pk}).get() == "failed"
    judgment.refresh_from_db()
    assert "backend unavailable" in judgment.reason


def test_single_mode_prompts_carry_the_reference_and_korean_defaults() -> None:
    campaign, _contestants, questions = factories.campaign_with_answers(contestants=2, questions=1)
    questions[0].reference_answer = "The answer is {42}."
    questions[0].save()
    judge = factories.JudgeFactory(mode="single", language="ko")
    run = judge_run_create(campaign=campaign, judge=judge)
    judgment = Judgment.objects.filter(run=run).first()
    assert judgment is not None
    message = judgment_prompt(judgment=judgment, config=run.config)
    assert message.system == prompts.default_system("single", "ko")
    assert "평점: [[5]]" in message.system
    assert "<|참고 답변|>\nThe answer is {42}." in message.user
    assert judgment.answer_a.shown_text in message.user
    judge.use_reference = False
    judge.save()
    run2 = judge_run_create(campaign=campaign, judge=judge)
    other = Judgment.objects.filter(run=run2).first()
    assert other is not None
    assert "참고" not in judgment_prompt(judgment=other, config=run2.config).user


def test_braces_in_answers_are_not_slots() -> None:
    text = prompts.render(
        "{question}|{answer_a}|{answer_b}|{reference}",
        language="en",
        question="Q {answer_b}",
        reference="",
        answers=(prompts.Conversation("x {question}"), prompts.Conversation("y")),
    )
    assert text == "Q {answer_b}|x {question}|y|"
    assert prompts.template_errors("{question} {answer}", "pairwise") == [
        "the template needs the slot {answer_a}",
        "the template needs the slot {answer_b}",
        "{answer} is not a slot of pairwise templates",
    ]


def test_the_judge_command_starts_a_run_and_refuses_bad_input(capsys: Any) -> None:
    campaign, *_ = factories.campaign_with_answers(contestants=2, questions=2)
    judge = factories.JudgeFactory()
    call_command(
        "judge", "--campaign", campaign.slug, "--judge", judge.slug, "--trials", "2", "--pairs", "1"
    )
    assert Judgment.objects.count() == 4
    assert "4 judgments queued" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no judge"):
        call_command("judge", "--campaign", campaign.slug, "--judge", "nope")
    with pytest.raises(CommandError, match="--pairs"):
        call_command("judge", "--campaign", campaign.slug, "--judge", judge.slug, "--pairs", "x")
    for option, value, message in (
        ("--combine-weight", "nan", "weight"),
        ("--combine-weight", "101", "weight"),
        ("--trials", "0", "trials"),
        ("--trials", "51", "trials"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("judge", "--campaign", campaign.slug, "--judge", judge.slug, option, value)
    # A refused run leaves nothing behind.
    assert JudgeRun.objects.count() == 1
    assert Judgment.objects.count() == 4
    assert Judge.objects.count() == 1
