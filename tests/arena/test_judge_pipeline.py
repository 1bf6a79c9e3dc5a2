"""End to end: judges through a real Celery generation worker (subprocess), the real vLLM
engine in process and, for the OpenAI-compatible backend, vLLM's own server. The demo model's
verdicts are noise; the plumbing (queue, engine, parsing, storage, redelivery) is real."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

from arena.dispatch import judgments_after_commit
from arena.judging.report import judge_report_build
from arena.judging.runs import judge_run_create
from arena.models import Judgment
from models_backend.backends.vllm_engine import cpu_env_defaults
from tests import factories
from tests.arena.test_generation_pipeline import demo_model
from tests.models_backend.test_openai_compat import SERVED_NAME, vllm_server
from tests.workers import Worker, flush_broker, wait_for

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
__all__ = ["demo_model", "vllm_server"]
for _name, _value in cpu_env_defaults().items():  # vLLM's server reads them (see conftest)
    os.environ.setdefault(_name, _value)
QUEUE = "gen.judge-test"
FINISHED = ("done", "unparsed", "failed")


def _campaign() -> object:
    campaign, _contestants, questions = factories.campaign_with_answers(contestants=2, questions=2)
    # Human votes on both pairs, so that the run's report has something to agree with.
    for question in questions:
        answers = list(question.answers.order_by("id"))
        battle = factories.BattleFactory(
            campaign=campaign, question=question, answer_a=answers[0], answer_b=answers[1]
        )
        _vote(battle)
    return campaign


def _vote(battle: object) -> None:
    from arena.models import Vote

    Vote.objects.create(
        battle=battle,
        campaign=battle.campaign,  # type: ignore[attr-defined]
        evaluator=battle.evaluator,  # type: ignore[attr-defined]
        question=battle.question,  # type: ignore[attr-defined]
        contestant_a=battle.answer_a.contestant,  # type: ignore[attr-defined]
        contestant_b=battle.answer_b.contestant,  # type: ignore[attr-defined]
        outcome="a",
    )


@pytest.fixture
def worker(django_db_setup: None, demo_model: Path, tmp_path: Path) -> Iterator[Worker]:
    flush_broker()
    args = ["--queue", QUEUE, "--warm-model", str(demo_model), "--concurrency", "8"]
    proc = Worker(args, tmp_path / "worker.log")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def _judge(serving: object, **extra: object) -> object:
    return factories.JudgeFactory(serving=serving, max_tokens=12, temperature=0.7, seed=3, **extra)


@pytest.mark.django_db(transaction=True)
def test_vllm_judge_judges_both_orders_on_a_real_worker_and_redelivery_never_doubles(
    worker: Worker, demo_model: Path
) -> None:
    campaign = _campaign()
    serving = factories.ContestantFactory(
        name="Judge model", slug="judge-model", family="SmolLM", model=str(demo_model), queue=QUEUE
    )
    judge = _judge(serving)
    run = judge_run_create(campaign=campaign, judge=judge, trials=1)  # type: ignore[arg-type]
    assert Judgment.objects.filter(run=run).count() == 4  # 2 pairs x 2 orders x 1 trial
    wait_for(
        lambda: Judgment.objects.filter(run=run, status__in=FINISHED).count() == 4,
        timeout=300,
        what="4 finished judgments",
        log=worker.output(),
    )
    rows = list(Judgment.objects.filter(run=run))
    assert {r.status for r in rows} <= {"done", "unparsed"}, [r.reason for r in rows]
    for row in rows:
        assert row.raw_text.strip()
        assert row.prompt_tokens
        assert row.prompt_tokens > 50
        assert row.completion_tokens
        assert row.completion_tokens <= 12
        assert row.attempts == 1
        assert (row.status == "unparsed") == (row.reason != "" and not row.verdict)
    pairs = {(r.answer_a_id, r.answer_b_id) for r in rows}
    assert {(b, a) for a, b in pairs} == pairs  # both orders of every pair
    before = {r.pk: (r.status, r.raw_text, r.finished_at) for r in rows}
    # Redelivery: the same tasks again; finished judgments are skipped, nothing doubles.
    judgments_after_commit(judgment_ids=list(before), queue=QUEUE)
    wait_for(
        lambda: worker.output().count("succeeded") >= 8,
        timeout=120,
        what="the redelivered tasks",
        log=worker.output(),
    )
    after = {r.pk: (r.status, r.raw_text, r.finished_at) for r in Judgment.objects.filter(run=run)}
    assert after == before
    report = judge_report_build(run_id=run.pk, rounds=50)
    assert report["progress"]["counts"]["done"] + report["progress"]["counts"]["unparsed"] == 4
    assert report["progress"]["completion_tokens"] == sum(r.completion_tokens for r in rows)
    assert report["self_preference"] == []


@pytest.fixture(scope="session")
def demo_model_dir(demo_model: Path) -> Path:
    """The name `vllm_server` (tests/models_backend) asks for."""
    return demo_model


@pytest.mark.django_db(transaction=True)
def test_openai_compatible_judge_against_vllm_serve_through_a_worker(
    vllm_server: str, tmp_path: Path
) -> None:
    flush_broker()
    campaign = _campaign()
    serving = factories.ContestantFactory(
        name="Served judge",
        slug="served-judge",
        family="SmolLM",
        backend="openai",
        model=SERVED_NAME,
        base_url=vllm_server,
        queue=QUEUE,
    )
    judge = _judge(serving, mode="single", language="ko")
    worker = Worker(["--queue", QUEUE, "--concurrency", "8"], tmp_path / "worker.log")
    try:
        worker.wait_ready()
        run = judge_run_create(campaign=campaign, judge=judge, trials=2)  # type: ignore[arg-type]
        # Single mode: each of the 4 answers graded in each of 2 trials.
        assert Judgment.objects.filter(run=run).count() == 8
        wait_for(
            lambda: Judgment.objects.filter(run=run, status__in=FINISHED).count() == 8,
            timeout=300,
            what="8 finished judgments",
            log=worker.output(),
        )
    finally:
        worker.stop()
    rows = list(Judgment.objects.filter(run=run))
    assert {r.status for r in rows} <= {"done", "unparsed"}, [r.reason for r in rows]
    assert all(r.raw_text.strip() and r.completion_tokens for r in rows)
    assert all(r.answer_b_id is None for r in rows)
    out = tmp_path / "agreement.json"
    with out.open("w") as handle:
        call_command("judge_agreement", "--campaign", campaign.slug, "--json", stdout=handle)  # type: ignore[attr-defined]
    section = json.loads(out.read_text())
    assert section["run"] == run.pk
    assert sum(section["progress"]["counts"].values()) == 8
