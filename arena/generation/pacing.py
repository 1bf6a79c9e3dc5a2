"""One live stream's delivery rhythm: whatever rhythm a model produces text in, its side of a
battle leaves in frames of exactly `chunk` characters, one per tick of a fixed clock.

Token sizes and the time between deltas differ between models (and vLLM batches differently
per model), so a stream sent as produced tells the two sides apart by its rhythm alone; FastChat
varies `token_per_yield` per model for the same reason. Both sides of every battle use the same
chunk and tick (settings `ARENA_STREAM_CHUNK_CHARS`, `ARENA_STREAM_INTERVAL_MS`), and ticks lie
on one wall-clock grid (multiples of the interval), so the two sides' frames, generated on
different workers, leave in step. What is left visible: when a side's first chunk is ready and
when it runs out, both to the tick; blind timing hides those too.

All methods except `stop` run on the generation runtime's event loop (where `on_delta`
callbacks run); `stop` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from arena.public import stream_frame

Side = Literal["a", "b"]
Frame = dict[str, Any]
Send = Callable[[Frame], Awaitable[None] | None]


def until_next_tick(interval: float, now: float | None = None) -> float:
    """Seconds from now to the next multiple of `interval` on the wall clock."""
    now = time.time() if now is None else now
    return max((math.floor(now / interval) + 1) * interval - now, 0.0)


class StreamPacer:
    """Sends the text offered so far, `chunk` characters per tick, in order.

    `offer` replaces the text that may be sent (always the newest safe prefix of the stripped
    answer); when it no longer starts with what was sent, the next tick sends a "reset" frame
    with that text cut to the length already shown, so what the reader sees never jumps ahead of
    the rhythm. `finish` sets the final text and returns once all of it has been sent.
    """

    def __init__(self, *, side: Side, send: Send, chunk: int, interval: float) -> None:
        if chunk < 1 or interval <= 0:
            msg = "chunk must be at least 1 character and interval positive"
            raise ValueError(msg)
        self.side, self.send, self.chunk, self.interval = side, send, chunk, interval
        self.target = ""
        self.sent = ""
        self.closed = False
        self.stopped = False
        self._task: asyncio.Task[None] | None = None

    def offer(self, text: str) -> None:
        self.target = text
        self._start()

    async def finish(self, final: str) -> None:
        self.target, self.closed = final, True
        await self._start()

    def stop(self) -> None:
        """Send nothing more (the generation failed); the ticking task ends at its next tick."""
        self.stopped = True

    def _start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self._task

    def next_frame(self) -> Frame | None:
        """The frame for this tick, or None when there is nothing whole to send yet (or the
        pacer was stopped)."""
        if self.stopped:
            return None
        target, sent = self.target, self.sent
        if not target.startswith(sent):
            self.sent = target[: len(sent)]
            return stream_frame("reset", self.side, text=self.sent)
        ready = len(target) - len(sent)
        if ready >= self.chunk or (self.closed and ready > 0):
            self.sent = target[: len(sent) + self.chunk]
            return stream_frame("delta", self.side, text=self.sent[len(sent) :])
        return None

    def drained(self) -> bool:
        return self.closed and self.sent == self.target

    async def _run(self) -> None:
        while not self.stopped and not self.drained():
            await asyncio.sleep(until_next_tick(self.interval))
            frame = self.next_frame()
            if frame is None:
                continue
            sending = self.send(frame)
            if sending is not None:
                await sending
