"""The rules of battles, each written once in both forms the code needs.

Every rule here comes as the SQL fragment that the hot paths' statements (`store.py`) splice
in and, beside it, the ``Q`` the ORM code uses; ``tests/arena/test_battle_rules.py`` runs both
on the same rows and asserts they pick the same ones. A third, Python form exists where the
rows are already in memory. Nothing else in `arena` restates these conditions.

- **owner**: whose battle it is (a logged-in evaluator, or an anonymous session of an open
  campaign), and whose vote.
- **campaign access**: an active campaign, open to everybody, or to its evaluators and staff.
  Every battle action checks it again (a battle served before the evaluator was removed, or
  before the campaign was closed or deactivated, is refused with `ACCESS_LOST`).
- **servable answer**: finished, and under the *exclude* identity policy not flagged for
  self-identification unless an admin released it. Under *redact* a flagged answer is served
  on purpose: its shown text was redacted, which is what that policy means.
- **round complete**: both sides of a live battle have answered the latest user turn.
- **taint**: a battle whose shown answers name a model or maker that its question does not,
  or whose prompt asks the model who it is; decided from terms stored with the answers and
  the question (`battle_taint`), in the vote's own statement.
- **expert routing**: questions of a category or language the campaign reserves for experts
  are served only to evaluators whose profile holds that skill or language (`skill_block`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Exists, F, Func, IntegerField, OuterRef, Q
from django.db.models.lookups import GreaterThanOrEqual

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

from django.utils.translation import gettext as _

from arena.models import Answer, Campaign

# The parameters of the SQL forms are named after the owner (user, session, staff), so one
# statement can merge those of several rules: the same name always means the same value.
Params = dict[str, Any]


class AccessDenied(Exception):
    """This evaluator may not use this campaign or battle. The message is safe to show."""


def access_lost_message() -> str:
    """What an evaluator reads when a battle of theirs is in a campaign they may no longer
    use (removed from it, or the campaign closed or deactivated)."""
    return _("This campaign is no longer open to you, so this battle cannot be used.")


# Owner ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """Who is asking: a logged-in evaluator, or an anonymous visitor of an open campaign."""

    user: User | None
    session_key: str = ""

    def __post_init__(self) -> None:
        if self.user is None and not self.session_key:
            raise ValueError("an owner is a user or a session")

    # A battle is the owner's -----------------------------------------------------------------

    def battle_q(self, prefix: str = "") -> Q:
        """The owner's battles, on Battle or through the relation path ``prefix``
        (e.g. ``"battle__"`` from a vote)."""
        if self.user is not None:
            return Q(**{f"{prefix}evaluator": self.user})
        return Q(**{f"{prefix}evaluator__isnull": True, f"{prefix}session_key": self.session_key})

    def battle_sql(self, alias: str) -> tuple[str, Params]:
        """`battle_q` on the battle table called ``alias``, with its named parameters."""
        if self.user is not None:
            return f"{alias}.evaluator_id = %(user)s", {"user": self.user.pk}
        return (
            f"{alias}.evaluator_id IS NULL AND {alias}.session_key = %(session)s",
            {"session": self.session_key},
        )

    # A vote is the owner's ---------------------------------------------------------------------
    # A vote copies its battle's evaluator, so a user's votes need no join; a session's do.

    def vote_q(self) -> Q:
        """The owner's votes, on Vote."""
        if self.user is not None:
            return Q(evaluator=self.user)
        return Q(evaluator__isnull=True, battle__session_key=self.session_key)

    def vote_sql(self, vote: str, battle: str) -> tuple[str, str, Params]:
        """`vote_q` on the vote table called ``vote``: the join it needs (empty for a user),
        the condition (the battle table in the join is called ``battle``), the parameters."""
        if self.user is not None:
            return "", f"{vote}.evaluator_id = %(user)s", {"user": self.user.pk}
        return (
            f"JOIN arena_battle {battle} ON {battle}.id = {vote}.battle_id",
            f"{vote}.evaluator_id IS NULL AND {battle}.session_key = %(session)s",
            {"session": self.session_key},
        )

    @property
    def user_id(self) -> int | None:
        return self.user.pk if self.user is not None else None

    @property
    def stored_session_key(self) -> str:
        """The session key a battle of this owner stores (empty for a logged-in user)."""
        return "" if self.user is not None else self.session_key


