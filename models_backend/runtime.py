"""Backends inside a worker process: one event loop, one engine, many task threads.

A :class:`Runtime` owns a private asyncio event loop running in a daemon thread. Backends
live on that loop; :meth:`Runtime.run` may be called from any other thread (Celery's
``threads`` pool task threads) and blocks until its answer is done, so N task threads give
N requests in flight on one vLLM engine, which batches them.

Use in a worker::

    # worker start-up (Celery worker_process_init / worker_ready), in the main process
    runtime = warm_up([spec])
    # in each task thread
    result = get_runtime().run(request, spec, on_delta=publish, timeout=600)

vLLM starts child processes: whatever creates an engine must be importable without side
effects (an ``if __name__ == "__main__":`` guard) and must not be a daemonic process
(Celery's prefork pool), hence the threads pool.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import inspect
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from models_backend.backends import make_backend
from models_backend.backends.base import (
    Backend,
    BackendUnavailable,
    DeltaCallback,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
)
from models_backend.backends.vllm_engine import VllmBackend, engine_key

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Called with each new piece of text on the runtime's loop thread: keep it cheap and
# non-blocking. It may return an awaitable, which is awaited on that loop.
SyncDeltaCallback = Callable[[str], object]

DEFAULT_TIMEOUT = 600.0


class GenerationTimeout(BackendUnavailable):
    """No result within the caller's time-out; the request has been cancelled."""


class Runtime:
    """Process-wide owner of the backends and of the event loop they run on.

    Thread-safe. Backends are created once per spec and cached; vLLM specs that differ
    only in chat template share one engine (see :func:`engine_key`).
    """

    def __init__(self, *, factory: Callable[[ModelSpec], Backend] = make_backend) -> None:
        self.pid = os.getpid()
        self._factory = factory
        self._lock = threading.Lock()  # serialises backend creation and shutdown
        self._backends: dict[ModelSpec, Backend] = {}
        self._roots: dict[tuple[object, ...], Backend] = {}
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, name="arena-generation-loop", daemon=True
        )
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the backends live on (for code that must schedule onto it)."""
        return self._loop

    def get_backend(self, spec: ModelSpec) -> Backend:
        """The backend for ``spec``, created on first use (a vLLM engine: seconds to
        minutes, during which the loop serves nothing else). A dead engine is replaced.
        """
        self._refuse_on_loop_thread()
        with self._lock:
            if self._closed:
                msg = "the generation runtime has been shut down"
                raise BackendUnavailable(msg)
            backend = self._backends.get(spec)
            if backend is not None and not _is_dead(backend):
                return backend
            key = _share_key(spec)
            root = self._roots.get(key)
            if root is not None and _is_dead(root):
                logger.error("backend for %s died; starting a new one", spec.model)
                self._forget(key, root)
                root = None
            if root is None:
                root = self.run_coroutine(self._create(spec), timeout=None)
                self._roots[key] = root
            if isinstance(root, VllmBackend) and root.spec != spec:
                backend = root.for_spec(spec)
            else:
                backend = root
            self._backends[spec] = backend
            return backend

    def run(
        self,
        request: GenerationRequest,
        spec: ModelSpec,
        on_delta: SyncDeltaCallback | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> GenerationResult:
        """Generate one answer, blocking the calling thread; callable from any thread but
        the runtime's own.

        ``on_delta`` is called with each new piece of text, in order, *on the runtime's
        loop thread*: it must be cheap and never block (hand work to a queue). It may
        return an awaitable, which is then awaited on that loop. Raises what the backend
        raises, or :class:`GenerationTimeout` (a ``BackendUnavailable``) after ``timeout``
        seconds, having cancelled the request.
        """
        backend = self.get_backend(spec)
        callback = _as_async(on_delta)
        return self.run_coroutine(backend.generate(request, callback), timeout=timeout)

    def abort(self, request_id: str, spec: ModelSpec) -> None:
        """Stop a running request; its :meth:`run` returns with finish_reason "abort"."""
        backend = self.get_backend(spec)
        self.run_coroutine(backend.abort(request_id), timeout=30.0)

    def run_coroutine(self, coro: Coroutine[Any, Any, T], *, timeout: float | None) -> T:
        """Run ``coro`` on the runtime's loop and wait for it; cancel it on time-out or
        when the waiting thread is interrupted.
        """
        self._refuse_on_loop_thread(coro)
        if not self._thread.is_alive():
            coro.close()
            msg = "the generation runtime has been shut down"
            raise BackendUnavailable(msg)
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            done, _ = concurrent.futures.wait([future], timeout=timeout)
        finally:
            if not future.done():
                future.cancel()
        if not done:
            msg = f"no answer within {timeout:g} s; the request was cancelled"
            raise GenerationTimeout(msg)
        return future.result()

    def shutdown(self, timeout: float = 60.0) -> None:
        """Close every backend (stopping engines and their processes), then the loop.
        Idempotent; later calls to :meth:`run` raise ``BackendUnavailable``.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            roots = list(self._roots.values())
            self._roots.clear()
            self._backends.clear()
            for root in roots:
                try:
                    self.run_coroutine(root.close(), timeout=timeout)
                except Exception:
                    logger.exception("closing a backend failed")
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    async def _create(self, spec: ModelSpec) -> Backend:
        # Created on the loop thread: vLLM binds its output handler to the running loop.
        return self._factory(spec)

    def _forget(self, key: tuple[object, ...], root: Backend) -> None:
        del self._roots[key]
        for spec in [s for s in self._backends if _share_key(s) == key]:
            del self._backends[spec]
        with contextlib.suppress(Exception):
            self.run_coroutine(root.close(), timeout=60.0)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _refuse_on_loop_thread(self, coro: Coroutine[Any, Any, Any] | None = None) -> None:
        if threading.current_thread() is self._thread:
            if coro is not None:
                coro.close()
            msg = "Runtime's blocking calls cannot be made from its own loop thread"
            raise RuntimeError(msg)


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide runtime, started on first use and shut down at exit.

    A forked child gets a fresh one: event loops, threads and engines do not survive fork.
    """
    global _runtime
    with _runtime_lock:
        if _runtime is None or _runtime.pid != os.getpid():
            _runtime = Runtime()
            atexit.register(_runtime.shutdown)
        return _runtime


def warm_up(specs: Iterable[ModelSpec]) -> Runtime:
    """Create the backends for ``specs`` now (worker start-up), so the first task does
    not wait for an engine. Call it from the worker's main process, not at import time.
    """
    runtime = get_runtime()
    for spec in specs:
        runtime.get_backend(spec)
    return runtime


def _share_key(spec: ModelSpec) -> tuple[object, ...]:
    if spec.backend == "vllm":
        return ("vllm", *engine_key(spec))
    return ("spec", spec)


def _is_dead(backend: Backend) -> bool:
    return getattr(backend, "healthy", True) is False


def _as_async(callback: SyncDeltaCallback | None) -> DeltaCallback | None:
    if callback is None:
        return None

    async def deliver(text: str) -> None:
        result = callback(text)
        if inspect.isawaitable(result):
            await result

    return deliver
