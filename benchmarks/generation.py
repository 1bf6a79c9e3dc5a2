"""Generation throughput: the same prompts and sampling through each layer of the stack.

    python -m benchmarks.generation [--model-dir DIR] [--parts vllm] [--json OUT]

Parts (``--parts``, in order):
  vllm      vLLM alone: one engine in this process, all prompts submitted at once
            (continuous batching), then a few prompts one at a time for reference.
Further parts ("pipeline": enqueue → Celery worker → stored answers; "live": time to first
token over the live path) register themselves in :data:`PARTS` with the same prompts and
sampling, so the figures compare.

Every request generates exactly ``SAMPLING.max_tokens`` tokens (``ignore_eos``), so
tokens/s compare across parts and machines. The default model is the demo model
(converted on first use); on CPU the usual vLLM CPU settings are applied unless set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models_backend.backends.base import (
    ChatMessage,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
    SamplingConfig,
)
from models_backend.backends.vllm_engine import (
    DEFAULT_MAX_NUM_SEQS,
    VllmBackend,
    cpu_env_defaults,
    eager_from_env,
)
from models_backend.runtime import Runtime

_TOPICS = (
    "the water cycle",
    "how vaccines work",
    "the history of the printing press",
    "why the sky is blue",
    "compound interest",
    "photosynthesis",
    "the rules of chess",
    "how a bicycle stays upright",
    "plate tectonics",
    "the French Revolution",
    "how to brew tea",
    "black holes",
    "recursion in programming",
    "the human immune system",
    "how bees make honey",
    "the Pythagorean theorem",
)
_ASKS = (
    "Explain {} to a curious ten-year-old.",
    "Write a short essay about {}.",
    "List five surprising facts about {}.",
    "Describe {} in plain language, step by step.",
)
# 64 prompts: every topic asked four ways.
PROMPTS: tuple[str, ...] = tuple(ask.format(topic) for ask in _ASKS for topic in _TOPICS)
SAMPLING = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=128, ignore_eos=True)
SYSTEM_PROMPT = "You are a helpful assistant."


def build_request(index: int, prompt: str, *, tag: str = "bench") -> GenerationRequest:
    """The benchmark's request for one prompt (same for every part)."""
    return GenerationRequest(
        request_id=f"{tag}-{index}-{time.monotonic_ns()}",
        messages=(ChatMessage("user", prompt),),
        sampling=SAMPLING,
        system_prompt=SYSTEM_PROMPT,
    )


def measure_vllm_alone(
    model_dir: Path | str,
    *,
    prompts: tuple[str, ...] = PROMPTS,
    sequential: int = 4,
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
    enforce_eager: bool | None = None,
    max_model_len: int = 2048,
) -> dict[str, Any]:
    """Start one engine, generate ``prompts`` all at once, then ``sequential`` prompts one
    at a time; shut the engine down and return the figures (seconds, tokens, tokens/s).
    """
    spec = ModelSpec(
        backend="vllm",
        model=str(model_dir),
        max_model_len=max_model_len,
        enforce_eager=enforce_eager,
    )
    runtime = Runtime(factory=lambda s: VllmBackend(s, max_num_seqs=max_num_seqs))
    try:
        started = time.perf_counter()
        backend = runtime.get_backend(spec)
        engine_start_s = time.perf_counter() - started
        # One short request first, so one-off first-request costs are not measured.
        runtime.run(build_request(-1, "Say hello.", tag="warmup"), spec, timeout=600)

        batch = runtime.run_coroutine(
            _all_at_once(backend, prompts), timeout=3600
        )  # every request in flight together: what a worker does with many task threads
        one_by_one = [
            _timed(runtime, spec, build_request(i, prompt, tag="seq"))
            for i, prompt in enumerate(prompts[:sequential])
        ]
    finally:
        runtime.shutdown()

    batch_tokens = sum(r.completion_tokens for r, _, _ in batch["results"])
    ttfts = sorted(ttft for _, ttft, _ in batch["results"])
    seq_tokens = sum(r.completion_tokens for r, _ in one_by_one)
    seq_seconds = sum(s for _, s in one_by_one)
    return {
        "model": str(model_dir),
        "enforce_eager": spec.enforce_eager if enforce_eager is not None else eager_from_env(),
        "max_num_seqs": max_num_seqs,
        "engine_start_s": round(engine_start_s, 2),
        "prompts": len(prompts),
        "max_tokens": SAMPLING.max_tokens,
        "batch_seconds": round(batch["seconds"], 3),
        "batch_output_tokens": batch_tokens,
        "batch_output_tok_per_s": round(batch_tokens / batch["seconds"], 1),
        "batch_ttft_p50_s": round(statistics.median(ttfts), 3),
        "batch_ttft_max_s": round(ttfts[-1], 3),
        "sequential_prompts": len(one_by_one),
        "sequential_output_tok_per_s": round(seq_tokens / seq_seconds, 1) if seq_seconds else 0,
    }


