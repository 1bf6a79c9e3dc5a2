"""Who is asking: a logged-in evaluator, or an anonymous visitor of an open campaign."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from arena import sql
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

    def battle_filter(self, alias: str) -> tuple[str, dict[str, object]]:
        """battles() as an SQL condition on the battle table called ``alias``, with its
        named parameters (for the statements of the hot paths)."""
        if self.user is not None:
            return f"{alias}.evaluator_id = %(user)s", {"user": self.user.pk}
        return (
            f"{alias}.evaluator_id IS NULL AND {alias}.session_key = %(session)s",
            {"session": self.session_key},
        )


class AccessDenied(Exception):
    """This evaluator may not use this campaign or battle. The message is safe to show."""


def campaigns_for(owner: Owner) -> QuerySet[Campaign]:
    active = Campaign.objects.filter(active=True)
    if owner.user is None:
        return active.filter(is_open=True)
    if owner.user.is_staff:
        return active
    return active.filter(Q(is_open=True) | Q(evaluators=owner.user)).distinct()


# campaigns_for() as one statement for one slug: this runs on every "next battle".
_CAMPAIGN_COLUMNS = sql.columns(Campaign, exclude=["created_at"])
_ACCESS_SQL = f"""
SELECT {sql.select_list(Campaign, "c", _CAMPAIGN_COLUMNS)}
FROM arena_campaign c
WHERE c.slug = %(slug)s AND c.active AND (
  c.is_open OR %(staff)s OR EXISTS (
    SELECT 1 FROM arena_campaign_evaluators e WHERE e.campaign_id = c.id AND e.user_id = %(user)s
  )
)
"""  # noqa: S608  (column names from the model, no input)


def campaign_access(*, slug: str, owner: Owner) -> Campaign:
    """The active campaign with this slug if the owner may evaluate in it: open ones for
    everybody, the others for their evaluators and for staff."""
    user = owner.user
    row = sql.fetch_one(
        _ACCESS_SQL,
        {
            "slug": slug,
            "staff": user is not None and user.is_staff,
            "user": user.pk if user is not None else None,
        },
    )
    if row is None:
        raise AccessDenied(_("This campaign does not exist or is not open to you."))
    return sql.from_columns(Campaign, _CAMPAIGN_COLUMNS, row)
