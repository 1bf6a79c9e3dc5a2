"""Live battles: an evaluator's own prompt, answered by two contestants at once. Starting one
and continuing the conversation live here; generating and streaming each side's reply is
`arena.generation.live`, queued through `arena.dispatch` once the battle is committed."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from arena import dispatch
from arena.battles import store
from arena.battles.read import battle_access_check
from arena.battles.rules import AccessDenied, Owner, round_complete
from arena.battles.sampler import battle_create, pair_order
from arena.models import Answer, Battle, Campaign, Contestant, Question, QuestionSet

MAX_PROMPT_CHARS = 4000
MAX_TURNS = 8


class LiveRefused(Exception):
    """The live prompt was not accepted; the message is safe to show."""


def battle_group(code: uuid.UUID | str) -> str:
    """The channel group of one battle's frames (named by its opaque code)."""
    return f"battle.{uuid.UUID(str(code)).hex}"


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
    """Whether the owner started ARENA_LIVE_PER_MINUTE live battles in the last minute. Call
    with `store.owner_lock(owner, "live")` held."""
    since = timezone.now() - dt.timedelta(minutes=1)
    recent = Battle.objects.filter(
        owner.battle_q(), mode=Battle.Mode.LIVE, served_at__gte=since
    ).count()
    return recent >= settings.ARENA_LIVE_PER_MINUTE


@transaction.atomic
def live_battle_start(*, campaign: Campaign, owner: Owner, prompt: str) -> Battle:
    """Create a live battle for the prompt and queue both generations after commit."""
    if not campaign.allow_live:
        raise LiveRefused(_("This campaign does not take live questions."))
    prompt = _validate_prompt(prompt)
    # Counting recent starts and inserting the new one are a single step for this owner.
    store.owner_lock(owner, "live")
    if _rate_limited(owner):
        raise LiveRefused(_("Too many live questions in the last minute; please slow down."))
    contestants = list(campaign.contestants.filter(active=True))
    if len(contestants) < 2:
        raise LiveRefused(_("This campaign needs at least two active contestants."))
    by_id: dict[int, Contestant] = {c.pk: c for c in contestants}
    lo, hi = pair_order(campaign, list(by_id))[0]
    question = Question.objects.create(
        question_set=_live_set(campaign), external_id=uuid.uuid4().hex, text=prompt
    )
    answers = {
        pk: Answer.objects.create(
            question=question, contestant=by_id[pk], config_hash=by_id[pk].config_hash
        )
        for pk in (lo, hi)
    }
    battle = battle_create(
        campaign=campaign,
        owner=owner,
        mode=Battle.Mode.LIVE,
        question_id=question.pk,
        answers=(answers[lo].pk, answers[hi].pk),
        pair=(lo, hi),
    )
    queue_of = {a.pk: a.contestant.queue_name for a in answers.values()}
    dispatch.live_turn_generate_after_commit(
        battle_id=battle.pk,
        turn=0,
        queues={"a": queue_of[battle.answer_a_id], "b": queue_of[battle.answer_b_id]},
    )
    return battle


@transaction.atomic
def live_battle_continue(*, code: str, owner: Owner, prompt: str) -> Battle:
    """Ask both contestants a follow-up in the same conversation."""
    prompt = _validate_prompt(prompt)
    battle = (
        Battle.objects.filter(owner.battle_q(), code=code, mode=Battle.Mode.LIVE)
        .select_for_update(of=("self",))
        .select_related("question", "answer_a__contestant", "answer_b__contestant")
        .first()
    )
    if battle is None:
        raise LiveRefused(_("There is no such battle for you."))
    try:
        battle_access_check(campaign_id=battle.campaign_id, owner=owner)
    except AccessDenied as exc:
        raise LiveRefused(str(exc)) from None
    if battle.state != Battle.State.SERVED:
        raise LiveRefused(_("This battle is closed."))
    question = battle.question
    turns = len(question.turns)
    if turns + 1 >= MAX_TURNS:
        raise LiveRefused(_("This conversation is long enough; please vote."))
    a, b = battle.answer_a, battle.answer_b
    if not round_complete(
        a_status=a.status,
        a_followups=a.followups,
        b_status=b.status,
        b_followups=b.followups,
        turns=turns,
    ):
        raise LiveRefused(_("Wait until both answers are complete."))
    question.turns = [*question.turns, prompt]
    question.save(update_fields=["turns"])
    dispatch.live_turn_generate_after_commit(
        battle_id=battle.pk,
        turn=turns + 1,
        queues={"a": a.contestant.queue_name, "b": b.contestant.queue_name},
    )
    return battle
