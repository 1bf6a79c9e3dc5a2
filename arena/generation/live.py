"""Generating live battles' replies: each side's answer to each user turn, streamed to the
battle's channel group labelled only a/b (through `arena.dispatch`). With blind timing nothing
is streamed: both answers appear together when both are finished."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable
from typing import Any, Literal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from arena import dispatch
from arena.battles.live import battle_group
from arena.battles.rules import side_done
from arena.generation import backend
from arena.generation.answers import (
    answer_claim,
    answer_fail,
    answer_names,
    answer_release,
    answer_reports,
    identity_terms,
    question_names_record,
)
from arena.generation.backend import (
    KNOWN_IDENTITY_TERMS,
    BackendUnavailable,
    ChatMessage,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    StripResult,
    safe_prefix,
    start_pending,
)
from arena.generation.pacing import StreamPacer
from arena.models import Answer, Battle, Contestant, Question
from arena.public import md, stream_frame

logger = logging.getLogger(__name__)
Side = Literal["a", "b"]


def _event(frame: dict[str, Any]) -> dict[str, Any]:
    return {"type": "battle.frame", "frame": frame}


def _send(code: uuid.UUID | str, frame: dict[str, Any]) -> None:
    dispatch.group_send(battle_group(code), _event(frame))


class StreamStripper:
    """Turns raw deltas into the stripped text that may be shown so far (a safe prefix: the
    tail that stripping could still change is held back), and hands it to the side's pacer,
    which sends it at the battle's uniform rhythm (`arena.generation.pacing`).

    `feed` runs on the generation runtime's loop; `finish` is awaited there too.
    """

    def __init__(self, *, code: str, side: Side, contestant: Contestant, terms: list[str]) -> None:
        self.code, self.side, self.contestant, self.terms = code, side, contestant, terms
        self.lowered = sorted({t.lower() for t in (*terms, *KNOWN_IDENTITY_TERMS)})
        self.leading_trace = "<think>" in contestant.chat_template
        self.raw = ""
        self.last = 0.0
        self.pacer = StreamPacer(
            side=side,
            send=self._send,
            chunk=settings.ARENA_STREAM_CHUNK_CHARS,
            interval=settings.ARENA_STREAM_INTERVAL_MS / 1000,
        )

    def _send(self, frame: dict[str, Any]) -> Awaitable[None] | None:
        return dispatch.group_send_async(battle_group(self.code), _event(frame))

    def _shown(self, special: tuple[str, ...] = ()) -> str:
        return backend.strip_for_contestant(
            self.raw, contestant=self.contestant, special_tokens=special, terms=self.terms
        ).shown

    def feed(self, delta: str) -> None:
        self.raw += delta
        now = time.monotonic()
        # Early text is stripped on every delta (time to first token matters); later, at most
        # every 50 ms, since each strip re-reads the whole answer.
        if len(self.raw) > 400 and now - self.last < 0.05:
            return
        self.last = now
        shown = self._shown()
        # A contestant whose own template opens the reasoning trace streams it without the
        # opening tag: nothing is sent until the trace closes.
        pending = start_pending(self.raw, leading_trace=self.leading_trace)
        self.pacer.offer(safe_prefix(shown, self.lowered, pending=pending))

    async def finish(self, final_shown: str) -> None:
        await self.pacer.finish(final_shown)

    def budget(self, final_shown: str) -> float:
        """Seconds the pacer may still need to send the rest of `final_shown`, and a margin."""
        left = len(final_shown) - len(self.pacer.sent)
        ticks = -(-max(left, 0) // self.pacer.chunk) + 2
        return ticks * self.pacer.interval + 30.0


def _history(question: Question, answer: Answer, turn: int) -> list[ChatMessage]:
    users = [question.text, *[str(t) for t in question.turns]]
    replies = [answer.shown_text] + [str(f.get("shown", "")) for f in answer.followups]
    messages: list[ChatMessage] = []
    for i in range(turn):
        messages += [ChatMessage("user", users[i]), ChatMessage("assistant", replies[i])]
    messages.append(ChatMessage("user", users[turn]))
    return messages


def _claim(answer: Answer, turn: int) -> bool:
    if turn == 0:
        return answer_claim(answer_id=answer.pk)
    # A follow-up is claimed by being the next one: the previous turn done, this one not yet.
    done = answer.status, answer.followups
    return side_done(status=done[0], followups=done[1], turn=turn - 1) and not side_done(
        status=done[0], followups=done[1], turn=turn
    )


def live_turn_generate(*, battle_id: int, side: Side, turn: int) -> str:
    """Generate one side's reply to one turn of a live battle (idempotent per turn)."""
    battle = Battle.objects.select_related("question", "campaign").get(pk=battle_id)
    answer = Answer.objects.select_related("contestant").get(
        pk=battle.answer_a_id if side == "a" else battle.answer_b_id
    )
    if not _claim(answer, turn):
        return "skipped"
    contestant = answer.contestant
    blind = battle.campaign.blind_timing
    stripper = StreamStripper(
        code=str(battle.code), side=side, contestant=contestant, terms=identity_terms()
    )
    request = GenerationRequest(
        request_id=f"live-{battle.code.hex}-{side}-{turn}-{uuid.uuid4().hex[:8]}",
        messages=tuple(_history(battle.question, answer, turn)),
        sampling=backend.contestant_sampling(contestant),
        system_prompt=contestant.system_prompt,
    )
    connection.close()  # not held while the model generates (see answers.answer_generate)
    try:
        result = backend.generate(
            request,
            contestant,
            on_delta=None if blind else stripper.feed,
            timeout=float(settings.ARENA_GENERATION_SOFT_LIMIT),
        )
    except BackendUnavailable:
        stripper.pacer.stop()
        if turn == 0:
            answer_release(answer_id=answer.pk)
        raise
    except GenerationFailed as exc:
        stripper.pacer.stop()
        live_turn_failed(battle_id=battle_id, side=side, turn=turn, reason=str(exc))
        return "failed"
    stripped = backend.strip_for_contestant(
        result.text,
        contestant=contestant,
        special_tokens=result.special_tokens,
        terms=stripper.terms,
    )
    if not blind:
        # The rest of the text leaves at the battle's rhythm before the turn is stored (and its
        # "done" frame sent after commit).
        final = stripped.shown
        backend.run_on_runtime(stripper.finish(final), timeout=stripper.budget(final))
    _store_turn(
        battle_id=battle_id,
        side=side,
        turn=turn,
        result=result,
        stripped=stripped,
        terms=stripper.terms,
    )
    return "done"


