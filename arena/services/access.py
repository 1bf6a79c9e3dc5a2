"""Who is asking: a logged-in evaluator, or an anonymous visitor of an open campaign."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from arena.models import Battle, Campaign


@dataclass(frozen=True)
class Owner:
    user: User | None
    session_key: str = ""

    def __post_init__(self) -> None:
        if self.user is None and not self.session_key:
            raise ValueError("an owner is a user or a session")

    def battles(self) -> QuerySet[Battle]:
        if self.user is not None:
            return Battle.objects.filter(evaluator=self.user)
        return Battle.objects.filter(evaluator__isnull=True, session_key=self.session_key)


class AccessDenied(Exception):
    """This evaluator may not use this campaign or battle. The message is safe to show."""


def campaigns_for(owner: Owner) -> QuerySet[Campaign]:
    active = Campaign.objects.filter(active=True)
    if owner.user is None:
        return active.filter(is_open=True)
    if owner.user.is_staff:
        return active
    return active.filter(Q(is_open=True) | Q(evaluators=owner.user)).distinct()


def campaign_access(*, slug: str, owner: Owner) -> Campaign:
    campaign = campaigns_for(owner).filter(slug=slug).first()
    if campaign is None:
        raise AccessDenied(_("This campaign does not exist or is not open to you."))
    return campaign
