"""SIGKILL a generation worker mid-flight: tasks are redelivered, no answer is duplicated."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.generation.answers import answers_enqueue_missing
from arena.models import Answer
from tests import factories
from tests.arena.test_generation_pipeline import QUEUES, demo_model, two_contestants
from tests.workers import Worker, flush_broker, wait_for

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
__all__ = ["demo_model"]
# Short limits so that redelivery (after the visibility timeout) happens within the test.
LIMITS = {
    "ARENA_GENERATION_SOFT_LIMIT": "45",
    "ARENA_GENERATION_HARD_LIMIT": "50",
    "ARENA_VISIBILITY_TIMEOUT": "55",
}


@pytest.mark.django_db(transaction=True)
def test_killed_worker_tasks_are_redelivered_and_finish_exactly_once(
    demo_model: Path, tmp_path: Path
) -> None:
    flush_broker()
    contestants = two_contestants(demo_model, max_tokens=96)
    question_set = factories.QuestionSetFactory()
    for i in range(5):
        factories.QuestionFactory(question_set=question_set, text=f"Tell a long story #{i}.")
    args = [
        "--queue",
        QUEUES[0],
        "--queue",
        QUEUES[1],
        "--warm-model",
        str(demo_model),
        "--concurrency",
        "16",
    ]
    first = Worker(args, tmp_path / "first.log", **LIMITS)
    try:
        first.wait_ready()
        answers_enqueue_missing(question_set=question_set, contestants=contestants)
        wait_for(
            lambda: Answer.objects.filter(status="running").exists(),
            timeout=60,
            what="generation to start",
            log=first.output(),
        )
    finally:
        first.kill()
    assert Answer.objects.exclude(status="done").exists(), "killed before everything finished"

    second = Worker(args, tmp_path / "second.log", **LIMITS)
    try:
        second.wait_ready()
        wait_for(
            lambda: Answer.objects.filter(status="done").count() == 10,
            timeout=240,
            what="every answer to finish after redelivery",
            log=second.output(),
        )
    finally:
        second.stop()
    rows = list(Answer.objects.values_list("question_id", "contestant_id", "status", "attempts"))
    assert len(rows) == 10
    assert len({(q, c) for q, c, _s, _a in rows}) == 10
    assert {s for _q, _c, s, _a in rows} == {"done"}
    assert max(a for *_rest, a in rows) >= 2, "some answer was claimed again after the kill"
