"""The one small interface between Arena and whatever serves a model.

Arena hands a backend chat messages and sampling parameters; the backend streams text
deltas and returns a final result with token counts. Nothing here knows about battles,
votes or evaluators.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # Keep generating past end-of-sequence until max_tokens: benchmarks only, so that every
    # request produces exactly max_tokens. Sent to OpenAI-compatible servers only when true.
    ignore_eos: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """How to reach one served model; built from a contestant row by the caller."""

    backend: Literal["vllm", "openai"]
    model: str  # local model directory / HF-style path (vllm) or served model name (openai)
    base_url: str = ""
    api_key_env: str = ""  # the *name* of the env var holding the key, never the key
    chat_template: str = ""  # override; empty means the model's own template
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int = 2048
    # vllm only: skip CUDA graphs / torch.compile (fast start, slower decode). None means
    # the ARENA_VLLM_EAGER environment variable ("true"/"false"), default false.
    enforce_eager: bool | None = None


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    messages: Sequence[ChatMessage]
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    system_prompt: str = ""


@dataclass(frozen=True)
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length" | "abort"
    special_tokens: tuple[str, ...] = ()  # the tokenizer's own, for fingerprint stripping


DeltaCallback = Callable[[str], Awaitable[None]]


class BackendError(Exception):
    """Base of every error a backend raises; the message never contains secrets."""


class BackendUnavailable(BackendError):
    """Transient: connection refused, time-out, HTTP 429 or 5xx. Worth retrying."""


class GenerationFailed(BackendError):
    """Permanent: bad request, unknown model, context too long. Not worth retrying."""


class Backend(Protocol):
    async def generate(
        self, request: GenerationRequest, on_delta: DeltaCallback | None = None
    ) -> GenerationResult:
        """Generate one answer; ``on_delta`` is awaited with each new piece of text in order."""
        ...

    async def abort(self, request_id: str) -> None: ...

    async def close(self) -> None: ...
