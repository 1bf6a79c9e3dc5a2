"""Each rule of arena.battles.rules in its SQL form and its Q form picks the same rows.

The SQL fragments are run inside a plain SELECT over the table they are written for; the Q
forms through the ORM; both over the same rows, built to cover every branch of the rule.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from arena.battles import rules
from arena.battles.rules import Owner
from arena.models import Answer, Battle, Campaign, Vote
from tests import factories

pytestmark = pytest.mark.django_db


def _ids(sql: str, params: dict[str, Any] | None = None) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return {int(row[0]) for row in cursor.fetchall()}


@pytest.fixture
def people() -> dict[str, User]:
    return {
        "member": factories.UserFactory(),
        "stranger": factories.UserFactory(),
        "staff": factories.UserFactory(is_staff=True),
    }


def _owners(people: dict[str, User]) -> list[Owner]:
    return [
        *(Owner(user=u) for u in people.values()),
        Owner(user=None, session_key="session-one"),
        Owner(user=None, session_key="session-two"),
    ]


def test_campaign_access_sql_and_q_agree(people: dict[str, User]) -> None:
    campaigns = [
        factories.CampaignFactory(active=active, is_open=is_open)
        for active, is_open in itertools.product((True, False), repeat=2)
    ]
    for campaign in campaigns:
        campaign.evaluators.add(people["member"])
    # One more the member is not in, and one with two evaluators (no duplicate rows).
    factories.CampaignFactory(active=True, is_open=False)
    crowded = factories.CampaignFactory(active=True, is_open=False)
    crowded.evaluators.add(people["member"], people["stranger"])

    seen = set()
    for owner in _owners(people):
        where, params = rules.campaign_access_sql(owner, "c")
        by_sql = _ids(f"SELECT c.id FROM arena_campaign c WHERE {where}", params)
        by_q = list(Campaign.objects.filter(rules.campaign_access_q(owner)).values_list("id"))
        assert by_sql == {pk for (pk,) in by_q}
        assert len(by_q) == len(by_sql), "the Q form repeats a campaign"
        seen.add(frozenset(by_sql))
    # The shapes really differ: staff, members, strangers and sessions see different sets.
    assert len(seen) >= 3


def test_access_rule_means_active_and_open_member_or_staff(people: dict[str, User]) -> None:
    closed = factories.CampaignFactory(active=True, is_open=False)
    closed.evaluators.add(people["member"])
    open_ = factories.CampaignFactory(active=True, is_open=True)
    inactive = factories.CampaignFactory(active=False, is_open=True)
    inactive.evaluators.add(people["member"])

    def visible(owner: Owner) -> set[int]:
        return set(
            Campaign.objects.filter(rules.campaign_access_q(owner)).values_list("id", flat=True)
        )

    assert visible(Owner(user=people["member"])) == {closed.pk, open_.pk}
    assert visible(Owner(user=people["stranger"])) == {open_.pk}
    assert visible(Owner(user=people["staff"])) == {closed.pk, open_.pk}
    assert visible(Owner(user=None, session_key="s")) == {open_.pk}


def test_owner_sql_and_q_agree_on_battles_and_votes(people: dict[str, User]) -> None:
    campaign = factories.CampaignFactory()
    battles = [factories.BattleFactory(campaign=campaign, evaluator=u) for u in people.values()]
    battles += [
        factories.BattleFactory(campaign=campaign, evaluator=None, session_key=key)
        for key in ("session-one", "session-one", "session-two")
    ]
    for battle in battles[::2]:
        Vote.objects.create(
            battle=battle,
            campaign=campaign,
            evaluator=battle.evaluator,
            question=battle.question,
            contestant_a=battle.answer_a.contestant,
            contestant_b=battle.answer_b.contestant,
            outcome="a",
        )
    for owner in _owners(people):
        where, params = owner.battle_sql("b")
        by_sql = _ids(f"SELECT b.id FROM arena_battle b WHERE {where}", params)
        by_q = set(Battle.objects.filter(owner.battle_q()).values_list("id", flat=True))
        assert by_sql == by_q
        assert by_q, f"no battle for {owner}: the shape is not covered"

        join, vote_where, vote_params = owner.vote_sql("v", "vb")
        by_sql = _ids(
            f"SELECT v.id FROM arena_vote v {join} WHERE {vote_where}",
            vote_params,
        )
        by_q = set(Vote.objects.filter(owner.vote_q()).values_list("id", flat=True))
        assert by_sql == by_q
        via_battle = set(
            Vote.objects.filter(owner.battle_q("battle__")).values_list("id", flat=True)
        )
        assert via_battle == by_q


@pytest.mark.parametrize("policy", [p.value for p in Campaign.IdentityPolicy])
def test_servable_answer_sql_and_q_agree(policy: str) -> None:
    for status, flagged, released in itertools.product(
        Answer.Status.values, (False, True), (False, True)
    ):
        factories.AnswerFactory(
            status=status,
            flagged=flagged,
            released=released,
            failure_reason="x" if status == "failed" else "",
        )
    where = rules.servable_answer_sql(policy, "a")
    by_sql = _ids(f"SELECT a.id FROM arena_answer a WHERE {where}")
    by_q = set(Answer.objects.filter(rules.servable_answer_q(policy)).values_list("id", flat=True))
    assert by_sql == by_q
    flagged_served = Answer.objects.filter(pk__in=by_q, flagged=True, released=False).exists()
    # Under redact a flagged answer is served with its redacted text; under exclude it is not.
    assert flagged_served == (policy == Campaign.IdentityPolicy.REDACT)
    assert not Answer.objects.filter(pk__in=by_q).exclude(status=Answer.Status.DONE).exists()


def test_round_complete_sql_q_and_python_agree() -> None:
    shapes = []
    for turns, a_status, a_done, b_done in itertools.product(
        (0, 1, 2), ("done", "running"), (0, 1, 2), (0, 1, 2)
    ):
        question = factories.QuestionFactory(turns=[f"follow-up {k}" for k in range(turns)])
        followups = [{"raw": "r", "shown": "s", "report": {}}]
        battle = factories.BattleFactory(
            question=question,
            mode=Battle.Mode.LIVE,
            answer_a__status=a_status,
            answer_a__followups=followups * a_done if a_status == "done" else [],
            answer_b__followups=followups * b_done,
        )
        shapes.append(battle)
    where = rules.round_complete_sql(a="aa", b="ab", question="q")
    by_sql = _ids(
        "SELECT b.id FROM arena_battle b JOIN arena_question q ON q.id = b.question_id "
        "JOIN arena_answer aa ON aa.id = b.answer_a_id "
        f"JOIN arena_answer ab ON ab.id = b.answer_b_id WHERE {where}"
    )
    by_q = set(Battle.objects.filter(rules.round_complete_q()).values_list("id", flat=True))
    by_python = {
        b.pk
        for b in shapes
        if rules.round_complete(
            a_status=b.answer_a.status,
            a_followups=b.answer_a.followups,
            b_status=b.answer_b.status,
            b_followups=b.answer_b.followups,
            turns=len(b.question.turns),
        )
    }
    assert by_sql == by_q == by_python
    assert 0 < len(by_q) < len(shapes)


def test_campaign_reveals_sql_q_and_python_agree() -> None:
    by_python = set()
    for i, (reveal, is_open) in enumerate(itertools.product((None, True, False), (True, False))):
        campaign = factories.CampaignFactory(
            slug=f"reveal-{i}", reveal_after_vote=reveal, is_open=is_open
        )
        if rules.campaign_reveals(reveal_after_vote=reveal, is_open=is_open):
            by_python.add(campaign.pk)
    by_q = set(Campaign.objects.filter(rules.campaign_reveals_q()).values_list("pk", flat=True))
    where = rules.campaign_reveals_sql("c")
    by_sql = _ids(f"SELECT c.id FROM arena_campaign c WHERE {where}")
    assert by_sql == by_q == by_python
    # Unset: a team campaign reveals, an open one does not; an explicit choice wins.
    assert rules.campaign_reveals(reveal_after_vote=None, is_open=False)
    assert not rules.campaign_reveals(reveal_after_vote=None, is_open=True)
    assert rules.campaign_reveals(reveal_after_vote=True, is_open=True)
    assert not rules.campaign_reveals(reveal_after_vote=False, is_open=False)
