"""Live battles: an evaluator's own prompt, answered by two contestants at once and streamed
to the battle's channel group labelled only a/b. With blind timing nothing is streamed: both
answers appear together when both are finished."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Sequence
from typing import Any, Literal

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from arena.models import Answer, Battle, Campaign, Contestant, Question, QuestionSet
from arena.public import md, stream_frame
from arena.services.access import Owner
from arena.services.answers import (
    contestant_sampling,
    contestant_spec,
    identity_terms,
    strip_for_contestant,
)
from arena.services.battles import bump_pair, pair_order, rng
from models_backend.backends.base import (
    BackendUnavailable,
    ChatMessage,
    GenerationFailed,
    GenerationRequest,
)
from models_backend.fingerprints import KNOWN_IDENTITY_TERMS

logger = logging.getLogger(__name__)
Side = Literal["a", "b"]
MAX_PROMPT_CHARS = 4000
MAX_TURNS = 8
# While streaming, text that stripping might still change is held back: a partial word (it
# may become a model's name), a partial template token, and a whole sentence that has begun
# a self-introduction ("I am …", "저는 …") until the sentence ends.
_SELF_INTRO = re.compile(
    r"(?i)(?:\b(?:i|i'm|i’m|im|my|as|me|we|our)\b|저는|제가|나는|제\s*이름|저희)"
)
_SENTENCE_END = re.compile(r"[.!?。！？\n](?=\s|$)")
_TOKEN_CHARS = ("<", "[", "#", "|", "｜", "`")
_TOKEN_START = re.compile(r"(?:<[^>\s]{0,40}|\[[^\]\s]{0,40}|<｜[^｜]{0,40}|#{1,6}[^\n]{0,20})$")


def safe_prefix(shown: str, terms: Sequence[str] = ()) -> str:
    """The part of a partial answer that can be sent now without a later strip undoing it.

    ``terms`` are identity terms in lower case: a partial last word that could still grow
    into one of them (or into a template token) is held back; any other is sent at once.
    """
    last_space = max(shown.rfind(" "), shown.rfind("\n"), shown.rfind("\t"))
    cut = last_space + 1 if last_space >= 0 else 0
    partial = shown[cut:].lower()
    if (
        partial
        and not partial.startswith(_TOKEN_CHARS)
        and not any(t.startswith(partial) for t in terms)
    ):
        cut = len(shown)
    token = _TOKEN_START.search(shown[:cut])
    if token:
        cut = token.start()
    ends = [m.end() for m in _SENTENCE_END.finditer(shown, 0, cut)]
    sentence_start = ends[-1] if ends else 0
    if _SELF_INTRO.search(shown, sentence_start, cut):
        cut = sentence_start
    return shown[:cut]


class LiveRefused(Exception):
    """The live prompt was not accepted; the message is safe to show."""


def battle_group(code: uuid.UUID | str) -> str:
    return f"battle.{uuid.UUID(str(code)).hex}"


def _send(code: uuid.UUID | str, frame: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(
            battle_group(code), {"type": "battle.frame", "frame": frame}
        )


def _validate_prompt(prompt: str) -> str:
    prompt = prompt.strip()
    if not prompt:
        raise LiveRefused(_("Type a question first."))
    if len(prompt) > MAX_PROMPT_CHARS:
        raise LiveRefused(_("The question is over %(n)d characters.") % {"n": MAX_PROMPT_CHARS})
    return prompt


def _live_set(campaign: Campaign) -> QuestionSet:
    question_set, _created = QuestionSet.objects.get_or_create(
        name=f"Live prompts · {campaign.slug}", defaults={"kind": QuestionSet.Kind.LIVE}
    )
    return question_set


def _rate_limited(owner: Owner) -> bool:
    since = timezone.now() - dt.timedelta(minutes=1)
    recent = owner.battles().filter(mode=Battle.Mode.LIVE, served_at__gte=since).count()
    return recent >= settings.ARENA_LIVE_PER_MINUTE


@transaction.atomic
def live_battle_start(*, campaign: Campaign, owner: Owner, prompt: str) -> Battle:
    """Create a live battle for the prompt and queue both generations after commit."""
    if not campaign.allow_live:
        raise LiveRefused(_("This campaign does not take live questions."))
    prompt = _validate_prompt(prompt)
    if _rate_limited(owner):
        raise LiveRefused(_("Too many live questions in the last minute; please slow down."))
    contestants = list(campaign.contestants.filter(active=True))
    if len(contestants) < 2:
        raise LiveRefused(_("This campaign needs at least two active contestants."))
    by_id: dict[int, Contestant] = {c.pk: c for c in contestants}
    lo, hi = pair_order(campaign, list(by_id))[0]
    first, second = (by_id[lo], by_id[hi]) if rng.random() < 0.5 else (by_id[hi], by_id[lo])
    question = Question.objects.create(
        question_set=_live_set(campaign), external_id=uuid.uuid4().hex, text=prompt
    )
    answer_a = Answer.objects.create(
        question=question, contestant=first, config_hash=first.config_hash
    )
    answer_b = Answer.objects.create(
        question=question, contestant=second, config_hash=second.config_hash
    )
    battle = Battle.objects.create(
        campaign=campaign,
        evaluator=owner.user,
        session_key="" if owner.user else owner.session_key,
        mode=Battle.Mode.LIVE,
        question=question,
        answer_a=answer_a,
        answer_b=answer_b,
        expires_at=timezone.now() + dt.timedelta(seconds=settings.ARENA_BATTLE_TTL_SECONDS),
    )
    bump_pair(campaign, lo, hi)
    _queue_turn(battle, 0)
    return battle


@transaction.atomic
def live_battle_continue(*, code: str, owner: Owner, prompt: str) -> Battle:
    """Ask both contestants a follow-up in the same conversation."""
    prompt = _validate_prompt(prompt)
    battle = (
        owner.battles()
        .select_for_update(of=("self",))
        .select_related("question", "answer_a", "answer_b")
        .filter(code=code, mode=Battle.Mode.LIVE)
        .first()
    )
    if battle is None:
        raise LiveRefused(_("There is no such battle for you."))
    if battle.state != Battle.State.SERVED:
        raise LiveRefused(_("This battle is closed."))
    question = battle.question
    turns = len(question.turns)
    if turns + 1 >= MAX_TURNS:
        raise LiveRefused(_("This conversation is long enough; please vote."))
    ready = all(
        a.status == Answer.Status.DONE and len(a.followups) >= turns
        for a in (battle.answer_a, battle.answer_b)
    )
    if not ready:
        raise LiveRefused(_("Wait until both answers are complete."))
    question.turns = [*question.turns, prompt]
    question.save(update_fields=["turns"])
    _queue_turn(battle, turns + 1)
    return battle


def _queue_turn(battle: Battle, turn: int) -> None:
    from arena.tasks import generate_live_turn

    queues = {
        "a": battle.answer_a.contestant.queue_name,
        "b": battle.answer_b.contestant.queue_name,
    }

    def send() -> None:
        for side, queue in queues.items():
            generate_live_turn.apply_async(
                kwargs={"battle_id": battle.pk, "side": side, "turn": turn}, queue=queue
            )

    transaction.on_commit(send)


class StreamStripper:
    """Turns raw deltas into deltas of the stripped text, holding back a short tail.

    Every frame sent is a suffix of what was sent before plus new text, unless stripping
    changed text already sent; then a "reset" frame carries the whole text so far.
    """

    def __init__(self, *, code: str, side: Side, contestant: Contestant, terms: list[str]) -> None:
        self.code, self.side, self.contestant, self.terms = code, side, contestant, terms
        self.lowered = sorted({t.lower() for t in (*terms, *KNOWN_IDENTITY_TERMS)})
        self.raw = ""
        self.sent = ""
        self.last = 0.0

    def _shown(self, special: tuple[str, ...] = ()) -> str:
        return strip_for_contestant(
            self.raw, contestant=self.contestant, special_tokens=special, terms=self.terms
        ).shown

    def _frame(self, text: str) -> dict[str, Any] | None:
        if text == self.sent:
            return None
        if text.startswith(self.sent):
            frame = stream_frame("delta", self.side, text=text[len(self.sent) :])
        else:
            frame = stream_frame("reset", self.side, text=text)
        self.sent = text
        return frame

    def feed(self, delta: str) -> Awaitable[None] | None:
        self.raw += delta
        now = time.monotonic()
        # Early text is stripped on every delta (time to first token matters); later, at most
        # every 50 ms, since each strip re-reads the whole answer.
        if len(self.raw) > 400 and now - self.last < 0.05:
            return None
        self.last = now
        shown = self._shown()
        frame = self._frame(safe_prefix(shown, self.lowered))
        layer = get_channel_layer()
        if frame is None or layer is None:
            return None
        sent: Awaitable[None] = layer.group_send(
            battle_group(self.code), {"type": "battle.frame", "frame": frame}
        )
        return sent

    def finish(self, final_shown: str) -> None:
        frame = self._frame(final_shown)
        if frame is not None:
            _send(self.code, frame)


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
        from arena.services.answers import answer_claim

        return answer_claim(answer_id=answer.pk)
    return answer.status == Answer.Status.DONE and len(answer.followups) == turn


def live_turn_generate(*, battle_id: int, side: Side, turn: int) -> str:
    """Generate one side's reply to one turn of a live battle (idempotent per turn)."""
    from models_backend.runtime import get_runtime

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
        sampling=contestant_sampling(contestant),
        system_prompt=contestant.system_prompt,
    )
    connection.close()  # not held while the model generates (see answers.answer_generate)
    try:
        result = get_runtime().run(
            request,
            contestant_spec(contestant),
            on_delta=None if blind else stripper.feed,
            timeout=float(settings.ARENA_GENERATION_SOFT_LIMIT),
        )
    except BackendUnavailable:
        if turn == 0:
            from arena.services.answers import answer_release

            answer_release(answer_id=answer.pk)
        raise
    except GenerationFailed as exc:
        live_turn_failed(battle_id=battle_id, side=side, turn=turn, reason=str(exc))
        return "failed"
    stripped = strip_for_contestant(
        result.text,
        contestant=contestant,
        special_tokens=result.special_tokens,
        terms=stripper.terms,
    )
    if not blind:
        stripper.finish(stripped.shown)
    _store_turn(battle_id=battle_id, side=side, turn=turn, result=result, stripped=stripped)
    return "done"