# Campaign access --------------------------------------------------------------------------------


def campaign_access_q(owner: Owner) -> Q:
    """Campaigns the owner may evaluate in: active, and open, or staff, or a member."""
    active = Q(active=True)
    if owner.user is None:
        return active & Q(is_open=True)
    if owner.user.is_staff:
        return active
    member = Campaign.evaluators.through.objects.filter(
        campaign_id=OuterRef("pk"), user_id=owner.user.pk
    )
    return active & (Q(is_open=True) | Q(Exists(member)))


def campaign_access_sql(owner: Owner, alias: str) -> tuple[str, Params]:
    """`campaign_access_q` on the campaign table called ``alias``."""
    user = owner.user
    member = (  # alias is a table alias of ours, never input
        f"SELECT 1 FROM arena_campaign_evaluators e WHERE e.campaign_id = {alias}.id "  # noqa: S608
        "AND e.user_id = %(user)s"
    )
    return (
        f"{alias}.active AND ({alias}.is_open OR %(staff)s OR EXISTS ({member}))",
        {
            "staff": user is not None and user.is_staff,
            "user": user.pk if user is not None else None,
        },
    )


# Reveal after the vote ----------------------------------------------------------------------------
# `Campaign.reveal_after_vote` left unset (None) means the kind's default: a team campaign
# reveals, an open one does not (a stranger who learns each model's style from reveals can vote
# for it later). An explicit yes or no wins.


def campaign_reveals(*, reveal_after_vote: bool | None, is_open: bool) -> bool:
    """Whether a campaign shows an evaluator the two names once their vote is stored."""
    return (not is_open) if reveal_after_vote is None else reveal_after_vote


def campaign_reveals_q(prefix: str = "") -> Q:
    """`campaign_reveals` on Campaign or through ``prefix``."""
    return Q(**{f"{prefix}reveal_after_vote": True}) | Q(
        **{f"{prefix}reveal_after_vote__isnull": True, f"{prefix}is_open": False}
    )


def campaign_reveals_sql(alias: str) -> str:
    """`campaign_reveals` on the campaign table called ``alias`` (no parameters)."""
    return f"COALESCE({alias}.reveal_after_vote, NOT {alias}.is_open)"


# Servable answer --------------------------------------------------------------------------------


def excludes_flagged(policy: str) -> bool:
    """Whether a campaign with this identity policy keeps flagged answers out of battles."""
    return policy == Campaign.IdentityPolicy.EXCLUDE


def servable_answer_q(policy: str, prefix: str = "") -> Q:
    """Answers a campaign with identity ``policy`` may show, on Answer or through ``prefix``."""
    done = Q(**{f"{prefix}status": Answer.Status.DONE})
    if not excludes_flagged(policy):
        return done
    return done & (Q(**{f"{prefix}flagged": False}) | Q(**{f"{prefix}released": True}))


def servable_answer_sql(policy: str, alias: str) -> str:
    """`servable_answer_q` on the answer table called ``alias`` (no parameters)."""
    done = f"{alias}.status = 'done'"
    if not excludes_flagged(policy):
        return done
    return f"{done} AND (NOT {alias}.flagged OR {alias}.released)"


# Round complete ---------------------------------------------------------------------------------


class JSONArrayLength(Func):
    """The length of a JSON array column, on PostgreSQL (jsonb) and SQLite alike."""

    function = "json_array_length"
    output_field = IntegerField()

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[str | int, ...]]:
        return self.as_sql(compiler, connection, function="jsonb_array_length", **extra)


def _json_length_function() -> str:
    """`JSONArrayLength`'s function on the current database, for the SQL forms."""
    return "jsonb_array_length" if connection.vendor == "postgresql" else "json_array_length"


def side_done(*, status: str, followups: Sequence[Any], turn: int) -> bool:
    """One side has answered user turn ``turn`` (0 is the first prompt; follow-up ``k`` is
    stored as ``followups[k - 1]``, and only once the first reply is done)."""
    return status == Answer.Status.DONE and len(followups) >= turn


