"""A live conversation goes past its first turn: both sides answer the follow-up, through a
real Celery worker and the OpenAI-compatible backend (a small local endpoint, no vLLM)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from arena.battles.live import LiveRefused, live_battle_continue, live_battle_start
from arena.battles.read import battle_get_for_evaluator
from arena.battles.rules import Owner
from arena.battles.votes import vote_cast
from arena.models import Answer, Battle, Campaign, Vote
from tests import factories
from tests.openai_stub import stream_reply
from tests.workers import Worker, flush_broker, wait_for

pytestmark = pytest.mark.slow
QUEUE = "gen.test-live"


class _Handler(BaseHTTPRequestHandler):
    """Streams "Reply N to: <last prompt>" where N counts the user turns it was sent."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        users = [m["content"] for m in body["messages"] if m["role"] == "user"]
        pieces = (f"Reply {len(users)}", f" to: {users[-1]}")
        stream_reply(self, pieces, prompt_tokens=5, completion_tokens=4)


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}/v1"
    server.shutdown()


@pytest.fixture(scope="module")
def worker(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    flush_broker()
    proc = Worker(
        ["--queue", QUEUE, "--concurrency", "4"], tmp_path_factory.mktemp("live") / "w.log"
    )
    try:
        proc.wait_ready(timeout=120)
        yield proc
    finally:
        proc.stop()


def _live_campaign(endpoint: str) -> tuple[Campaign, Owner]:
    """A live campaign of two contestants served by ``endpoint``, and one member's owner."""
    contestants = [
        factories.ContestantFactory(
            backend="openai", model="remote", base_url=endpoint, queue=QUEUE, max_tokens=16
        )
        for _ in range(2)
    ]
    campaign = factories.CampaignFactory(allow_live=True)
    campaign.contestants.add(*contestants)
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    return campaign, Owner(user=user)


def _answers_have(battle: Battle, followups: int) -> bool:
    answers = Answer.objects.filter(pk__in=[battle.answer_a_id, battle.answer_b_id])
    return all(a.status == "done" and len(a.followups) == followups for a in answers)


@pytest.mark.django_db(transaction=True)
def test_a_follow_up_is_answered_by_both_sides_and_then_voted(
    worker: Worker, endpoint: str
) -> None:
    campaign, owner = _live_campaign(endpoint)

    battle = live_battle_start(campaign=campaign, owner=owner, prompt="First question")
    wait_for(lambda: _answers_have(battle, 0), timeout=60, what="turn 0", log=worker.output())
    live_battle_continue(code=str(battle.code), owner=owner, prompt="Second question")
    with pytest.raises(LiveRefused):  # the follow-up is not answered yet by both
        live_battle_continue(code=str(battle.code), owner=owner, prompt="Third question")
    wait_for(lambda: _answers_have(battle, 1), timeout=60, what="turn 1", log=worker.output())

    for answer in Answer.objects.filter(pk__in=[battle.answer_a_id, battle.answer_b_id]):
        assert answer.shown_text == "Reply 1 to: First question"
        assert answer.followups[0]["shown"] == "Reply 2 to: Second question"
    public = battle_get_for_evaluator(code=str(battle.code), owner=owner)
    assert len(public.rounds) == 2
    assert all(r.a_ready and r.b_ready for r in public.rounds)
    assert "Reply 2 to: Second question" in str(public.rounds[1].a_html)
    assert public.can_vote
    vote = vote_cast(code=str(battle.code), owner=owner, outcome="tie")
    assert vote.battle_id == battle.pk
    assert not Vote.objects.get(pk=vote.pk).tainted, "no answer named a model"


@pytest.mark.django_db(transaction=True)
def test_a_live_prompt_that_asks_the_model_who_it_is_taints_the_vote(
    worker: Worker, endpoint: str
) -> None:
    campaign, owner = _live_campaign(endpoint)
    battle = live_battle_start(campaign=campaign, owner=owner, prompt="Who are you?")
    wait_for(lambda: _answers_have(battle, 0), timeout=60, what="turn 0", log=worker.output())
    vote = vote_cast(code=str(battle.code), owner=owner, outcome="a")
    stored = Vote.objects.get(pk=vote.pk)
    assert stored.tainted
    assert stored.taint == {"asks_identity": True}