@transaction.atomic
def _store_turn(*, battle_id: int, side: Side, turn: int, result: Any, stripped: Any) -> None:
    # The battle row lock serialises the two sides, so exactly one of them sees both done.
    battle = Battle.objects.select_for_update().select_related("campaign").get(pk=battle_id)
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
    answer.save()
    code = str(battle.code)
    if not battle.campaign.blind_timing:
        html = str(md(stripped.shown))
        transaction.on_commit(lambda: _send(code, stream_frame("done", side, html=html)))
        return
    other_id = battle.answer_b_id if side == "a" else battle.answer_a_id
    other = Answer.objects.get(pk=other_id)
    other_done = other.status == Answer.Status.DONE and (turn == 0 or len(other.followups) >= turn)
    if other_done:
        mine = stripped.shown
        theirs = other.shown_text if turn == 0 else str(other.followups[turn - 1]["shown"])
        a_text, b_text = (mine, theirs) if side == "a" else (theirs, mine)
        frame = stream_frame("reveal_both", a_html=str(md(a_text)), b_html=str(md(b_text)))
        transaction.on_commit(lambda: _send(code, frame))


def live_turn_failed(*, battle_id: int, side: Side, turn: int, reason: str) -> None:
    """Record a failed live answer and tell the browser which side failed, never which model."""
    battle = Battle.objects.get(pk=battle_id)
    if turn == 0:
        from arena.services.answers import answer_fail

        answer_fail(
            answer_id=battle.answer_a_id if side == "a" else battle.answer_b_id, reason=reason
        )
    Battle.objects.filter(pk=battle_id, state=Battle.State.SERVED).update(
        state=Battle.State.EXPIRED
    )
    message = (
        _("Answer A could not be generated. Please ask again.")
        if side == "a"
        else _("Answer B could not be generated. Please ask again.")
    )
    _send(battle.code, stream_frame("error", side, message=message))