def round_complete(
    *,
    a_status: str,
    a_followups: Sequence[Any],
    b_status: str,
    b_followups: Sequence[Any],
    turns: int,
) -> bool:
    """Both sides have answered the latest user turn of a question with ``turns`` follow-ups."""
    return side_done(status=a_status, followups=a_followups, turn=turns) and side_done(
        status=b_status, followups=b_followups, turn=turns
    )


def round_complete_q(prefix: str = "") -> Q:
    """`round_complete` on Battle (or through ``prefix``): both answers done, each with as
    many follow-up replies as the question has follow-up turns."""
    turns = JSONArrayLength(F(f"{prefix}question__turns"))
    return Q(
        Q(**{f"{prefix}answer_a__status": Answer.Status.DONE}),
        Q(**{f"{prefix}answer_b__status": Answer.Status.DONE}),
        GreaterThanOrEqual(JSONArrayLength(F(f"{prefix}answer_a__followups")), turns),
        GreaterThanOrEqual(JSONArrayLength(F(f"{prefix}answer_b__followups")), turns),
    )


def round_complete_sql(*, a: str, b: str, question: str) -> str:
    """`round_complete_q` on the answer tables ``a`` and ``b`` and the question table."""
    length = _json_length_function()
    return (
        f"{a}.status = 'done' AND {b}.status = 'done' "
        f"AND {length}({a}.followups) >= {length}({question}.turns) "
        f"AND {length}({b}.followups) >= {length}({question}.turns)"
    )


# Taint -------------------------------------------------------------------------------------------


def battle_taint(
    *,
    question_terms: Sequence[str],
    asks_identity: bool,
    a_terms: Sequence[str],
    b_terms: Sequence[str],
) -> dict[str, Any]:
    """What taints a battle: per side, the identity terms its answer names that the question
    does not (sorted), and ``asks_identity`` when a user turn asks the model who it is. An
    empty result: the battle is clean. The vote is stored either way; the campaign decides
    whether it counts (`Campaign.tainted_votes`)."""
    asked = set(question_terms)
    taint: dict[str, Any] = {}
    for side, terms in (("a", a_terms), ("b", b_terms)):
        named = sorted(set(terms) - asked)
        if named:
            taint[side] = named
    if asks_identity:
        taint["asks_identity"] = True
    return taint


# Expert routing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillBlock:
    """What a campaign's expert routing keeps from one evaluator: the categories and languages
    the campaign reserves for experts that the evaluator lacks. Empty: nothing is kept back."""

    categories: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.categories or self.languages)


def skill_block(
    *,
    expert_categories: Sequence[str],
    expert_languages: Sequence[str],
    skills: Sequence[str],
    languages: Sequence[str],
) -> SkillBlock:
    """The campaign's reserved categories and languages less the evaluator's ``skills`` and
    ``languages`` (an anonymous visitor has neither)."""
    return SkillBlock(
        categories=tuple(sorted(set(expert_categories) - set(skills))),
        languages=tuple(sorted(set(expert_languages) - set(languages))),
    )


def question_skill_q(block: SkillBlock, prefix: str = "") -> Q:
    """Questions (on Question, or through ``prefix``) the evaluator may be served."""
    allowed = Q()
    if block.categories:
        allowed &= ~Q(**{f"{prefix}category__in": block.categories})
    if block.languages:
        allowed &= ~Q(**{f"{prefix}language__in": block.languages})
    return allowed


def question_skill_sql(block: SkillBlock, alias: str) -> tuple[str, Params]:
    """`question_skill_q` on the question table called ``alias``: an ``AND …`` condition (empty
    when nothing is kept back) and its parameters."""
    parts: list[str] = []
    params: Params = {}
    for column, values in (("category", block.categories), ("language", block.languages)):
        if not values:
            continue
        names = [f"skill_{column}_{k}" for k in range(len(values))]
        placeholders = ", ".join(f"%({name})s" for name in names)
        parts.append(f" AND {alias}.{column} NOT IN ({placeholders})")
        params.update(dict(zip(names, values, strict=True)))
    return "".join(parts), params
