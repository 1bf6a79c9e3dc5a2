"""Backends behind one interface (:class:`~models_backend.backends.base.Backend`).

:func:`make_backend` is the only constructor callers need. The vLLM backend is imported
lazily: web nodes and OpenAI-only workers need not install vLLM.
"""

from __future__ import annotations

from models_backend.backends.base import (
    Backend,
    BackendError,
    BackendUnavailable,
    ChatMessage,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
    SamplingConfig,
)

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "ChatMessage",
    "GenerationFailed",
    "GenerationRequest",
    "GenerationResult",
    "ModelSpec",
    "SamplingConfig",
    "make_backend",
]


def make_backend(spec: ModelSpec) -> Backend:
    """A new backend for ``spec``. For ``vllm`` this starts an engine: call it once per
    process, on the thread of the event loop that will use it (see ``models_backend.runtime``).
    """
    kind: str = spec.backend  # a str at run time: specs are built from database rows
    if kind == "vllm":
        from models_backend.backends.vllm_engine import VllmBackend

        return VllmBackend(spec)
    if kind == "openai":
        from models_backend.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(spec)
    msg = f"unknown backend {kind!r}"
    raise ValueError(msg)
