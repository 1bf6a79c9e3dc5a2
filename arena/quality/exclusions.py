"""Exclusions: leaving an evaluator's votes, or chosen votes, out of a campaign's ratings, with
who decided it, when and why. Nothing is deleted: the votes stay stored and exported (marked
``excluded``), an exclusion is revoked rather than removed, and every recompute records the
exclusion set in the campaign's snapshot (`arena.ratings.store.exclusion_set_read`)."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from arena import dispatch
from arena.models import Campaign, Exclusion, Vote
from arena.quality import rules, store
from arena.quality.read import QualityReport, evaluator_quality_list
from arena.ratings.schedule import ratings_recompute_soon
from arena.ratings.store import votes_exclusion_sync

MAX_REASON_CHARS = 2000
# The gold floor applies from this many gold votes on: fewer say too little.
MIN_GOLD_VOTES = 5


class ExclusionRefused(Exception):
    """Nothing was recorded; the message says why."""


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ExclusionRefused(_("Give a reason for the exclusion."))
    if len(reason) > MAX_REASON_CHARS:
        raise ExclusionRefused(_("The reason is over %(n)d characters.") % {"n": MAX_REASON_CHARS})
    return reason


def evaluator_resolve(*, campaign: Campaign, evaluator: str) -> tuple[int | None, str]:
    """(user id, session key) of the evaluator the quality page names ``evaluator`` in this
    campaign: a username, an imported battle's judge, or an anonymous session's pseudonym."""
    sessions = store.campaign_session_keys(campaign_id=campaign.pk)
    for session in sessions:
        if rules.evaluator_label(username=None, session_key=session) == evaluator:
            return None, session
    user = get_user_model().objects.filter(username=evaluator).first()
    if user is not None and Vote.objects.filter(campaign=campaign, evaluator=user).exists():
        return int(user.pk), ""
    raise ExclusionRefused(
        _("No evaluator called %(name)s voted in this campaign.") % {"name": evaluator}
    )


def _after_change(campaign_id: int) -> None:
    votes_exclusion_sync(campaign_id=campaign_id)
    dispatch.after_commit(lambda: ratings_recompute_soon(campaign_id=campaign_id))


@transaction.atomic
def exclusion_create(
    *,
    campaign: Campaign,
    reason: str,
    by: AbstractBaseUser | None,
    evaluator: str | None = None,
    vote_ids: Sequence[int] = (),
    rule: str = Exclusion.Rule.MANUAL,
    evaluator_key: str | None = None,
) -> Exclusion:
    """Exclude every vote of ``evaluator`` (as the quality page names them), or the votes
    ``vote_ids`` of this campaign, from its ratings. Exactly one of the two; a reason is
    required. The ratings are recomputed soon after commit."""
    reason = _reason(reason)
    if (evaluator is None) == (not vote_ids):
        raise ExclusionRefused(_("Exclude either one evaluator or chosen votes."))
    if rule not in Exclusion.Rule.values:
        raise ExclusionRefused(_("Unknown exclusion rule."))
    exclusion = Exclusion(campaign=campaign, reason=reason, rule=rule)
    exclusion.created_by = by  # type: ignore[assignment]
    if evaluator is not None:
        if evaluator_key is not None:  # from the quality report itself: no lookup by name
            user_id, session = rules.evaluator_from_key(evaluator_key)
        else:
            user_id, session = evaluator_resolve(campaign=campaign, evaluator=evaluator)
        already = store.active_exclusions(campaign_id=campaign.pk).filter(
            votes__isnull=True, evaluator_id=user_id, session_key=session
        )
        if already.exists():
            raise ExclusionRefused(
                _("%(name)s is already excluded from this campaign.") % {"name": evaluator}
            )
        exclusion.evaluator_id = user_id
        exclusion.session_key = session
        exclusion.label = evaluator
        exclusion.save()
    else:
        wanted = sorted(set(vote_ids))
        found = list(
            Vote.objects.filter(campaign=campaign, pk__in=wanted).values_list("pk", flat=True)
        )
        if len(found) != len(wanted):
            raise ExclusionRefused(_("Some of the chosen votes are not in this campaign."))
        exclusion.save()
        exclusion.votes.set(found)
    _after_change(campaign.pk)
    return exclusion


@transaction.atomic
def exclusion_revoke(*, exclusion_id: int, reason: str, by: AbstractBaseUser | None) -> Exclusion:
    """Lift an active exclusion (the row stays, marked revoked, with who and why)."""
    reason = _reason(reason)
    exclusion = Exclusion.objects.select_for_update().filter(pk=exclusion_id).first()
    if exclusion is None or exclusion.revoked_at is not None:
        raise ExclusionRefused(_("There is no such active exclusion."))
    exclusion.revoked_at = timezone.now()
    exclusion.revoked_by = by  # type: ignore[assignment]
    exclusion.revoke_reason = reason
    exclusion.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    _after_change(exclusion.campaign_id)
    return exclusion


def exclusions_auto_apply(*, campaign_id: int) -> list[Exclusion]:
    """The campaign's opt-in automatic rules: exclude each evaluator the outlier test flags
    (``exclude_flagged``) or whose gold accuracy is under ``gold_accuracy_floor`` (from
    MIN_GOLD_VOTES gold votes on). An evaluator already excluded, or whose exclusion by the
    same rule an admin revoked, is left alone. Returns the new exclusions."""
    campaign = Campaign.objects.get(pk=campaign_id)
    if not campaign.exclude_flagged and campaign.gold_accuracy_floor is None:
        return []
    report = evaluator_quality_list(campaign=campaign, agreement_rounds=0)
    return _auto(campaign, report)


def _auto(campaign: Campaign, report: QualityReport) -> list[Exclusion]:
    revoked = {
        (rule, rules.evaluator_key(user_id=user, session_key=session))
        for rule, user, session in Exclusion.objects.filter(
            campaign=campaign, revoked_at__isnull=False, votes__isnull=True
        ).values_list("rule", "evaluator_id", "session_key")
    }
    made = []
    floor = campaign.gold_accuracy_floor
    for row in report.evaluators:
        if row.excluded:
            continue
        decided: tuple[str, str] | None = None
        if campaign.exclude_flagged and row.flagged:
            decided = (Exclusion.Rule.OUTLIER, "; ".join(row.reasons))
        elif (
            floor is not None
            and row.gold.trials >= MIN_GOLD_VOTES
            and row.gold.share is not None
            and row.gold.share < floor
        ):
            decided = (
                Exclusion.Rule.GOLD,
                f"gold accuracy {row.gold.share:.0%} of {row.gold.trials} < {floor:.0%}",
            )
        if decided is None or (decided[0], row.key) in revoked:
            continue
        try:
            made.append(
                exclusion_create(
                    campaign=campaign,
                    evaluator=row.evaluator,
                    evaluator_key=row.key,
                    reason=decided[1],
                    rule=decided[0],
                    by=None,
                )
            )
        except ExclusionRefused:
            continue  # excluded meanwhile by someone else
    return made
