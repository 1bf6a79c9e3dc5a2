"""Control battles: gold (a known better answer), repeat (the same evaluator's earlier battle
again, sides swapped) and overlap (another evaluator's battle again), and the daily vote cap.

The sampler (`arena.battles.sampler.battle_next`) asks `control_pick` first; a pick is served
through the same `battle_create` as every battle, so its page, JSON, frames and timing are
those of any stored battle: nothing an evaluator receives carries the kind. A gold or overlap
battle is only ever on a question this evaluator has not seen, as the sampler's own are."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils.translation import gettext as _

from arena.models import Answer, Battle, Campaign, Contestant, GoldItem, Question, Vote

rng = random.SystemRandom()
# A repeat comes back only after this many later votes of the same evaluator, so it is not
# the battle they just saw.
REPEAT_GAP = 5
# A question stops being offered as an overlap once this many battles served it.
OVERLAP_RATERS = 3
_CANDIDATES = 50


@dataclass(frozen=True)
class ControlPick:
    """What to serve: the answers on sides a and b as given (no further shuffling), the
    contestant pair (lower id first), and what the battle repeats or overlaps."""

    kind: str
    question_id: int
    answer_a: int
    answer_b: int
    pair: tuple[int, int]
    source_id: int | None = None
    gold_id: int | None = None


def _owner_q(user_id: int | None, session_key: str, prefix: str = "") -> Q:
    if user_id is not None:
        return Q(**{f"{prefix}evaluator_id": user_id})
    return Q(**{f"{prefix}evaluator__isnull": True, f"{prefix}session_key": session_key})


def daily_cap_reached(
    *, campaign: Campaign, user_id: int | None, session_key: str, now: dt.datetime
) -> bool:
    """Whether the evaluator has cast the campaign's ``daily_vote_cap`` votes today (UTC), as
    FastChat caps votes per judge per day."""
    cap = campaign.daily_vote_cap
    if not cap:
        return False
    start = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    votes = Vote.objects.filter(campaign=campaign, created_at__gte=start).filter(
        _owner_q(user_id, session_key, "battle__")
    )
    return votes.count() >= cap


def control_pick(
    *, campaign: Campaign, user_id: int | None, session_key: str, repeats: bool = True
) -> ControlPick | None:
    """At the campaign's rates, a gold, repeat or overlap battle for this evaluator; None for
    an ordinary one (also when the chosen kind has nothing to offer). ``repeats`` False: no
    repeat battles (the campaign reveals identities after the vote)."""
    roll = rng.random()
    if roll < campaign.gold_rate:
        return _gold(campaign, user_id, session_key)
    roll -= campaign.gold_rate
    if roll < campaign.repeat_rate:
        return _repeat(campaign, user_id, session_key) if repeats else None
    roll -= campaign.repeat_rate
    if roll < campaign.overlap_rate:
        return _overlap(campaign, user_id, session_key)
    return None


def _seen(campaign: Campaign, user_id: int | None, session_key: str) -> Any:
    return Battle.objects.filter(_owner_q(user_id, session_key), campaign=campaign).values(
        "question_id"
    )


def _pair(a: Answer, b: Answer) -> tuple[int, int]:
    return (min(a.contestant_id, b.contestant_id), max(a.contestant_id, b.contestant_id))


def _gold(campaign: Campaign, user_id: int | None, session_key: str) -> ControlPick | None:
    items = list(
        GoldItem.objects.filter(
            campaign=campaign,
            active=True,
            better__status=Answer.Status.DONE,
            worse__status=Answer.Status.DONE,
        )
        .exclude(question_id__in=_seen(campaign, user_id, session_key))
        .select_related("better", "worse")[:_CANDIDATES]
    )
    if not items:
        return None
    item = rng.choice(items)
    a, b = (item.better, item.worse) if rng.random() < 0.5 else (item.worse, item.better)
    return ControlPick(
        kind=Battle.Kind.GOLD,
        question_id=item.question_id,
        answer_a=a.pk,
        answer_b=b.pk,
        pair=_pair(a, b),
        gold_id=item.pk,
    )


def _repeat(campaign: Campaign, user_id: int | None, session_key: str) -> ControlPick | None:
    mine = Battle.objects.filter(
        _owner_q(user_id, session_key),
        campaign=campaign,
        kind=Battle.Kind.REGULAR,
        state=Battle.State.VOTED,
    )
    repeated = Battle.objects.filter(
        _owner_q(user_id, session_key), campaign=campaign, kind=Battle.Kind.REPEAT
    ).values("source_id")
    # Not among the evaluator's last REPEAT_GAP voted battles, and never repeated before.
    recent = list(mine.order_by("-served_at").values_list("pk", flat=True)[:REPEAT_GAP])
    candidates = list(
        mine.exclude(pk__in=recent)
        .exclude(pk__in=repeated)
        .select_related("answer_a", "answer_b")
        .order_by("?")[:1]
    )
    if not candidates:
        return None
    source = candidates[0]
    return ControlPick(
        kind=Battle.Kind.REPEAT,
        question_id=source.question_id,
        answer_a=source.answer_b_id,  # sides swapped
        answer_b=source.answer_a_id,
        pair=_pair(source.answer_a, source.answer_b),
        source_id=source.pk,
    )


def _overlap(campaign: Campaign, user_id: int | None, session_key: str) -> ControlPick | None:
    """One of the campaign's latest voted battles of other evaluators, on a question this one
    has not seen and fewer than OVERLAP_RATERS evaluators were served (a bounded read: the
    newest _CANDIDATES such battles, never the whole campaign)."""
    recent = list(
        Battle.objects.filter(
            campaign=campaign,
            kind=Battle.Kind.REGULAR,
            state=Battle.State.VOTED,
            mode=Battle.Mode.STORED,
        )
        .exclude(_owner_q(user_id, session_key))
        .exclude(question_id__in=_seen(campaign, user_id, session_key))
        .order_by("-id")
        .values_list("pk", "question_id")[:_CANDIDATES]
    )
    if not recent:
        return None
    served = dict(
        Battle.objects.filter(campaign=campaign, question_id__in={q for _pk, q in recent})
        .order_by()
        .values("question_id")
        .annotate(n=Count("id"))
        .values_list("question_id", "n")
    )
    open_ones = [pk for pk, question in recent if served.get(question, 0) < OVERLAP_RATERS]
    if not open_ones:
        return None
    source = Battle.objects.select_related("answer_a", "answer_b").get(pk=rng.choice(open_ones))
    a, b = (
        (source.answer_a, source.answer_b)
        if rng.random() < 0.5
        else (source.answer_b, source.answer_a)
    )
    return ControlPick(
        kind=Battle.Kind.OVERLAP,
        question_id=source.question_id,
        answer_a=a.pk,
        answer_b=b.pk,
        pair=_pair(a, b),
        source_id=source.pk,
    )


# Gold items ---------------------------------------------------------------------------------


def gold_item_problem(
    *, question: Question | None, better: Answer | None, worse: Answer | None
) -> str | None:
    """Why these cannot be a gold item (None: they can): two different answers to the question,
    both done."""
    if question is None or better is None or worse is None:
        return _("Choose the question and both answers.")
    if better.pk == worse.pk:
        return _("The better and the worse answer must differ.")
    if better.question_id != question.pk or worse.question_id != question.pk:
        return _("Both answers must answer the chosen question.")
    if better.status != Answer.Status.DONE or worse.status != Answer.Status.DONE:
        return _("Both answers must be finished.")
    return None


class GoldImportError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


_GOLD_KEYS = {"question_set", "question_id", "better", "worse", "note"}


def gold_items_import(*, campaign: Campaign, text: str, created_by: Any = None) -> list[GoldItem]:
    """Gold items from JSON Lines, one object per line: ``question_set`` (name),
    ``question_id`` (the question's external id), ``better`` and ``worse`` (contestant slugs:
    their current answers to that question), optional ``note``. Every line is checked first;
    any error refuses the whole file (GoldImportError lists them, by line)."""
    errors: list[str] = []
    items: list[GoldItem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(_("line %(n)d: not JSON (%(e)s)") % {"n": number, "e": exc.msg})
            continue
        if (
            not isinstance(row, dict)
            or not {"question_set", "question_id", "better", "worse"} <= row.keys()
        ):
            errors.append(
                _("line %(n)d: needs question_set, question_id, better and worse") % {"n": number}
            )
            continue
        unknown = set(row) - _GOLD_KEYS
        if unknown:
            errors.append(
                _("line %(n)d: unknown keys %(keys)s") % {"n": number, "keys": sorted(unknown)}
            )
            continue
        question = Question.objects.filter(
            question_set__name=str(row["question_set"]), external_id=str(row["question_id"])
        ).first()
        answers = {}
        for side in ("better", "worse"):
            contestant = Contestant.objects.filter(slug=str(row[side])).first()
            answers[side] = (
                None
                if question is None or contestant is None
                else Answer.objects.filter(
                    question=question, contestant=contestant, config_hash=contestant.config_hash
                ).first()
            )
        problem = gold_item_problem(
            question=question, better=answers["better"], worse=answers["worse"]
        )
        if problem:
            errors.append(_("line %(n)d: %(problem)s") % {"n": number, "problem": problem})
            continue
        items.append(
            GoldItem(
                campaign=campaign,
                question=question,
                better=answers["better"],
                worse=answers["worse"],
                note=str(row.get("note", ""))[:200],
                created_by=created_by,
            )
        )
    if not items and not errors:
        errors.append(_("The file holds no gold items."))
    if errors:
        raise GoldImportError(errors)
    with transaction.atomic():
        return GoldItem.objects.bulk_create(items)