async def _all_at_once(backend: Any, prompts: tuple[str, ...]) -> dict[str, Any]:
    started = time.perf_counter()

    async def one(index: int, prompt: str) -> tuple[GenerationResult, float, float]:
        first: list[float] = []

        async def on_delta(_: str) -> None:
            if not first:
                first.append(time.perf_counter() - started)

        result = await backend.generate(build_request(index, prompt), on_delta)
        return result, (first[0] if first else float("nan")), time.perf_counter() - started

    results = await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    return {"seconds": time.perf_counter() - started, "results": results}


def _timed(
    runtime: Runtime, spec: ModelSpec, request: GenerationRequest
) -> tuple[GenerationResult, float]:
    started = time.perf_counter()
    result = runtime.run(request, spec, timeout=600)
    return result, time.perf_counter() - started


def _part_vllm(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    return measure_vllm_alone(
        model_dir,
        sequential=args.sequential,
        max_num_seqs=args.max_num_seqs,
        enforce_eager=args.eager,
    )


# name -> (title, function(model_dir, args) -> figures). Other parts add themselves here.
def _part_pipeline(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks import generation_pipeline

    return generation_pipeline.run(model_dir)


PARTS: dict[str, tuple[str, Callable[[Path, argparse.Namespace], dict[str, Any]]]] = {
    "vllm": ("(a) vLLM alone, one process, all prompts at once", _part_vllm),
    "pipeline": (
        "(b) the pipeline (enqueue → worker → stored answers) against vLLM alone with the same"
        " sampling, and (c) the live path's time to first token",
        _part_pipeline,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The command line; parts may read extra options from it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generation")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the demo model")
    parser.add_argument(
        "--parts", default="all", help=f"comma-separated, of: {', '.join(PARTS)} (or 'all')"
    )
    parser.add_argument("--sequential", type=int, default=4, help="prompts run one at a time")
    parser.add_argument("--max-num-seqs", type=int, default=DEFAULT_MAX_NUM_SEQS)
    parser.add_argument(
        "--eager",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="vLLM enforce_eager (default: $ARENA_VLLM_EAGER, else compiled)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write figures here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts in order and print their figures."""
    args = build_parser().parse_args(argv)
    names = list(PARTS) if args.parts == "all" else [p for p in args.parts.split(",") if p]
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        print(f"unknown parts: {', '.join(unknown)} (known: {', '.join(PARTS)})", file=sys.stderr)
        return 2
    for name, value in cpu_env_defaults().items():
        os.environ.setdefault(name, value)
    model_dir = args.model_dir
    if model_dir is None:
        from models_backend.demo_model import prepare_demo_model

        model_dir = prepare_demo_model()
    print(
        f"{len(PROMPTS)} prompts, temperature {SAMPLING.temperature}, "
        f"max_tokens {SAMPLING.max_tokens} (ignore_eos), model {model_dir}"
    )
    figures: dict[str, dict[str, Any]] = {}
    for name in names:
        title, run = PARTS[name]
        print(f"\n{title}", flush=True)
        figures[name] = run(Path(model_dir), args)
        for key, value in figures[name].items():
            print(f"  {key:32} {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
