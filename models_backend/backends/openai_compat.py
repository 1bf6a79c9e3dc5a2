"""Any OpenAI-compatible chat endpoint: a ``vllm serve`` fleet, DeepInfra, Together AI, ….

Streams ``POST {base_url}/chat/completions`` (server-sent events) with ``httpx``. The key is
read at request time from the environment variable *named* by ``spec.api_key_env``; it is
never stored, logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from models_backend.backends.base import (
    BackendError,
    BackendUnavailable,
    DeltaCallback,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
)

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=30.0)
_ERROR_CHARS = 300
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
# Things that look like credentials, scrubbed from any server message we pass on.
_SECRET_PATTERNS = (
    re.compile(r"(?i)bearer\s+\S+"),
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"),
)


@dataclass
class _Stream:
    pieces: list[str]
    chunks: int = 0
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class OpenAICompatBackend:
    """A :class:`~models_backend.backends.base.Backend` for an OpenAI-compatible server.

    Cheap to construct; one pooled ``httpx.AsyncClient`` per backend, created on first use
    in the running event loop (use the backend from that one loop only).
    """

    def __init__(self, spec: ModelSpec, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        if spec.backend != "openai":
            msg = f"OpenAICompatBackend needs an openai spec, got {spec.backend!r}"
            raise ValueError(msg)
        if not spec.base_url:
            msg = "an openai spec needs base_url"
            raise ValueError(msg)
        self.spec = spec
        self.url = spec.base_url.rstrip("/") + "/chat/completions"
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._aborting: set[str] = set()

    async def generate(
        self, request: GenerationRequest, on_delta: DeltaCallback | None = None
    ) -> GenerationResult:
        """Stream one answer; ``on_delta`` is awaited with each new piece of text, in order.

        Raises :class:`BackendUnavailable` for connection errors, time-outs, HTTP 408/429 and
        5xx; :class:`GenerationFailed` for other 4xx (bad request, unknown model, context
        too long), a missing key variable, or a malformed stream.
        """
        headers = {"Accept": "text/event-stream"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        state = _Stream(pieces=[])
        task = asyncio.ensure_future(
            self._stream(self._payload(request), headers, key, state, on_delta)
        )
        self._running[request.request_id] = task
        try:
            await task
        except asyncio.CancelledError:
            if request.request_id not in self._aborting:
                raise
            state.finish_reason = "abort"
        finally:
            self._running.pop(request.request_id, None)
            self._aborting.discard(request.request_id)
        text = "".join(state.pieces)
        return GenerationResult(
            text=text,
            prompt_tokens=state.prompt_tokens or 0,
            # Without a usage record (servers that ignore stream_options, or an aborted
            # stream) the count is the number of streamed content chunks: most servers
            # send one token per chunk, so it is an estimate, not a tokenizer count.
            completion_tokens=(
                state.completion_tokens if state.completion_tokens is not None else state.chunks
            ),
            finish_reason=state.finish_reason,
        )

    async def abort(self, request_id: str) -> None:
        """Stop a running request; its ``generate()`` returns with finish_reason "abort".

        Closing the stream drops the connection, which OpenAI-compatible servers (vLLM
        among them) take as a cancellation.
        """
        task = self._running.get(request_id)
        if task is not None and not task.done():
            self._aborting.add(request_id)
            task.cancel()

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _api_key(self) -> str:
        name = self.spec.api_key_env
        if not name:
            return ""
        key = os.environ.get(name, "")
        if not key:
            msg = f"the environment variable {name} that should hold the API key is not set"
            raise GenerationFailed(msg)
        return key

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        messages = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        messages.extend({"role": m.role, "content": m.content} for m in request.messages)
        sampling = request.sampling
        payload: dict[str, Any] = {
            "model": self.spec.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            payload["seed"] = sampling.seed
        if sampling.stop:
            payload["stop"] = list(sampling.stop)
        if sampling.ignore_eos:
            payload["ignore_eos"] = True  # a vLLM extension; sent only when asked for
        if self.spec.chat_template:
            payload["chat_template"] = self.spec.chat_template  # vLLM extension too
        return payload

    def _client_for_loop(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def _stream(
        self,
        payload: dict[str, Any],
        headers: dict[str, str],
        key: str,
        state: _Stream,
        on_delta: DeltaCallback | None,
    ) -> None:
        client = self._client_for_loop()
        try:
            async with client.stream("POST", self.url, json=payload, headers=headers) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise _http_error(response.status_code, body, key)
                async for event in _sse_events(response.aiter_lines()):
                    await _consume(event, state, on_delta, key)
        except httpx.TimeoutException as exc:
            msg = f"{self._where()} timed out ({type(exc).__name__})"
            raise BackendUnavailable(msg) from exc
        except httpx.TransportError as exc:  # connect errors, dropped connections
            msg = f"cannot reach {self._where()} ({type(exc).__name__})"
            raise BackendUnavailable(msg) from exc

    def _where(self) -> str:
        url = httpx.URL(self.spec.base_url)
        return f"{url.host}:{url.port}" if url.port else str(url.host)


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event, multi-line data joined; stops at ``[DONE]``."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                event = "\n".join(data)
                data = []
                if event.strip() == "[DONE]":
                    return
                yield event
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value.removeprefix(" "))
    if data and "\n".join(data).strip() != "[DONE]":
        yield "\n".join(data)


async def _consume(event: str, state: _Stream, on_delta: DeltaCallback | None, key: str) -> None:
    try:
        chunk = json.loads(event)
    except json.JSONDecodeError as exc:
        msg = f"malformed stream chunk: {_clean(event, key)}"
        raise GenerationFailed(msg) from exc
    if not isinstance(chunk, dict):
        msg = f"malformed stream chunk: {_clean(event, key)}"
        raise GenerationFailed(msg)
    if "error" in chunk:  # some servers report failures inside the stream
        raise _error_from_body(chunk, key, status=None)
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        state.prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
        state.completion_tokens = _int_or_none(usage.get("completion_tokens"))
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str) and content:
            state.pieces.append(content)
            state.chunks += 1
            if on_delta is not None:
                await on_delta(content)
        if choice.get("finish_reason"):
            state.finish_reason = str(choice["finish_reason"])


def _http_error(status: int, body: bytes, key: str) -> BackendError:
    try:
        parsed: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        parsed = body.decode("utf-8", errors="replace")
    return _error_from_body(parsed, key, status=status)


def _error_from_body(body: Any, key: str, *, status: int | None) -> BackendError:
    message = _clean(_error_message(body), key)
    code = status
    if code is None and isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = _int_or_none(body["error"].get("code"))
    prefix = f"HTTP {status}" if status is not None else "server error"
    text = f"{prefix}: {message}" if message else prefix
    if code is not None and (code in _TRANSIENT_STATUS or code >= 500):
        return BackendUnavailable(text)
    if code is None and status is None:
        return BackendUnavailable(text)  # mid-stream failure of unknown kind: retry
    return GenerationFailed(text)


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            for field in ("message", "detail", "msg"):
                if error.get(field):
                    return str(error[field])
            return json.dumps(error)[:_ERROR_CHARS]
        if isinstance(error, str):
            return error
        if body.get("detail"):
            return str(body["detail"])
    return str(body)


def _clean(text: str, key: str) -> str:
    if key:
        text = text.replace(key, "[redacted]")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
