"""Smarter collection in the database: the active sampling plan, the weights battles record
and the ratings use, and expert routing (with the parity of its SQL and Q forms)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.db import connection

from arena.accounts.tokens import api_token_create
from arena.battles import rules
from arena.battles.active import draw_order, sampling_plan_update
from arena.battles.collection import acceptable_figures, skill_counts
from arena.battles.rules import Owner, SkillBlock
from arena.battles.sampler import battle_next
from arena.battles.votes import vote_cast
from arena.models import Battle, Campaign, EvaluatorProfile, PairLoad, Question, RatingSnapshot
from arena.ranking import aggregate, bt_fit, to_ratings
from arena.ratings.recompute import ratings_recompute
from arena.ratings.snapshot import campaign_scope
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _few_rounds(settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 20


def _member(campaign: Campaign) -> Owner:
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    return Owner(user=user)


def _vote_all(campaign: Campaign, owner: Owner, outcome: str = "a") -> list[Battle]:
    served = []
    while (battle := battle_next(campaign=campaign, owner=owner)) is not None:
        vote_cast(code=str(battle.code), owner=owner, outcome=outcome)
        served.append(battle)
    return served


# Active sampling ------------------------------------------------------------------------------


def test_draw_order_follows_the_plan_and_returns_each_pairs_weight() -> None:
    plan = {(1, 2): 0.7, (1, 3): 0.2, (2, 3): 0.1}
    rng = random.Random(5)
    firsts = Counter(draw_order(plan, [1, 2, 3], rng)[0][0] for _ in range(4000))
    assert firsts[(1, 2)] / 4000 == pytest.approx(0.7, abs=0.03)
    assert firsts[(2, 3)] / 4000 == pytest.approx(0.1, abs=0.02)
    weights = dict(draw_order(plan, [1, 2, 3], rng))
    assert weights[(1, 2)] == pytest.approx(1 / (3 * 0.7))
    assert weights[(2, 3)] == pytest.approx(1 / (3 * 0.1))


def test_draw_order_without_a_plan_is_uniform_and_new_pairs_share_half() -> None:
    rng = random.Random(1)
    assert [w for _p, w in draw_order({}, [1, 2, 3], rng)] == pytest.approx([1.0, 1.0, 1.0])
    # Contestant 4 came after the plan: its three pairs share half of the draws.
    plan = {(1, 2): 0.5, (1, 3): 0.25, (2, 3): 0.25}
    weights = dict(draw_order(plan, [1, 2, 3, 4], rng))
    assert weights[(1, 4)] == pytest.approx(1 / (6 * 0.5 / 3))
    assert weights[(1, 2)] == pytest.approx(1 / (6 * 0.25))


def test_balanced_campaigns_record_no_sampling_weight() -> None:
    campaign, _c, _q = factories.campaign_with_answers(contestants=3, questions=3)
    served = _vote_all(campaign, _member(campaign))
    assert served
    assert not Battle.objects.filter(sampling_weight__isnull=False).exists()
    assert sampling_plan_update(campaign_id=campaign.pk) == {}


def test_active_campaign_serves_by_the_stored_plan_and_records_its_weights() -> None:
    campaign, contestants, _q = factories.campaign_with_answers(
        contestants=3, questions=30, sampling=Campaign.Sampling.ACTIVE
    )
    lo, mid, hi = sorted(c.pk for c in contestants)
    plan = {(lo, mid): 0.8, (lo, hi): 0.1, (mid, hi): 0.1}
    for (a, b), w in plan.items():
        PairLoad.objects.create(campaign=campaign, contestant_lo_id=a, contestant_hi_id=b, weight=w)
    served = _vote_all(campaign, _member(campaign))
    assert len(served) == 30
    pairs = Counter()
    for battle in Battle.objects.filter(campaign=campaign).select_related("answer_a", "answer_b"):
        pair = tuple(sorted((battle.answer_a.contestant_id, battle.answer_b.contestant_id)))
        pairs[pair] += 1
        assert battle.sampling_weight == pytest.approx(1 / (3 * plan[pair]))  # type: ignore[index]
    assert pairs[(lo, mid)] > pairs[(lo, hi)] + pairs[(mid, hi)]


def test_plan_update_writes_a_distribution_from_the_latest_snapshot() -> None:
    campaign, _contestants, _q = factories.campaign_with_answers(
        contestants=4, questions=40, sampling=Campaign.Sampling.ACTIVE
    )
    owner = _member(campaign)
    for _ in range(2):  # before any snapshot the plan is uniform
        for battle in iter(lambda: battle_next(campaign=campaign, owner=owner), None):  # noqa: B023
            winner = "a" if battle.answer_a.contestant_id < battle.answer_b.contestant_id else "b"
            vote_cast(code=str(battle.code), owner=owner, outcome=winner)
        owner = _member(campaign)
    ratings_recompute(campaign_id=campaign.pk)
    plan = sampling_plan_update(campaign_id=campaign.pk)
    assert len(plan) == 6
    assert sum(plan.values()) == pytest.approx(1.0)
    stored = dict(
        PairLoad.objects.filter(campaign=campaign).values_list("contestant_lo_id", "weight")
    )
    assert all(w is not None for w in stored.values())
    # Switching back to balanced clears the plan.
    Campaign.objects.filter(pk=campaign.pk).update(sampling=Campaign.Sampling.BALANCED)
    sampling_plan_update(campaign_id=campaign.pk)
    assert not PairLoad.objects.filter(campaign=campaign, weight__isnull=False).exists()


def test_ratings_weight_each_vote_by_its_battles_inverse_propensity() -> None:
    campaign, contestants, _q = factories.campaign_with_answers(
        contestants=3, questions=24, sampling=Campaign.Sampling.ACTIVE
    )
    low = min(c.pk for c in contestants)
    for k in range(3):  # the lowest id wins for two evaluators, ties for the third
        owner = _member(campaign)
        for battle in iter(lambda: battle_next(campaign=campaign, owner=owner), None):  # noqa: B023
            a_low = battle.answer_a.contestant_id == low
            b_low = battle.answer_b.contestant_id == low
            outcome = "tie" if k == 2 else ("a" if a_low else "b" if b_low else "tie")
            vote_cast(code=str(battle.code), owner=owner, outcome=outcome)
    # A made-up plan's weights on the battles: the fit must use them.
    by_pair = {}
    for battle in Battle.objects.filter(campaign=campaign).select_related("answer_a", "answer_b"):
        pair = tuple(sorted((battle.answer_a.contestant_id, battle.answer_b.contestant_id)))
        by_pair.setdefault(pair, []).append(battle.pk)
    for k, ids in enumerate(by_pair.values()):
        Battle.objects.filter(pk__in=ids).update(sampling_weight=[0.5, 1.0, 3.0][k])
    ratings_recompute(campaign_id=campaign.pk)
    payload = RatingSnapshot.objects.get(scope=campaign_scope(campaign.pk)).payload
    got = {row["name"]: row["rating"] for row in payload["leaderboard"]["contestants"]}

    names = sorted(c.name for c in contestants)
    index = {c.pk: names.index(c.name) for c in contestants}
    code = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}
    rows = [
        (
            index[b.answer_a.contestant_id],
            index[b.answer_b.contestant_id],
            code[b.vote.outcome],
            b.sampling_weight,
        )
        for b in Battle.objects.filter(campaign=campaign).select_related(
            "answer_a", "answer_b", "vote"
        )
    ]
    a, b, o, w = (np.array(column) for column in zip(*rows, strict=True))
    fit = bt_fit(aggregate(a, b, o, 3, weights=w.astype(float)))
    expected = to_ratings(fit.theta, fit.component)
    plain_fit = bt_fit(aggregate(a, b, o, 3))
    plain = to_ratings(plain_fit.theta, plain_fit.component)
    for name, k in ((n, names.index(n)) for n in names):
        assert got[name] == pytest.approx(expected[k], abs=1e-6)
    assert not np.allclose(expected, plain, atol=1e-3)


# Expert routing -------------------------------------------------------------------------------


def _routed_campaign(**fields: Any) -> tuple[Campaign, list[Question]]:
    campaign, _c, questions = factories.campaign_with_answers(contestants=2, questions=6, **fields)
    for k, q in enumerate(questions):
        q.category = ["medical", "code", ""][k % 3]
        q.language = ["ko", "en"][k % 2]
        q.save()
    return campaign, questions


def _served_questions(campaign: Campaign, owner: Owner) -> set[int]:
    return {b.question_id for b in _vote_all(campaign, owner)}


def test_reserved_category_goes_only_to_evaluators_with_the_skill() -> None:
    campaign, questions = _routed_campaign(expert_categories=["medical"])
    medical = {q.pk for q in questions if q.category == "medical"}
    doctor = _member(campaign)
    EvaluatorProfile.objects.create(user=doctor.user, skills=["medical"])
    layman = _member(campaign)
    assert _served_questions(campaign, doctor) == {q.pk for q in questions}
    assert _served_questions(campaign, layman) == {q.pk for q in questions} - medical


def test_reserved_language_goes_only_to_readers_and_never_to_anonymous_visitors() -> None:
    campaign, questions = _routed_campaign(expert_languages=["ko"], is_open=True)
    korean = {q.pk for q in questions if q.language == "ko"}
    reader = _member(campaign)
    EvaluatorProfile.objects.create(user=reader.user, languages=["ko", "en"])
    assert _served_questions(campaign, reader) == {q.pk for q in questions}
    visitor = Owner(user=None, session_key="visitor")
    assert _served_questions(campaign, visitor) == {q.pk for q in questions} - korean


def test_skill_block_is_the_reserved_less_what_the_evaluator_has() -> None:
    block = rules.skill_block(
        expert_categories=["medical", "law"],
        expert_languages=["ko"],
        skills=["law"],
        languages=["ko"],
    )
    assert block == SkillBlock(categories=("medical",), languages=())
    assert not rules.skill_block(expert_categories=[], expert_languages=[], skills=[], languages=[])


def test_question_skill_sql_and_q_agree() -> None:
    campaign, _questions = _routed_campaign()
    del campaign
    blocks = [
        SkillBlock(),
        SkillBlock(categories=("medical",)),
        SkillBlock(languages=("ko",)),
        SkillBlock(categories=("medical", "code"), languages=("en",)),
        SkillBlock(categories=("",)),
    ]
    seen = set()
    for block in blocks:
        where, params = rules.question_skill_sql(block, "q")
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT q.id FROM arena_question q WHERE TRUE{where}", params)
            by_sql = {int(r[0]) for r in cursor.fetchall()}
        by_q = set(
            Question.objects.filter(rules.question_skill_q(block)).values_list("id", flat=True)
        )
        assert by_sql == by_q
        seen.add(frozenset(by_sql))
    assert len(seen) >= 4


def test_expert_votes_weigh_more_when_the_campaign_says_so(evaluator: User) -> None:
    campaign, contestants, questions = factories.campaign_with_answers(
        contestants=2, questions=8, expert_weight=3.0
    )
    for q in questions:
        q.category = "medical"
        q.save()
    expert = _member(campaign)
    EvaluatorProfile.objects.create(user=expert.user, skills=["medical"])
    layman = _member(campaign)
    favourite = min(c.pk for c in contestants)
    for owner, wins in ((expert, True), (layman, False)):
        for battle in iter(lambda: battle_next(campaign=campaign, owner=owner), None):  # noqa: B023
            a_is_favourite = battle.answer_a.contestant_id == favourite
            vote_cast(
                code=str(battle.code), owner=owner, outcome="a" if a_is_favourite == wins else "b"
            )
    ratings_recompute(campaign_id=campaign.pk)
    payload = RatingSnapshot.objects.get(scope=campaign_scope(campaign.pk)).payload
    rows = payload["leaderboard"]["contestants"]
    # Without the weight the two evaluators cancel out; with it the expert's choice wins 3:1.
    by_pk = {c.name: c.pk for c in contestants}
    assert by_pk[rows[0]["name"]] == favourite
    assert rows[0]["rating"] - rows[1]["rating"] == pytest.approx(400 * np.log10(3), abs=1.0)


# Acceptable verdicts and the collection page --------------------------------------------------


def test_pairwise_votes_carry_optional_acceptable_verdicts(client: Any) -> None:
    campaign, _c, _q = factories.campaign_with_answers(
        contestants=2, questions=3, ask_acceptable=True
    )
    owner = _member(campaign)
    assert owner.user is not None
    client.force_login(owner.user)
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    page = client.get(f"/b/{battle.code}/").content.decode()
    assert 'name="acceptable_a"' in page
    assert 'name="acceptable_b"' in page
    client.post(
        f"/b/{battle.code}/vote/",
        {"outcome": "both_bad", "acceptable_a": "no", "acceptable_b": "no"},
    )
    vote = Battle.objects.get(pk=battle.pk).vote
    assert (vote.acceptable_a, vote.acceptable_b) == (False, False)
    # Without verdicts the vote stores none; the API takes them as booleans only.
    second = battle_next(campaign=campaign, owner=owner)
    assert second is not None
    client.post(f"/b/{second.code}/vote/", {"outcome": "a"})
    assert Battle.objects.get(pk=second.pk).vote.acceptable_a is None
    _token, key = api_token_create(user=owner.user, name="t")
    third = battle_next(campaign=campaign, owner=owner)
    assert third is not None
    bad = client.post(
        f"/api/v1/battles/{third.code}/vote",
        {"outcome": "tie", "acceptable": {"a": "yes"}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert bad.status_code == 400
    good = client.post(
        f"/api/v1/battles/{third.code}/vote",
        {"outcome": "tie", "acceptable": {"a": True, "b": True}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert good.status_code == 201
    figures = acceptable_figures(campaign=campaign)
    assert (figures.votes, figures.both_acceptable, figures.both_unacceptable) == (2, 1, 1)


def test_campaigns_that_do_not_ask_show_no_acceptable_choice(client: Any) -> None:
    campaign, _c, _q = factories.campaign_with_answers(contestants=2, questions=1)
    owner = _member(campaign)
    assert owner.user is not None
    client.force_login(owner.user)
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    assert "acceptable_a" not in client.get(f"/b/{battle.code}/").content.decode()


def test_collection_page_counts_per_skill(client: Any, staff_user: User) -> None:
    campaign, questions = _routed_campaign(expert_categories=["medical"], expert_languages=["ko"])
    doctor = _member(campaign)
    EvaluatorProfile.objects.create(user=doctor.user, skills=["medical"], languages=["ko"])
    _vote_all(campaign, doctor)
    rows = {(r.kind, r.skill): r for r in skill_counts(campaign=campaign)}
    medical = rows[("category", "medical")]
    assert medical.evaluators == 1
    assert medical.questions == sum(q.category == "medical" for q in questions)
    assert medical.votes == medical.expert_votes == medical.questions
    assert rows[("language", "ko")].questions == 3
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    page = client.get(f"/admin/arena/grade/collection/{campaign.pk}/")
    assert page.status_code == 200
    assert 'data-skill="medical"' in page.content.decode()
    assert client.get("/admin/arena/grade/").status_code == 200


def test_the_recompute_task_stores_the_plan_of_its_new_snapshot() -> None:
    from arena import tasks

    campaign, _c, _q = factories.campaign_with_answers(
        contestants=3, questions=5, sampling=Campaign.Sampling.ACTIVE
    )
    _vote_all(campaign, _member(campaign))
    tasks.recompute_campaign_ratings(campaign_id=campaign.pk)
    weights = PairLoad.objects.filter(campaign=campaign).values_list("weight", flat=True)
    assert len(weights) == 3
    assert sum(weights) == pytest.approx(1.0)
