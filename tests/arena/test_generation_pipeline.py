"""End to end: a real Celery worker (subprocess) with the real vLLM engine on CPU."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from arena.battles.live import battle_group, live_battle_start
from arena.battles.rules import Owner
from arena.battles.votes import vote_cast
from arena.generation.answers import answers_enqueue_missing
from arena.models import Answer, Campaign, Contestant, RatingSnapshot, Vote
from arena.questions.imports import question_set_import
from arena.ratings.recompute import ratings_recompute
from arena.ratings.snapshot import Snapshot, campaign_scope
from tests import factories
from tests.workers import Worker, flush_broker, wait_for

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
QUEUES = ["gen.test-a", "gen.test-b"]


@pytest.fixture(scope="session")
def demo_model() -> Path:
    from models_backend.demo_model import default_model_dir, prepare_demo_model

    return prepare_demo_model(default_model_dir().resolve())


@pytest.fixture(scope="module")
def worker(
    django_db_setup: None, demo_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    flush_broker()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
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
    proc = Worker(args, log)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def two_contestants(model: Path, **extra: Any) -> list[Contestant]:
    common = {"backend": "vllm", "model": str(model), "max_tokens": 24, **extra}
    return [
        factories.ContestantFactory(
            name="Test A",
            slug="test-a",
            queue=QUEUES[0],
            seed=7,
            temperature=0.7,
            system_prompt="You are a helpful assistant.",
            **common,
        ),
        factories.ContestantFactory(
            name="Test B",
            slug="test-b",
            queue=QUEUES[1],
            seed=7,
            temperature=0.2,
            system_prompt="You are a terse assistant.",
            **common,
        ),
    ]


@pytest.mark.django_db(transaction=True)
def test_worker_generates_a_question_set_for_two_contestants(
    worker: Worker, demo_model: Path
) -> None:
    contestants = two_contestants(demo_model)
    lines = [
        {"id": f"p{i}", "prompt": p}
        for i, p in enumerate(
            [
                "What is 2+2?",
                "Name a colour.",
                "Say hello in Korean.",
                "What is Python?",
                "Give one tip for sleep.",
            ]
        )
    ]
    lines[2]["turns"] = ["And in Japanese?"]  # type: ignore[assignment]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    question_set = question_set_import(
        data=data, filename="q.jsonl", set_name="pipeline"
    ).question_set
    queued = answers_enqueue_missing(question_set=question_set, contestants=contestants)
    assert len(queued.answer_ids) == 10
    wait_for(
        lambda: Answer.objects.filter(status="done").count() == 10,
        timeout=240,
        what="10 done answers",
        log=worker.output(),
    )
    answers = list(Answer.objects.select_related("question"))
    assert len(answers) == 10
    for answer in answers:
        assert answer.completion_tokens
        assert answer.prompt_tokens
        assert answer.shown_text.strip()
        assert answer.latency_ms is not None
        assert "<|im_end|>" not in answer.shown_text
        assert isinstance(answer.strip_report, dict)
    multi = [a for a in answers if a.question.external_id == "p2"]
    assert all(len(a.followups) == 1 and a.followups[0]["shown"].strip() for a in multi)
    # Enqueuing again finds nothing missing and never touches finished answers.
    again = answers_enqueue_missing(question_set=question_set, contestants=contestants)
    assert again.answer_ids == []


def _live_frames(
    campaign: Campaign, owner: Owner, prompt: str, timeout: float = 180
) -> tuple[Any, list[dict[str, Any]]]:
    layer = get_channel_layer()
    assert layer is not None

    async def listen(group: str, channel: str) -> list[dict[str, Any]]:
        import asyncio

        frames: list[dict[str, Any]] = []
        done: set[str] = set()
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=5)
            except TimeoutError:
                continue
            frame = message["frame"]
            frames.append(frame)
            if frame["type"] == "done":
                done.add(frame["side"])
            if frame["type"] in ("reveal_both", "error") or done == {"a", "b"}:
                break
        await layer.group_discard(group, channel)
        return frames

    channel = async_to_sync(layer.new_channel)()
    with transaction.atomic():  # the tasks go out on commit, after we listen
        battle = live_battle_start(campaign=campaign, owner=owner, prompt=prompt)
        async_to_sync(layer.group_add)(battle_group(battle.code), channel)
    return battle, async_to_sync(listen)(battle_group(battle.code), channel)


@pytest.mark.django_db(transaction=True)
def test_live_battle_streams_ordered_anonymous_deltas_that_make_the_stored_answer(
    worker: Worker, demo_model: Path
) -> None:
    contestants = two_contestants(demo_model, max_tokens=48)
    campaign = factories.CampaignFactory(allow_live=True, blind_timing=False)
    campaign.contestants.add(*contestants)
    owner = Owner(user=factories.UserFactory())
    battle, frames = _live_frames(campaign, owner, "Write two sentences about the sea.")
    assert {f["type"] for f in frames} <= {"delta", "reset", "done"}
    for side, answer in (("a", battle.answer_a), ("b", battle.answer_b)):
        answer.refresh_from_db()
        assert answer.status == "done"
        text = ""
        for frame in frames:
            if frame.get("side") != side:
                continue
            if frame["type"] == "delta":
                text += frame["text"]
            elif frame["type"] == "reset":
                text = frame["text"]
        assert text == answer.shown_text
        assert any(f["type"] == "delta" and f["side"] == side for f in frames)
    dumped = json.dumps(frames).lower()
    for c in contestants:
        for word in (c.name, c.slug, c.queue_name, str(demo_model)):
            assert word.lower() not in dumped
    assert all(set(f) <= {"type", "side", "text", "html"} for f in frames)


@pytest.mark.django_db(transaction=True)
def test_blind_timing_sends_both_answers_together_and_no_deltas(
    worker: Worker, demo_model: Path
) -> None:
    contestants = two_contestants(demo_model)
    campaign = factories.CampaignFactory(allow_live=True, blind_timing=True)
    campaign.contestants.add(*contestants)
    battle, frames = _live_frames(
        campaign, Owner(user=factories.UserFactory()), "Name three fruits."
    )
    assert [f["type"] for f in frames] == ["reveal_both"]
    battle.answer_a.refresh_from_db()
    battle.answer_b.refresh_from_db()
    assert battle.answer_a.status == battle.answer_b.status == "done"
    assert set(frames[0]) == {"type", "a_html", "b_html"}


# The demo model, told so in its system prompt, greets with its name ("Hello! I'm Zorblax, …"
# at temperature 0); the prompt itself neither names it nor asks who it is.
SELF_NAMING = (
    "You are Zorblax, an assistant made by Quantacorp. Always start your reply with: Zorblax here!"
)


@pytest.mark.django_db(transaction=True)
def test_a_contestant_naming_itself_live_is_never_streamed_and_its_vote_is_left_out(
    worker: Worker, demo_model: Path
) -> None:
    common = {"backend": "vllm", "model": str(demo_model), "max_tokens": 40, "seed": 7}
    named = factories.ContestantFactory(
        name="Zorblax",
        slug="zorblax",
        aliases=["Quantacorp"],  # its maker, a registered term too
        queue=QUEUES[0],
        temperature=0.0,
        system_prompt=SELF_NAMING,
        **common,
    )
    other = factories.ContestantFactory(
        name="Test B", slug="test-b", queue=QUEUES[1], temperature=0.2, **common
    )
    campaign = factories.CampaignFactory(allow_live=True, blind_timing=False)
    assert campaign.tainted_votes == Campaign.TaintedVotes.EXCLUDE  # the default
    campaign.contestants.add(named, other)
    evaluator = factories.UserFactory()
    campaign.evaluators.add(evaluator)
    owner = Owner(user=evaluator)
    battle, frames = _live_frames(campaign, owner, "Say hello.")

    named_side = "a" if battle.answer_a.contestant_id == named.pk else "b"
    answer = Answer.objects.get(pk=getattr(battle, f"answer_{named_side}_id"))
    assert answer.status == "done"
    assert "zorblax" in answer.raw_text.casefold(), "the model did not name itself this time"
    assert "zorblax" not in answer.shown_text.casefold()
    assert "zorblax" in answer.named_terms
    # No frame, delta or reset, ever carried the name, nor anything else of the contestant.
    dumped = json.dumps(frames, ensure_ascii=False).casefold()
    for word in ("zorblax", "quantacorp", named.queue_name):
        assert word not in dumped
    assert any(f["type"] == "delta" and f["side"] == named_side for f in frames)

    vote = vote_cast(code=str(battle.code), owner=owner, outcome=named_side)
    stored = Vote.objects.get(pk=vote.pk)
    assert stored.tainted
    assert stored.taint.get(named_side) == ["zorblax"]
    result = ratings_recompute(campaign_id=campaign.pk)
    assert result.vote_count == 0, "the tainted vote was counted"
    # The latest: every recompute keeps its snapshot (the debounced one may have run too).
    snapshot = RatingSnapshot.objects.filter(
        campaign=campaign, scope=campaign_scope(campaign.pk)
    ).latest()
    assert Snapshot.from_json(snapshot.payload).excluded_tainted == 1