@transaction.atomic
def _store_turn(
    *,
    battle_id: int,
    side: Side,
    turn: int,
    result: GenerationResult,
    stripped: StripResult,
    terms: list[str],
) -> None:
    # The battle row lock serialises the two sides, so exactly one of them sees both done.
    battle = (
        Battle.objects.select_for_update(of=("self",))
        .select_related("campaign", "question")
        .get(pk=battle_id)
    )
    answer_id = battle.answer_a_id if side == "a" else battle.answer_b_id
    answer = Answer.objects.select_for_update().get(pk=answer_id)
    flagged = bool(stripped.report.get("identity_mentions"))
    if turn == 0:
        if answer.status != Answer.Status.RUNNING:
            return
        answer.status = Answer.Status.DONE
        answer.raw_text, answer.shown_text = result.text, stripped.shown
        answer.strip_report = stripped.report
        answer.prompt_tokens, answer.completion_tokens = (
            result.prompt_tokens,
            result.completion_tokens,
        )
        answer.finished_at = timezone.now()
        answer.flagged = answer.flagged or flagged
    else:
        if len(answer.followups) != turn - 1:
            return
        answer.followups = [
            *answer.followups,
            {"raw": result.text, "shown": stripped.shown, "report": stripped.report},
        ]
        answer.completion_tokens = (answer.completion_tokens or 0) + result.completion_tokens
        answer.flagged = answer.flagged or flagged
    shown = [answer.shown_text, *(str(f.get("shown", "")) for f in answer.followups)]
    answer.named_terms = answer_names(shown, terms, answer_reports(answer))
    answer.save()
    question_names_record(question=battle.question, terms=terms)
    code = str(battle.code)
    if not battle.campaign.blind_timing:
        html = str(md(stripped.shown))
        dispatch.group_send_after_commit(
            battle_group(code), _event(stream_frame("done", side, html=html))
        )
        return
    other_id = battle.answer_b_id if side == "a" else battle.answer_a_id
    other = Answer.objects.get(pk=other_id)
    other_done = side_done(status=other.status, followups=other.followups, turn=turn)
    if other_done:
        mine = stripped.shown
        theirs = other.shown_text if turn == 0 else str(other.followups[turn - 1]["shown"])
        a_text, b_text = (mine, theirs) if side == "a" else (theirs, mine)
        frame = stream_frame("reveal_both", a_html=str(md(a_text)), b_html=str(md(b_text)))
        dispatch.group_send_after_commit(battle_group(code), _event(frame))


def live_turn_failed(*, battle_id: int, side: Side, turn: int, reason: str) -> None:
    """Record a failed live answer and tell the browser which side failed, never which model."""
    battle = Battle.objects.get(pk=battle_id)
    if turn == 0:
        answer_fail(
            answer_id=battle.answer_a_id if side == "a" else battle.answer_b_id, reason=reason
        )
    # The battle cannot be completed: closed like one whose time ran out.
    Battle.objects.filter(pk=battle_id, state=Battle.State.SERVED).update(
        state=Battle.State.EXPIRED
    )
    message = (
        _("Answer A could not be generated. Please ask again.")
        if side == "a"
        else _("Answer B could not be generated. Please ask again.")
    )
    _send(battle.code, stream_frame("error", side, message=message))
