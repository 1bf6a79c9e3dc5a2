"""A live stream leaves at the battle's rhythm whatever rhythm the model produced it in."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from typing import Any

import pytest

from arena.generation.pacing import StreamPacer, until_next_tick

CHUNK, INTERVAL = 5, 0.02


def _replay(
    pieces: list[tuple[float, str]], final: str | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """Feed (delay, text) pieces to a pacer as a model would, then finish; return each frame
    sent with the index of the wall-clock tick it left on."""
    sent: list[tuple[int, dict[str, Any]]] = []

    def send(frame: dict[str, Any]) -> None:
        sent.append((math.floor(time.time() / INTERVAL), frame))

    async def model() -> None:
        pacer = StreamPacer(side="a", send=send, chunk=CHUNK, interval=INTERVAL)
        text = ""
        for delay, piece in pieces:
            await asyncio.sleep(delay)
            text += piece
            pacer.offer(text)
        await pacer.finish(text if final is None else final)

    asyncio.run(model())
    return sent


def _text(frames: list[tuple[int, dict[str, Any]]]) -> str:
    text = ""
    for _tick, frame in frames:
        text = frame["text"] if frame["type"] == "reset" else text + frame["text"]
    return text


ANSWER = "The sea is wide and deep. Waves roll in from far away, grey under the winter sky."
RHYTHMS = {
    # a fast small model: a character or two per delta, a millisecond apart
    "trickle": [(0.001, ANSWER[i : i + 2]) for i in range(0, len(ANSWER), 2)],
    # a large batched model: long pieces with pauses between them
    "bursts": [(0.05, ANSWER[i : i + 30]) for i in range(0, len(ANSWER), 30)],
    # everything at once at the end (a backend that does not stream)
    "at once": [(0.0, ANSWER)],
}


@pytest.mark.parametrize("rhythm", sorted(RHYTHMS))
def test_every_frame_but_the_last_has_the_battles_chunk_size(rhythm: str) -> None:
    frames = _replay(RHYTHMS[rhythm])
    sizes = [len(f["text"]) for _t, f in frames]
    assert all(f["type"] == "delta" for _t, f in frames)
    assert sizes[:-1] == [CHUNK] * (len(sizes) - 1)
    assert 0 < sizes[-1] <= CHUNK
    assert _text(frames) == ANSWER


@pytest.mark.parametrize("rhythm", sorted(RHYTHMS))
def test_at_most_one_frame_leaves_per_tick(rhythm: str) -> None:
    ticks = [tick for tick, _f in _replay(RHYTHMS[rhythm])]
    assert all(later > earlier for earlier, later in itertools.pairwise(ticks))


def test_two_rhythms_of_the_same_text_send_the_same_frames() -> None:
    trickle = [f for _t, f in _replay(RHYTHMS["trickle"])]
    bursts = [f for _t, f in _replay(RHYTHMS["bursts"])]
    assert trickle == bursts


def test_text_taken_back_is_reset_to_no_more_than_was_shown() -> None:
    # The final text redacts what was already shown ("Hello world, I " by then).
    pieces = [(0.0, "Hello wor"), (0.1, "ld, I am"), (0.1, "")]
    frames = _replay(pieces, final="Hello [x], fine.")
    kinds = [f["type"] for _t, f in frames]
    assert "reset" in kinds
    reset = next(f for _t, f in frames if f["type"] == "reset")
    assert reset["text"] == "Hello [x], fine"  # as long as what had been shown, never longer
    after = [f for _t, f in frames[kinds.index("reset") + 1 :]]
    assert all(f["type"] == "delta" and len(f["text"]) <= CHUNK for f in after)
    assert _text(frames) == "Hello [x], fine."


def test_a_stopped_pacer_sends_nothing_more() -> None:
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        pacer = StreamPacer(side="b", send=sent.append, chunk=CHUNK, interval=INTERVAL)
        pacer.offer("x" * 100)
        await asyncio.sleep(INTERVAL * 2.5)
        pacer.stop()
        count = len(sent)
        await asyncio.sleep(INTERVAL * 4)
        assert len(sent) == count

    asyncio.run(run())
    assert 0 < len(sent) < 100 // CHUNK


def test_ticks_lie_on_one_wall_clock_grid() -> None:
    assert until_next_tick(0.04, now=100.0) == pytest.approx(0.04)
    assert until_next_tick(0.04, now=100.03) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="chunk"):
        StreamPacer(side="a", send=lambda _f: None, chunk=0, interval=0.04)
