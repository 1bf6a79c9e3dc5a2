"""The OpenAI-compatible backend: against vLLM's own server, and against a scripted local
server for the error paths."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from models_backend.backends.base import (
    BackendUnavailable,
    ChatMessage,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
    SamplingConfig,
)
from models_backend.backends.openai_compat import OpenAICompatBackend

SERVED_NAME = "arena-demo"
SYSTEM = "You are a terse geography tutor."
CHAT = (
    ChatMessage("user", "What is the capital of France?"),
    ChatMessage("assistant", "Paris."),
    ChatMessage("user", "And of Italy?"),
)
SECRET = "sk-test-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _request(messages: tuple[ChatMessage, ...] = CHAT, **sampling: Any) -> GenerationRequest:
    options: dict[str, Any] = {"temperature": 0.0, "max_tokens": 32}
    options.update(sampling)
    return GenerationRequest(
        request_id=f"test-{uuid.uuid4().hex[:12]}",
        messages=messages,
        sampling=SamplingConfig(**options),
        system_prompt=SYSTEM,
    )


def _generate(
    spec: ModelSpec, request: GenerationRequest, deltas: list[str] | None = None
) -> GenerationResult:
    async def main() -> GenerationResult:
        backend = OpenAICompatBackend(spec)

        async def on_delta(text: str) -> None:
            if deltas is not None:
                deltas.append(text)

        try:
            return await backend.generate(request, on_delta)
        finally:
            await backend.close()

    return asyncio.run(main())


# --- against vLLM's OpenAI-compatible server ------------------------------------------------


@pytest.fixture(scope="module")
def vllm_server(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM's server on a free port, serving the demo model; the base URL (…/v1).

    Module-scoped, so it is stopped before the in-process engine tests start an engine.
    """
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(demo_model_dir),
        "--served-model-name",
        SERVED_NAME,
        "--enforce-eager",
        "--max-model-len",
        "2048",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-log-stats",
    ]
    with log_path.open("wb") as log:
        server = subprocess.Popen(  # own session: stopped as a group with its engine
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 240
        while True:
            if server.poll() is not None:
                pytest.fail(f"vLLM server exited:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM server not healthy in 240 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield base_url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


@pytest.fixture(scope="module")
def server_spec(vllm_server: str) -> ModelSpec:
    return ModelSpec(backend="openai", model=SERVED_NAME, base_url=vllm_server)


@pytest.mark.vllm
@pytest.mark.slow
def test_streams_a_chat_with_system_prompt_and_reports_usage(
    server_spec: ModelSpec, demo_model_dir: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(demo_model_dir))
    expected_prompt = tokenizer.apply_chat_template(
        [{"role": "system", "content": SYSTEM}]
        + [{"role": m.role, "content": m.content} for m in CHAT],
        tokenize=False,
        add_generation_prompt=True,
    )
    deltas: list[str] = []

    result = _generate(server_spec, _request(), deltas)

    assert result.text.strip()
    assert "".join(deltas) == result.text
    assert len(deltas) > 1
    # The server's own count: system prompt and both turns went through the template.
    assert result.prompt_tokens == len(tokenizer.encode(expected_prompt, add_special_tokens=False))
    assert 0 < result.completion_tokens <= 32
    assert result.finish_reason in {"stop", "length"}


@pytest.mark.vllm
@pytest.mark.slow
def test_seed_and_stop_are_honoured(server_spec: ModelSpec) -> None:
    sampled = [
        _generate(server_spec, _request(temperature=1.0, seed=42, max_tokens=24)).text
        for _ in range(2)
    ]
    story = (ChatMessage("user", "Tell me a long story about a cat and a lighthouse."),)
    full = _generate(server_spec, _request(story, max_tokens=48)).text
    stop_word = full.split()[len(full.split()) // 2]

    stopped = _generate(server_spec, _request(story, max_tokens=48, stop=(stop_word,)))

    assert sampled[0] == sampled[1]
    assert stopped.text == full[: full.index(stop_word)]
    assert stopped.finish_reason == "stop"


@pytest.mark.vllm
@pytest.mark.slow
def test_unknown_model_name_is_a_permanent_failure(vllm_server: str) -> None:
    spec = ModelSpec(backend="openai", model="no-such-model", base_url=vllm_server)

    with pytest.raises(GenerationFailed, match="HTTP 404"):
        _generate(spec, _request())


# --- against a scripted local server ---------------------------------------------------------


class _Scripted(BaseHTTPRequestHandler):
    """Answers by the first path segment: /status/<code>/…, /nousage/…, /slow/…, /hang/…"""

    seen: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        parts = self.path.strip("/").split("/")
        if parts[0] == "status":
            self._status(int(parts[1]))
        elif parts[0] == "nousage":
            self._stream(["Hel", "lo", " there"], delay=0.0)
        elif parts[0] == "slow":
            self._stream([f"w{i} " for i in range(100)], delay=0.1)
        elif parts[0] == "midstream":
            self._stream(["partial"], delay=0.0, error={"message": "engine crashed", "code": 500})
        elif parts[0] == "hang":
            time.sleep(3)
            self._status(500)

    def _status(self, code: int) -> None:
        if code == 503:
            payload = b"upstream unavailable"
        else:
            message = f"bad things; you sent Authorization: {self.headers.get('Authorization')}"
            if code == 400:
                message = f"maximum context length is 2048 tokens (key {SECRET})"
            payload = json.dumps({"error": {"message": message, "code": code}}).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(
        self, pieces: list[str], *, delay: float, error: dict[str, Any] | None = None
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for piece in pieces:
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(delay)
            if error is not None:
                self.wfile.write(f"data: {json.dumps({'error': error})}\n\n".encode())
            else:
                done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f": keep-alive\n\ndata: {json.dumps(done)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away: that is what abort does


@pytest.fixture(scope="module")
def scripted_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _spec(base_url: str, **overrides: Any) -> ModelSpec:
    return ModelSpec(backend="openai", model="scripted", base_url=base_url, **overrides)


@pytest.mark.parametrize("status", [429, 503, 500])
def test_rate_limits_and_server_errors_are_transient(scripted_server: str, status: int) -> None:
    with pytest.raises(BackendUnavailable, match=f"HTTP {status}"):
        _generate(_spec(f"{scripted_server}/status/{status}/v1"), _request())


def test_bad_request_is_permanent_with_the_servers_message_and_no_secret(
    scripted_server: str,
) -> None:
    with pytest.raises(GenerationFailed, match="maximum context length is 2048") as caught:
        _generate(_spec(f"{scripted_server}/status/400/v1"), _request())
    assert SECRET not in str(caught.value)


def test_the_key_comes_from_the_named_variable_and_never_reaches_an_error(
    scripted_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARENA_TEST_API_KEY", "s3cret-value-that-must-not-leak")
    spec = _spec(f"{scripted_server}/status/401/v1", api_key_env="ARENA_TEST_API_KEY")

    with pytest.raises(GenerationFailed) as caught:
        _generate(spec, _request())

    sent = _Scripted.seen[-1]["headers"]["Authorization"]
    assert sent == "Bearer s3cret-value-that-must-not-leak"
    assert "s3cret" not in str(caught.value)


def test_a_missing_key_variable_is_named_in_the_failure(
    scripted_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARENA_TEST_MISSING_KEY", raising=False)
    spec = _spec(f"{scripted_server}/nousage/v1", api_key_env="ARENA_TEST_MISSING_KEY")

    with pytest.raises(GenerationFailed, match="ARENA_TEST_MISSING_KEY"):
        _generate(spec, _request())


def test_request_carries_system_prompt_turns_and_sampling(scripted_server: str) -> None:
    request = _request(temperature=0.5, top_p=0.9, seed=7, stop=("END",), max_tokens=64)

    _generate(_spec(f"{scripted_server}/nousage/v1"), request)

    body = _Scripted.seen[-1]["body"]
    assert body["messages"] == [{"role": "system", "content": SYSTEM}] + [
        {"role": m.role, "content": m.content} for m in CHAT
    ]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["seed"], body["stop"]) == (
        0.5,
        0.9,
        7,
        ["END"],
    )
    assert body["max_tokens"] == 64
    assert "ignore_eos" not in body


def test_without_usage_tokens_are_counted_as_chunks(scripted_server: str) -> None:
    deltas: list[str] = []

    result = _generate(_spec(f"{scripted_server}/nousage/v1"), _request(), deltas)

    assert deltas == ["Hel", "lo", " there"]
    assert (result.text, result.completion_tokens, result.prompt_tokens) == ("Hello there", 3, 0)
    assert result.finish_reason == "stop"


def test_an_error_inside_the_stream_is_raised(scripted_server: str) -> None:
    with pytest.raises(BackendUnavailable, match="engine crashed"):
        _generate(_spec(f"{scripted_server}/midstream/v1"), _request())


def test_abort_ends_the_stream_early(scripted_server: str) -> None:
    async def main() -> GenerationResult:
        backend = OpenAICompatBackend(_spec(f"{scripted_server}/slow/v1"))
        request = _request()
        first = asyncio.Event()

        async def on_delta(_: str) -> None:
            first.set()

        task = asyncio.create_task(backend.generate(request, on_delta))
        await asyncio.wait_for(first.wait(), 10)
        await backend.abort(request.request_id)
        try:
            return await asyncio.wait_for(task, 10)
        finally:
            await backend.close()

    result = asyncio.run(main())

    assert result.finish_reason == "abort"
    assert 0 < result.completion_tokens < 100


def test_unreachable_server_is_transient() -> None:
    spec = _spec(f"http://127.0.0.1:{_free_port()}/v1")

    with pytest.raises(BackendUnavailable, match=r"cannot reach 127\.0\.0\.1"):
        _generate(spec, _request())


def test_a_server_slower_than_the_time_out_is_transient(scripted_server: str) -> None:
    async def main() -> GenerationResult:
        backend = OpenAICompatBackend(
            _spec(f"{scripted_server}/hang/v1"), timeout=httpx.Timeout(0.5)
        )
        try:
            return await backend.generate(_request())
        finally:
            await backend.close()

    with pytest.raises(BackendUnavailable, match="timed out"):
        asyncio.run(main())
