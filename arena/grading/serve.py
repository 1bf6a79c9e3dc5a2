"""Handing out answers to grade and recording grades (`Campaign.Kind.GRADING`).

The same promises as battles: the page shows the question and one answer by an opaque code,
never the contestant; a grading belongs to the evaluator (or anonymous session) it was served
to and every action checks the campaign is still open to them; one grade per grading is
enforced by the database. Not a hot path like pairwise voting (one answer, no pair counters),
so it is written with the ORM.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from arena.battles.read import battle_access_check
from arena.battles.rules import (
    AccessDenied,
    Owner,
    access_lost_message,
    question_skill_q,
    servable_answer_q,
)
from arena.battles.sampler import skill_block_for
from arena.battles.store import active_contestants
from arena.models import GRADE_CRITERIA, Answer, Campaign, Grade, Grading, Question
from arena.public import PublicGrading, PublicProgress, md

rng = random.SystemRandom()
MAX_REASON_CHARS = 2000
# How many candidate answers one request looks at from its random starting question.
_CANDIDATES = 50


class GradeRefused(Exception):
    """The grade was not recorded; the message is safe to show, ``code`` names the reason."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _owned(owner: Owner) -> Q:
    return owner.battle_q()


def _open_grading(campaign: Campaign, owner: Owner) -> Grading | None:
    return (
        Grading.objects.filter(
            _owned(owner),
            campaign=campaign,
            state=Grading.State.SERVED,
            expires_at__gt=timezone.now(),
        )
        .order_by("-served_at")
        .first()
    )


@transaction.atomic
def grading_next(*, campaign: Campaign, owner: Owner) -> Grading | None:
    """The owner's open grading, or a new one: a question they have not graded (nor skipped)
    in this campaign, its answer by the contestant with the fewest gradings so far among those
    that answered it, servable under the campaign's policy and allowed by its expert routing.
    None: nothing is left for this owner. Answers are locked SKIP LOCKED, so concurrent
    graders spread over different answers."""
    existing = _open_grading(campaign, owner)
    if existing is not None:
        return existing
    contestants = active_contestants(campaign_id=campaign.pk)
    if not contestants:
        return None
    current = Q()
    for c in contestants.values():
        current |= Q(contestant_id=c.pk, config_hash=c.config_hash)
    seen = Grading.objects.filter(_owned(owner), campaign=campaign).values("question_id")
    questions = Question.objects.filter(
        question_set__campaigns=campaign, question_set__kind="uploaded"
    ).filter(question_skill_q(skill_block_for(campaign, owner)))
    candidates = (
        Answer.objects.filter(current, servable_answer_q(campaign.identity_policy))
        .filter(question__in=questions)
        .exclude(question_id__in=seen)
    )
    loads = Counter(
        dict(
            Grading.objects.filter(campaign=campaign)
            .values("answer__contestant_id")
            .annotate(n=Count("id"))
            .values_list("answer__contestant_id", "n")
        )
    )
    bounds = questions.aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return None
    # A random starting question spreads concurrent graders over the pool.
    pivot = rng.randint(bounds["lo"], bounds["hi"])
    order = sorted(contestants, key=lambda pk: (loads.get(pk, 0), rng.random()))
    for contestant_id in order:
        mine = candidates.filter(contestant_id=contestant_id)
        for part in (mine.filter(question_id__gte=pivot), mine):
            found = (
                part.order_by("question_id")
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("id", "question_id")[:_CANDIDATES]
            )
            for answer_id, question_id in found:
                now = timezone.now()
                return Grading.objects.create(
                    campaign=campaign,
                    evaluator=owner.user,
                    session_key=owner.stored_session_key,
                    question_id=question_id,
                    answer_id=answer_id,
                    expires_at=now + dt.timedelta(seconds=settings.ARENA_BATTLE_TTL_SECONDS),
                )
    return None


def _grading(code: str, owner: Owner) -> Grading:
    try:
        key = uuid.UUID(str(code))
    except ValueError:
        raise GradeRefused(
            _("There is no such answer to grade for you."), code="not_found", status=404
        ) from None
    grading = (
        Grading.objects.filter(_owned(owner), code=key)
        .select_related("campaign", "question", "answer")
        .first()
    )
    if grading is None:
        raise GradeRefused(
            _("There is no such answer to grade for you."), code="not_found", status=404
        )
    return grading


def _score(raw: Any, label: str) -> int:
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= 10:
        raise GradeRefused(
            _("%(what)s needs a grade from 1 to 10.") % {"what": label}, code="bad_grade"
        )
    return value


def criterion_labels() -> dict[str, str]:
    """The rubric's criteria and their labels, in the order the page asks them."""
    return {
        "helpfulness": _("Helpfulness"),
        "correctness": _("Correctness"),
        "harmlessness": _("Harmlessness"),
        "language_quality": _("Language quality"),
    }


