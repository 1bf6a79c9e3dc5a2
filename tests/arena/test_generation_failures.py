"""Transient and permanent backend failures through a real Celery worker (no vLLM needed)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from arena.generation.answers import answers_enqueue_missing
from arena.models import Answer, Contestant
from tests import factories
from tests.openai_stub import stream_reply
from tests.workers import Worker, flush_broker, wait_for

pytestmark = pytest.mark.slow
QUEUE = "gen.test-remote"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FlakyServer(ThreadingHTTPServer):
    """An OpenAI-compatible endpoint that answers 429 to the first request of each prompt,
    then streams a short reply; 400 for a prompt containing 'TOO LONG'."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: FlakyServer

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        with self.server.lock:
            count = self.server.seen[prompt] = self.server.seen.get(prompt, 0) + 1
        if "TOO LONG" in prompt:
            self._json(400, {"error": {"message": "This model's maximum context length is 8"}})
            return
        if count == 1:
            self._json(429, {"error": {"message": "rate limited"}})
            return
        stream_reply(self, ("Hello", " there"), prompt_tokens=9, completion_tokens=2)

    def _json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def flaky() -> Iterator[FlakyServer]:
    server = FlakyServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def worker(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    flush_broker()
    log = tmp_path_factory.mktemp("remote") / "worker.log"
    proc = Worker(
        ["--queue", QUEUE, "--concurrency", "4"],
        log,
        ARENA_GENERATION_MAX_RETRIES="2",
        ARENA_RETRY_BACKOFF_SECONDS="0.2",
    )
    try:
        proc.wait_ready(timeout=120)
        yield proc
    finally:
        proc.stop()


def _remote(base_url: str, slug: str) -> Contestant:
    return factories.ContestantFactory(
        slug=slug,
        name=slug.title(),
        backend="openai",
        model="remote-model",
        base_url=base_url,
        queue=QUEUE,
        max_tokens=16,
    )


@pytest.mark.django_db(transaction=True)
def test_unreachable_backend_fails_after_retries_with_a_clear_reason(worker: Worker) -> None:
    dead = _remote(f"http://127.0.0.1:{_free_port()}/v1", "dead")
    question = factories.QuestionFactory(text="Hello?")
    untouched = factories.AnswerFactory(question=question, shown_text="kept as it was")
    answers_enqueue_missing(question_set=question.question_set, contestants=[dead])
    wait_for(
        lambda: Answer.objects.filter(contestant=dead, status="failed").exists(),
        timeout=60,
        what="the answer to fail",
        log=worker.output(),
    )
    answer = Answer.objects.get(contestant=dead)
    assert answer.failure_reason.startswith("backend unavailable after 3 attempts")
    assert answer.attempts == 3
    assert answer.shown_text == ""
    untouched_after = Answer.objects.get(pk=untouched.pk)
    assert (untouched_after.status, untouched_after.shown_text) == ("done", "kept as it was")


@pytest.mark.django_db(transaction=True)
def test_429_is_retried_and_a_bad_request_fails_without_retry(
    worker: Worker, flaky: FlakyServer
) -> None:
    host, port = flaky.server_address[:2]
    remote = _remote(f"http://{host}:{port}/v1", "flaky")
    ok = factories.QuestionFactory(text="Say hello")
    bad = factories.QuestionFactory(question_set=ok.question_set, text="TOO LONG prompt")
    answers_enqueue_missing(question_set=ok.question_set, contestants=[remote])
    wait_for(
        lambda: (
            Answer.objects.filter(contestant=remote, status__in=["done", "failed"]).count() == 2
        ),
        timeout=60,
        what="both answers to finish",
        log=worker.output(),
    )
    done = Answer.objects.get(contestant=remote, question=ok)
    assert done.status == "done"
    assert done.shown_text == "Hello there"
    assert (done.prompt_tokens, done.completion_tokens) == (9, 2)
    assert flaky.seen["Say hello"] == 2, "the 429 was retried once"
    failed = Answer.objects.get(contestant=remote, question=bad)
    assert failed.status == "failed"
    assert "maximum context length" in failed.failure_reason
    assert flaky.seen["TOO LONG prompt"] == 1, "a permanent error is not retried"
    assert failed.attempts == 1
