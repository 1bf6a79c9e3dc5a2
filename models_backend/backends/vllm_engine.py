"""In-process vLLM: one async engine, many requests in flight (continuous batching).

The engine is created once per worker process and shared by every request; concurrent
``generate()`` calls on the same event loop are batched by vLLM's scheduler. The engine
starts child processes, so the program that creates it needs an ``if __name__ == "__main__"``
guard, and it must not run in a daemonic process (Celery's prefork pool).

Environment (read by vLLM itself on CPU): ``VLLM_CPU_KVCACHE_SPACE`` (GiB of KV cache),
``VLLM_CPU_OMP_THREADS_BIND`` and ``VLLM_CPU_NUM_OF_RESERVED_CPU``; ``ARENA_VLLM_EAGER``
(``true``/``false``) is the default for :attr:`ModelSpec.enforce_eager`.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from models_backend.backends.base import (
    BackendUnavailable,
    ChatMessage,
    DeltaCallback,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
    SamplingConfig,
)

logger = logging.getLogger(__name__)

EAGER_ENV = "ARENA_VLLM_EAGER"
DEFAULT_MAX_NUM_SEQS = 32
_ERROR_CHARS = 300


def eager_from_env(environ: dict[str, str] | None = None) -> bool:
    """``ARENA_VLLM_EAGER`` as a bool: exactly ``true``/``false`` (any case), unset is false."""
    raw = (os.environ if environ is None else environ).get(EAGER_ENV, "").strip().lower()
    if raw in ("", "false"):
        return False
    if raw == "true":
        return True
    msg = f"{EAGER_ENV} must be 'true' or 'false', not {raw!r}"
    raise ValueError(msg)


def cpu_env_defaults() -> dict[str, str]:
    """Settings vLLM's CPU build needs on a small machine; callers ``setdefault`` them into
    ``os.environ`` before an engine starts (they are ignored on GPUs).

    The default reserves a core and computes on the rest: on 2 cores that halves speed.
    """
    cpus = sorted(os.sched_getaffinity(0))
    contiguous = cpus == list(range(cpus[0], cpus[-1] + 1))
    bind = f"{cpus[0]}-{cpus[-1]}" if contiguous else ",".join(map(str, cpus))
    return {
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "VLLM_CPU_OMP_THREADS_BIND": bind,
    }


def engine_key(spec: ModelSpec) -> tuple[object, ...]:
    """The spec fields that shape the engine; specs equal here can share one engine.

    The chat template is applied per request, so two contestants that differ only in
    template, system prompt or sampling are served by the same engine.
    """
    eager = spec.enforce_eager if spec.enforce_eager is not None else eager_from_env()
    return (
        spec.model,
        spec.tensor_parallel_size,
        spec.gpu_memory_utilization,
        spec.max_model_len,
        eager,
    )


class VllmBackend:
    """A :class:`~models_backend.backends.base.Backend` over an in-process ``AsyncLLM``.

    Construction starts the engine (seconds to minutes) and must happen on the thread of
    the event loop that will await :meth:`generate`: vLLM binds its output handler and
    sockets to that loop. :class:`models_backend.runtime.Runtime` takes care of this.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
        _shared_from: VllmBackend | None = None,
    ) -> None:
        if spec.backend != "vllm":
            msg = f"VllmBackend needs a vllm spec, got {spec.backend!r}"
            raise ValueError(msg)
        self.spec = spec
        self.max_model_len = spec.max_model_len
        self._root: VllmBackend = _shared_from or self
        self._engine_obj: Any = None
        if _shared_from is not None:
            self._tokenizer: Any = _shared_from._tokenizer
            self.special_tokens: tuple[str, ...] = _shared_from.special_tokens
            self.startup_seconds = 0.0
            return
        started = time.monotonic()
        self._engine_obj = _start_engine(spec, max_num_seqs=max_num_seqs)
        self._tokenizer = self._engine_obj.get_tokenizer()
        self.special_tokens = _special_tokens(self._tokenizer)
        self.startup_seconds = time.monotonic() - started
        logger.info("vLLM engine for %s ready in %.1f s", spec.model, self.startup_seconds)

    @property
    def _engine(self) -> Any:
        engine = self._root._engine_obj
        if engine is None:
            msg = "the vLLM engine has been shut down"
            raise BackendUnavailable(msg)
        return engine

    def for_spec(self, spec: ModelSpec) -> VllmBackend:
        """A backend for ``spec`` that shares this engine (same :func:`engine_key`).

        Closing the returned view does not stop the engine; closing this one does.
        """
        if engine_key(spec) != engine_key(self.spec):
            msg = "for_spec() needs a spec that can share this engine"
            raise ValueError(msg)
        return VllmBackend(spec, _shared_from=self)

    @property
    def healthy(self) -> bool:
        """False once the engine core has died; a dead engine never recovers."""
        engine = self._root._engine_obj
        return engine is not None and not bool(engine.errored)

    def render_prompt(self, request: GenerationRequest) -> list[int]:
        """Token ids of the chat-templated prompt (system prompt first, then the messages).

        Uses ``spec.chat_template`` when set, else the tokenizer's own template, and ends
        with the generation prompt for the assistant's turn.
        """
        messages = _chat_messages(request.system_prompt, request.messages)
        options: dict[str, Any] = {"tokenize": False, "add_generation_prompt": True}
        if self.spec.chat_template:
            options["chat_template"] = self.spec.chat_template
        try:
            text = self._tokenizer.apply_chat_template(messages, **options)
        except Exception as exc:  # jinja2 errors, a model without a template, …
            msg = f"chat template failed: {_trim(str(exc))}"
            raise GenerationFailed(msg) from exc
        # The template already wrote any BOS/special tokens it wants.
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    async def generate(
        self, request: GenerationRequest, on_delta: DeltaCallback | None = None
    ) -> GenerationResult:
        """Stream one answer; ``on_delta`` is awaited with each new piece of text, in order.

        Raises :class:`GenerationFailed` before submitting when the prompt does not fit
        the context, :class:`BackendUnavailable` when the engine is dead. ``max_tokens`` is
        capped to the room the context leaves. Cancelling the awaiting task aborts the
        request inside vLLM.
        """
        from vllm.inputs import TokensPrompt
        from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

        client_errors = _client_error_types()

        prompt_ids = self.render_prompt(request)
        prompt_tokens = len(prompt_ids)
        if prompt_tokens >= self.max_model_len:
            msg = (
                f"prompt is {prompt_tokens} tokens, longer than the model's context "
                f"of {self.max_model_len}"
            )
            raise GenerationFailed(msg)
        params = _sampling_params(request.sampling, room=self.max_model_len - prompt_tokens)

        pieces: list[str] = []
        completion_tokens = 0
        finish_reason = "stop"
        try:
            stream = self._engine.generate(
                self._engine_input(TokensPrompt(prompt_token_ids=prompt_ids)),
                params,
                request.request_id,
            )
            async for output in stream:
                if not output.outputs:
                    continue
                completion = output.outputs[0]
                completion_tokens += len(completion.token_ids)
                if completion.text:
                    pieces.append(completion.text)
                    if on_delta is not None:
                        await on_delta(completion.text)
                if completion.finish_reason is not None:
                    finish_reason = str(completion.finish_reason)
        except EngineDeadError as exc:
            msg = "the vLLM engine has died; restart the worker"
            raise BackendUnavailable(msg) from exc
        except client_errors as exc:
            raise GenerationFailed(_trim(str(exc)) or type(exc).__name__) from exc
        except EngineGenerateError as exc:
            cause = exc.__cause__ or exc
            msg = f"vLLM failed: {_trim(str(cause)) or type(cause).__name__}"
            raise BackendUnavailable(msg) from exc
        return GenerationResult(
            text="".join(pieces),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish_reason,
            special_tokens=self.special_tokens,
        )

    def _engine_input(self, prompt: Any) -> Any:
        # Newer vLLM wants prompts pre-processed by its renderer (raw prompts are
        # deprecated); older releases (the CUDA builds a GPU host may carry) have none.
        renderer = getattr(self._engine, "renderer", None)
        if renderer is None or not hasattr(renderer, "render_cmpl"):
            return prompt
        (engine_input,) = renderer.render_cmpl([prompt])
        return engine_input

    async def abort(self, request_id: str) -> None:
        """Stop a running request; its ``generate()`` returns with finish_reason "abort"."""
        await self._engine.abort(request_id)

    async def close(self) -> None:
        """Shut the engine and its child processes down (views of a shared engine: no-op)."""
        if self._root is not self or self._engine_obj is None:
            return
        engine, self._engine_obj = self._engine_obj, None
        engine.shutdown()
        del engine
        # Collect it now: AsyncLLM.__del__ shuts down again, which fails noisily when it
        # only runs at interpreter exit.
        gc.collect()


