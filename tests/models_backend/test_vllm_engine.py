"""The in-process vLLM backend and the worker runtime, against the real demo model."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import pytest

from models_backend.backends.base import (
    ChatMessage,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
    SamplingConfig,
)
from models_backend.backends.vllm_engine import VllmBackend
from models_backend.runtime import GenerationTimeout, Runtime

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

SYSTEM = "You are a terse geography tutor."
CHAT = (
    ChatMessage("user", "What is the capital of France?"),
    ChatMessage("assistant", "Paris."),
    ChatMessage("user", "And of Italy?"),
)
PLAIN_TEMPLATE = (
    "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)


def _request(
    messages: tuple[ChatMessage, ...] = CHAT, *, system: str = "", **sampling: object
) -> GenerationRequest:
    options: dict[str, object] = {"temperature": 0.0, "max_tokens": 32}
    options.update(sampling)
    return GenerationRequest(
        request_id=f"test-{uuid.uuid4().hex[:12]}",
        messages=messages,
        sampling=SamplingConfig(**options),  # type: ignore[arg-type]
        system_prompt=system,
    )


def _backend(runtime: Runtime, spec: ModelSpec) -> VllmBackend:
    backend = runtime.get_backend(spec)
    assert isinstance(backend, VllmBackend)
    return backend


def test_system_prompt_and_two_turn_chat_are_rendered_and_answered(
    vllm_runtime: Runtime, vllm_spec: ModelSpec
) -> None:
    request = _request(system=SYSTEM)
    backend = _backend(vllm_runtime, vllm_spec)
    prompt = backend._tokenizer.decode(backend.render_prompt(request))

    result = vllm_runtime.run(request, vllm_spec, timeout=120)

    assert prompt.startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>")
    assert "What is the capital of France?" in prompt
    assert "<|im_start|>assistant\nParis.<|im_end|>" in prompt
    assert prompt.endswith("And of Italy?<|im_end|>\n<|im_start|>assistant\n")
    assert result.text.strip()
    assert result.prompt_tokens == len(backend.render_prompt(request))
    assert 0 < result.completion_tokens <= 32
    assert result.finish_reason in {"stop", "length"}
    assert "<|im_end|>" in result.special_tokens


def test_deltas_arrive_in_order_and_concatenate_to_the_final_text(
    vllm_runtime: Runtime, vllm_spec: ModelSpec
) -> None:
    deltas: list[str] = []
    threads: set[str] = set()

    def on_delta(text: str) -> None:
        deltas.append(text)
        threads.add(threading.current_thread().name)

    result = vllm_runtime.run(
        _request(max_tokens=40, ignore_eos=True), vllm_spec, on_delta=on_delta, timeout=120
    )

    assert len(deltas) > 1
    assert "".join(deltas) == result.text
    assert result.completion_tokens == 40
    assert result.finish_reason == "length"
    assert threads == {"arena-generation-loop"}


def test_eight_concurrent_requests_from_task_threads_all_complete(
    vllm_runtime: Runtime, vllm_spec: ModelSpec
) -> None:
    results: dict[int, GenerationResult] = {}
    errors: list[BaseException] = []

    def task(i: int) -> None:
        question = ChatMessage("user", f"Write a short poem about the number {i}.")
        try:
            results[i] = vllm_runtime.run(
                _request((question,), max_tokens=48, ignore_eos=True), vllm_spec, timeout=180
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=task, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(results) == list(range(8))
    assert all(r.completion_tokens == 48 and r.text for r in results.values())


def test_prompt_longer_than_the_context_fails_before_submitting(
    vllm_runtime: Runtime, vllm_spec: ModelSpec
) -> None:
    long_question = ChatMessage("user", "tell me about apples " * 800)

    with pytest.raises(GenerationFailed, match=r"prompt is \d+ tokens, longer than the model's"):
        vllm_runtime.run(_request((long_question,)), vllm_spec, timeout=60)


def test_same_seed_gives_the_same_text_at_positive_temperature(
    vllm_runtime: Runtime, vllm_spec: ModelSpec
) -> None:
    def sample(seed: int) -> str:
        request = _request(temperature=1.0, top_p=0.95, seed=seed, max_tokens=40, ignore_eos=True)
        return vllm_runtime.run(request, vllm_spec, timeout=120).text

    first, second, other = sample(1234), sample(1234), sample(99)

    assert first == second
    assert other != first


def test_chat_template_override_is_used_and_shares_the_engine(
    vllm_runtime: Runtime, vllm_spec: ModelSpec
) -> None:
    spec = dataclasses.replace(vllm_spec, chat_template=PLAIN_TEMPLATE)
    default = _backend(vllm_runtime, vllm_spec)
    override = _backend(vllm_runtime, spec)
    request = _request(system=SYSTEM, max_tokens=8)

    result = vllm_runtime.run(request, spec, timeout=120)

    expected = (
        f"[system] {SYSTEM}\n[user] What is the capital of France?\n[assistant] Paris.\n"
        "[user] And of Italy?\n[assistant] "
    )
    assert override._tokenizer.decode(override.render_prompt(request)) == expected
    assert result.prompt_tokens == len(
        override._tokenizer.encode(expected, add_special_tokens=False)
    )
    assert override._engine is default._engine


def test_abort_stops_a_running_request(vllm_runtime: Runtime, vllm_spec: ModelSpec) -> None:
    request = _request(max_tokens=1500, ignore_eos=True)
    started = threading.Event()
    outcome: list[GenerationResult] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            vllm_runtime.run(request, vllm_spec, on_delta=lambda _: started.set(), timeout=300)
        )
    )
    worker.start()
    assert started.wait(60)

    vllm_runtime.abort(request.request_id, vllm_spec)
    worker.join(60)

    assert outcome
    assert outcome[0].finish_reason == "abort"
    assert outcome[0].completion_tokens < 1500


def test_time_out_cancels_the_request_and_the_engine_keeps_serving(
    vllm_runtime: Runtime, vllm_spec: ModelSpec
) -> None:
    started = time.monotonic()
    with pytest.raises(GenerationTimeout):
        vllm_runtime.run(_request(max_tokens=1500, ignore_eos=True), vllm_spec, timeout=1.0)
    assert time.monotonic() - started < 10

    result = vllm_runtime.run(_request(max_tokens=4, ignore_eos=True), vllm_spec, timeout=60)
    assert result.completion_tokens == 4


def test_runtime_creates_one_backend_per_spec(vllm_runtime: Runtime, vllm_spec: ModelSpec) -> None:
    assert vllm_runtime.get_backend(vllm_spec) is vllm_runtime.get_backend(vllm_spec)
