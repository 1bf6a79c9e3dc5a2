"""Parts (b) and (c) of the generation benchmark: the whole pipeline against vLLM alone.

(a') vLLM alone, one process, the 64 prompts at once, greedy, max_tokens 128 — the baseline,
     measured in this run with exactly the sampling the pipeline uses;
(b)  the pipeline: enqueue 64 answers → Celery generation worker (threads pool, one engine)
     → stripped answers stored in PostgreSQL; output tokens/s and the ratio b/a';
(c)  the live path's time to first token: from starting a live battle (commit) to the first
     delta frame on the battle's channel group, against vLLM's own TTFT for two requests.

Greedy decoding makes (a') and (b) produce the same text, so their token counts match.
Needs local PostgreSQL and Redis; it creates and drops the database ``arena_bench_gen``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.generation import PROMPTS, SYSTEM_PROMPT
from models_backend.backends.base import (
    ChatMessage,
    GenerationRequest,
    ModelSpec,
    SamplingConfig,
)

ROOT = Path(__file__).resolve().parent.parent
DB = "arena_bench_gen"
SERVER = "postgres://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/13"
QUEUE = "gen.bench"
PIPE_SAMPLING = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=128)
LIVE_ROUNDS = 5


def _request(i: int, prompt: str, tag: str) -> GenerationRequest:
    return GenerationRequest(
        request_id=f"{tag}-{i}-{time.monotonic_ns()}",
        messages=(ChatMessage("user", prompt),),
        sampling=PIPE_SAMPLING,
        system_prompt=SYSTEM_PROMPT,
    )


def baseline(model_dir: Path) -> dict[str, Any]:
    """vLLM alone: all prompts at once, then TTFT of two concurrent requests."""
    from models_backend.runtime import Runtime

    spec = ModelSpec(backend="vllm", model=str(model_dir))
    runtime = Runtime()
    try:
        backend = runtime.get_backend(spec)
        runtime.run(_request(-1, "Say hello.", "warm"), spec, timeout=600)

        async def batch() -> tuple[float, int]:
            started = time.perf_counter()
            results = await asyncio.gather(
                *(backend.generate(_request(i, p, "a")) for i, p in enumerate(PROMPTS))
            )
            return time.perf_counter() - started, sum(r.completion_tokens for r in results)

        seconds, tokens = runtime.run_coroutine(batch(), timeout=3600)

        async def ttft(prompt: str) -> float:
            started = time.perf_counter()
            first: list[float] = []

            async def on_delta(_text: str) -> None:
                if not first:
                    first.append(time.perf_counter() - started)

            await asyncio.gather(
                *(backend.generate(_request(k, prompt, "t"), on_delta) for k in range(2))
            )
            return first[0]

        ttfts = [runtime.run_coroutine(ttft(PROMPTS[i]), timeout=600) for i in range(LIVE_ROUNDS)]
    finally:
        runtime.shutdown()
    return {
        "seconds": seconds,
        "output_tokens": tokens,
        "tok_per_s": tokens / seconds,
        "ttft_s": statistics.median(ttfts),
    }


def _scratch_db() -> str:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    return f"{SERVER}/{DB}"


def _drop_db() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def pipeline(model_dir: Path) -> dict[str, Any]:
    """(b) and (c) against a real worker subprocess; the engine start is not timed."""
    url = _scratch_db()
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS, "DEBUG": "true"}
    env.setdefault("SECRET_KEY", "benchmark-only")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update({"DATABASE_URL": url, "REDIS_URL": REDIS, "DEBUG": "true"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    import django

    django.setup()
    import redis as redis_lib

    redis_lib.Redis.from_url(REDIS).flushdb()
    log = (ROOT / "var" / "logs").resolve()
    log.mkdir(parents=True, exist_ok=True)
    handle = (log / "bench-gen-worker.log").open("wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "generation_worker",
            "--queue",
            QUEUE,
            "--warm-model",
            str(model_dir),
            "--concurrency",
            "64",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # Stop the worker (and vLLM's processes) on any exit, Ctrl-C and SIGTERM included: a
    # stray worker would go on consuming the benchmark's queue in the next run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        _wait_ready(log / "bench-gen-worker.log", worker)
        return {**_measure_pipeline(model_dir), **_measure_live(model_dir)}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        handle.close()
        from django.db import connections

        connections.close_all()
        _drop_db()


def _wait_ready(log: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if " ready." in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited; see {log}")
        time.sleep(0.2)
    raise RuntimeError(f"worker not ready; see {log}")


def _contestant(model_dir: Path, slug: str) -> Any:
    from arena.models import Contestant

    return Contestant.objects.create(
        name=slug,
        slug=slug,
        backend="vllm",
        model=str(model_dir),
        queue=QUEUE,
        system_prompt=SYSTEM_PROMPT,
        temperature=PIPE_SAMPLING.temperature,
        top_p=PIPE_SAMPLING.top_p,
        max_tokens=PIPE_SAMPLING.max_tokens,
    )


def _wait_done(question_set: Any, expected: int) -> None:
    from arena.models import Answer

    done = Answer.objects.filter(question__question_set=question_set, status="done")
    deadline = time.monotonic() + 900
    while done.count() < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("the pipeline did not finish")
        time.sleep(0.05)


def _measure_pipeline(model_dir: Path) -> dict[str, Any]:
    from arena.generation.answers import answers_enqueue_missing
    from arena.models import Answer, Question, QuestionSet

    contestant = _contestant(model_dir, "bench")
    warm = QuestionSet.objects.create(name="warm-up")
    Question.objects.create(question_set=warm, external_id="w", text="Say hello.")
    answers_enqueue_missing(question_set=warm, contestants=[contestant])
    _wait_done(warm, 1)

    question_set = QuestionSet.objects.create(name="bench")
    Question.objects.bulk_create(
        [
            Question(question_set=question_set, external_id=str(i), text=p)
            for i, p in enumerate(PROMPTS)
        ]
    )
    started = time.perf_counter()
    answers_enqueue_missing(question_set=question_set, contestants=[contestant])
    _wait_done(question_set, len(PROMPTS))
    seconds = time.perf_counter() - started
    tokens = sum(
        Answer.objects.filter(question__question_set=question_set).values_list(
            "completion_tokens", flat=True
        )
    )
    return {
        "pipeline_seconds": seconds,
        "pipeline_tokens": tokens,
        "pipeline_tok_per_s": tokens / seconds,
    }


def _measure_live(model_dir: Path) -> dict[str, Any]:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.contrib.auth.models import User
    from django.db import transaction

    from arena.battles.live import battle_group, live_battle_start
    from arena.battles.rules import Owner
    from arena.models import Campaign

    campaign = Campaign.objects.create(
        name="live", slug="live", allow_live=True, blind_timing=False
    )
    campaign.contestants.add(_contestant(model_dir, "live-a"), _contestant(model_dir, "live-b"))
    owner = Owner(user=User.objects.create(username="bench"))
    layer = get_channel_layer()
    assert layer is not None

    async def first_delta(channel: str, started: float) -> float:
        while True:
            message = await layer.receive(channel)
            if message["frame"]["type"] == "delta":
                return time.perf_counter() - started

    async def drain(channel: str) -> None:
        done = 0
        while done < 2:
            message = await asyncio.wait_for(layer.receive(channel), timeout=120)
            done += message["frame"]["type"] in ("done", "error")

    firsts = []
    for i in range(LIVE_ROUNDS):
        channel = async_to_sync(layer.new_channel)()
        started = time.perf_counter()
        with transaction.atomic():
            battle = live_battle_start(campaign=campaign, owner=owner, prompt=PROMPTS[i])
            async_to_sync(layer.group_add)(battle_group(battle.code), channel)
        firsts.append(async_to_sync(first_delta)(channel, started))
        async_to_sync(drain)(channel)  # let both answers finish before the next round
    return {"live_ttft_s": statistics.median(firsts)}


def run(model_dir: Path) -> dict[str, Any]:
    """Parts (a'), (b) and (c) with their figures and ratios."""
    base = baseline(model_dir)
    pipe = pipeline(model_dir)
    return {
        "baseline_output_tokens": base["output_tokens"],
        "baseline_tok_per_s": round(base["tok_per_s"], 1),
        "pipeline_output_tokens": pipe["pipeline_tokens"],
        "pipeline_tok_per_s": round(pipe["pipeline_tok_per_s"], 1),
        "ratio_b_over_a": round(pipe["pipeline_tok_per_s"] / base["tok_per_s"], 3),
        "vllm_ttft_2_requests_ms": round(base["ttft_s"] * 1000, 1),
        "live_ttft_ms": round(pipe["live_ttft_s"] * 1000, 1),
        "live_ttft_overhead_ms": round((pipe["live_ttft_s"] - base["ttft_s"]) * 1000, 1),
    }


def main() -> int:
    from models_backend.backends.vllm_engine import cpu_env_defaults
    from models_backend.demo_model import prepare_demo_model

    for name, value in cpu_env_defaults().items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("ARENA_VLLM_EAGER", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_dir = prepare_demo_model()
    print(
        f"{len(PROMPTS)} prompts, greedy, max_tokens {PIPE_SAMPLING.max_tokens}, "
        f"eager={os.environ['ARENA_VLLM_EAGER']}, model {model_dir}",
        flush=True,
    )
    for key, value in run(model_dir).items():
        print(f"  {key:32} {value}")
    print("targets: ratio_b_over_a >= 0.85, live_ttft_overhead_ms < 50")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