def _start_engine(spec: ModelSpec, *, max_num_seqs: int) -> Any:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.platforms import current_platform
    from vllm.v1.engine.async_llm import AsyncLLM

    eager = spec.enforce_eager if spec.enforce_eager is not None else eager_from_env()
    options: dict[str, Any] = {
        "model": spec.model,
        "dtype": "bfloat16",
        "max_model_len": spec.max_model_len,
        "max_num_seqs": max_num_seqs,
        "enforce_eager": eager,
        "tensor_parallel_size": spec.tensor_parallel_size,
        # The periodic throughput log is noise in a worker; requests are logged by Arena.
        "disable_log_stats": True,
    }
    if current_platform.is_cuda_alike():
        options["gpu_memory_utilization"] = spec.gpu_memory_utilization
    try:
        return AsyncLLM.from_engine_args(AsyncEngineArgs(**options))
    except Exception as exc:
        msg = f"could not start vLLM for {spec.model}: {_trim(str(exc))}"
        raise BackendUnavailable(msg) from exc


def _client_error_types() -> tuple[type[BaseException], ...]:
    """vLLM's "bad request" errors; older releases raise plain ValueError for those."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:
        return (ValueError,)
    return (VLLMClientError, ValueError)


def _sampling_params(sampling: SamplingConfig, *, room: int) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    return SamplingParams(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=max(1, min(sampling.max_tokens, room)),
        seed=sampling.seed,
        stop=list(sampling.stop) or None,
        ignore_eos=sampling.ignore_eos,
        output_kind=RequestOutputKind.DELTA,
    )


def _chat_messages(system_prompt: str, messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    rendered = [{"role": "system", "content": system_prompt}] if system_prompt else []
    rendered.extend({"role": m.role, "content": m.content} for m in messages)
    return rendered


def _special_tokens(tokenizer: Any) -> tuple[str, ...]:
    found: list[str] = list(getattr(tokenizer, "all_special_tokens", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    found.extend(str(token) for token in added.values() if getattr(token, "special", False))
    return tuple(dict.fromkeys(t for t in found if t))


def _trim(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"