@dataclass(frozen=True)
class CastGrade:
    grade: Grade
    campaign: str


def grade_cast(*, code: str, owner: Owner, scores: dict[str, Any], reason: str = "") -> CastGrade:
    """Record the owner's grade of their served grading. ``scores``: ``overall`` under the
    overall rubric, else each of `GRADE_CRITERIA`, each 1..10. GradeRefused for anyone else's
    grading, an expired, skipped or already graded one, a campaign no longer open to them, a
    missing or out-of-range grade or an over-long reason."""
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS:
        raise GradeRefused(
            _("The reason is over %(n)d characters.") % {"n": MAX_REASON_CHARS}, code="bad_reason"
        )
    try:
        with transaction.atomic():
            grading = _grading(code, owner)
            grading = (
                Grading.objects.select_for_update()
                .select_related("campaign", "answer")
                .get(pk=grading.pk)
            )
            try:
                battle_access_check(campaign_id=grading.campaign_id, owner=owner)
            except AccessDenied:
                raise GradeRefused(access_lost_message(), code="no_access", status=403) from None
            if grading.state == Grading.State.GRADED:
                raise GradeRefused(
                    _("This answer already has your grade."), code="already_graded", status=409
                )
            now = timezone.now()
            if grading.state != Grading.State.SERVED or grading.expires_at <= now:
                raise GradeRefused(_("This grading has expired."), code="expired", status=410)
            values: dict[str, Any] = {}
            if grading.campaign.rubric == Campaign.Rubric.OVERALL:
                values["overall"] = _score(scores.get("overall"), _("The overall grade"))
            else:
                labels = criterion_labels()
                for name in GRADE_CRITERIA:
                    values[name] = _score(scores.get(name), labels[name])
            grade = Grade.objects.create(
                grading=grading,
                campaign_id=grading.campaign_id,
                evaluator=owner.user,
                question_id=grading.question_id,
                contestant_id=grading.answer.contestant_id,
                reason=reason,
                time_to_grade_ms=int((now - grading.served_at).total_seconds() * 1000),
                **values,
            )
            Grading.objects.filter(pk=grading.pk).update(state=Grading.State.GRADED)
            return CastGrade(grade=grade, campaign=grading.campaign.slug)
    except IntegrityError:
        raise GradeRefused(
            _("This answer already has your grade."), code="already_graded", status=409
        ) from None


@transaction.atomic
def grading_skip(*, code: str, owner: Owner) -> str:
    """Skip the owner's served grading (its question counts as seen); the campaign's slug."""
    grading = _grading(code, owner)
    try:
        battle_access_check(campaign_id=grading.campaign_id, owner=owner)
    except AccessDenied:
        raise GradeRefused(access_lost_message(), code="no_access", status=403) from None
    Grading.objects.filter(pk=grading.pk, state=Grading.State.SERVED).update(
        state=Grading.State.SKIPPED
    )
    return grading.campaign.slug


def grading_get_for_evaluator(*, code: str, owner: Owner) -> PublicGrading:
    """The owner's grading as the page and the JSON show it: the question and the answer's
    shown text (sanitised Markdown), the rubric, and their grade once given. GradeRefused
    (not_found / no_access) otherwise."""
    grading = _grading(code, owner)
    try:
        battle_access_check(campaign_id=grading.campaign_id, owner=owner)
    except AccessDenied:
        raise GradeRefused(access_lost_message(), code="no_access", status=403) from None
    state: Any = grading.state
    if state == Grading.State.SERVED and grading.expires_at <= timezone.now():
        state = Grading.State.EXPIRED.value
    given: dict[str, int] = {}
    if state == Grading.State.GRADED:
        grade = Grade.objects.filter(grading=grading).first()
        if grade is not None:
            given = {
                name: int(getattr(grade, name))
                for name in ("overall", *GRADE_CRITERIA)
                if getattr(grade, name) is not None
            }
    campaign = grading.campaign
    criteria = (
        [("overall", _("Overall"))]
        if campaign.rubric == Campaign.Rubric.OVERALL
        else list(criterion_labels().items())
    )
    return PublicGrading(
        code=str(grading.code),
        campaign=campaign.slug,
        campaign_name=campaign.name,
        state=state,
        question_html=md(grading.question.text),
        answer_html=md(grading.answer.shown_text),
        rubric="criteria" if campaign.rubric == Campaign.Rubric.CRITERIA else "overall",
        criteria=criteria,
        expires_at=grading.expires_at,
        grade=given,
    )


def grading_progress(*, campaign: Campaign, owner: Owner) -> PublicProgress:
    """The owner's grades in the campaign (shown as their votes) once the pool is empty."""
    votes = Grade.objects.filter(
        campaign=campaign, grading__in=Grading.objects.filter(_owned(owner))
    )
    return PublicProgress(votes=votes.count(), remaining_questions=0)
