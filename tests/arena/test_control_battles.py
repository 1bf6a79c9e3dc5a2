"""Gold, repeat and overlap battles: served through the one battle path, indistinguishable to
the evaluator, never counted (gold, repeat) or counted as usual (overlap), and measured."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db.models import Q
from django.test import Client
from django.urls import reverse

from arena.battles.rules import Owner
from arena.battles.sampler import battle_next
from arena.battles.votes import vote_cast
from arena.models import Battle, Campaign, GoldItem, Vote
from arena.quality.control import GoldImportError, gold_items_import
from arena.quality.read import evaluator_quality_list
from arena.ratings.store import counted_votes
from tests import factories

pytestmark = pytest.mark.django_db


def _campaign(questions: int = 12, **fields: Any) -> tuple[Campaign, list[Any], list[Any]]:
    return factories.campaign_with_answers(contestants=3, questions=questions, **fields)


def _gold(campaign: Campaign, question: Any, better: Any, worse: Any) -> GoldItem:
    answers = {a.contestant_id: a for a in question.answers.all()}
    return GoldItem.objects.create(
        campaign=campaign, question=question, better=answers[better.pk], worse=answers[worse.pk]
    )


def _set(campaign: Campaign, **rates: float) -> None:
    # Straight to the row: the form's validators cap rates at 0.5, the tests want certainty.
    Campaign.objects.filter(pk=campaign.pk).update(**rates)
    campaign.refresh_from_db()


def _vote(battle: Battle, owner: Owner, outcome: str) -> Vote:
    return vote_cast(code=str(battle.code), owner=owner, outcome=outcome)


def test_gold_battles_are_served_never_counted_and_measure_accuracy() -> None:
    campaign, cs, qs = _campaign()
    item = _gold(campaign, qs[0], better=cs[0], worse=cs[1])
    _set(campaign, gold_rate=1.0)
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    owner = Owner(user=user)
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    battle.refresh_from_db()
    assert (battle.kind, battle.gold_id, battle.question_id) == ("gold", item.pk, qs[0].pk)
    better_side = "a" if battle.answer_a_id == item.better_id else "b"
    vote = _vote(battle, owner, better_side)
    vote.refresh_from_db()
    assert vote.control
    assert not counted_votes(campaign_id=campaign.pk, exclude_tainted=True).filter(pk=vote.pk)
    # The item's question is seen now: no second gold battle on it, an ordinary one instead.
    second = battle_next(campaign=campaign, owner=owner)
    assert second is not None
    assert second.kind == Battle.Kind.REGULAR
    _vote(second, owner, "tie")
    (row,) = evaluator_quality_list(campaign=campaign, agreement_rounds=0).evaluators
    assert (row.gold.successes, row.gold.trials) == (1, 1)


def test_a_gold_battle_looks_like_any_other_to_the_evaluator() -> None:
    campaign, cs, qs = _campaign()
    _gold(campaign, qs[0], better=cs[0], worse=cs[1])
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    owner = Owner(user=user)
    _set(campaign, gold_rate=1.0)
    gold = battle_next(campaign=campaign, owner=owner)
    assert gold is not None
    assert gold.kind == "gold"
    client = Client()
    client.force_login(user)
    gold_page = client.get(reverse("battle", args=[gold.code])).content.decode()
    _vote(gold, owner, "a")
    _set(campaign, gold_rate=0.0)
    plain = battle_next(campaign=campaign, owner=owner)
    assert plain is not None
    assert plain.kind == "regular"
    plain_page = client.get(reverse("battle", args=[plain.code])).content.decode()
    for page in (gold_page, plain_page):
        assert "gold" not in page.lower()
    # Same template, same structure: only the codes, texts and question differ.
    assert gold_page.count("<") == plain_page.count("<")


def test_repeat_battles_swap_sides_and_measure_self_agreement() -> None:
    campaign, _cs, _qs = _campaign(reveal_after_vote=False)
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    owner = Owner(user=user)
    first = []
    for _ in range(7):
        battle = battle_next(campaign=campaign, owner=owner)
        assert battle is not None
        first.append(battle)
        _vote(battle, owner, "a")
    _set(campaign, repeat_rate=1.0)
    repeat = battle_next(campaign=campaign, owner=owner)
    assert repeat is not None
    assert repeat.kind == "repeat"
    source = Battle.objects.get(pk=repeat.source_id)
    assert source in first[:2]  # not one of the last five
    assert (repeat.answer_a_id, repeat.answer_b_id) == (source.answer_b_id, source.answer_a_id)
    vote = _vote(repeat, owner, "b")  # the same answer as before, now on side b
    vote.refresh_from_db()
    assert vote.control
    (row,) = evaluator_quality_list(campaign=campaign, agreement_rounds=0).evaluators
    assert (row.self_agreement.successes, row.self_agreement.trials) == (1, 1)


def test_a_campaign_that_reveals_identities_serves_no_repeats() -> None:
    # After a reveal the evaluator would know the names behind a battle seen again.
    campaign, _cs, _qs = _campaign()
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    owner = Owner(user=user)
    for _ in range(7):
        battle = battle_next(campaign=campaign, owner=owner)
        assert battle is not None
        _vote(battle, owner, "a")
    _set(campaign, repeat_rate=1.0)
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    assert battle.kind == "regular"


def test_overlap_battles_give_an_inter_rater_agreement() -> None:
    campaign, _cs, _qs = _campaign(questions=6)
    users = [factories.UserFactory() for _ in range(3)]
    campaign.evaluators.add(*users)
    for battle_round in range(6):
        battle = battle_next(campaign=campaign, owner=Owner(user=users[0]))
        assert battle is not None
        _vote(battle, Owner(user=users[0]), "a" if battle_round % 2 else "tie")
    _set(campaign, overlap_rate=1.0)
    for user in users[1:]:
        for _ in range(6):
            battle = battle_next(campaign=campaign, owner=Owner(user=user))
            if battle is None:
                break
            assert battle.kind == "overlap"
            source = Battle.objects.get(pk=battle.source_id)
            assert {battle.answer_a_id, battle.answer_b_id} == {
                source.answer_a_id,
                source.answer_b_id,
            }
            # Agree with the first rater about which answer was better.
            prior = Vote.objects.get(battle=source)
            if prior.outcome == "tie":
                outcome = "tie"
            else:
                winner = source.answer_a_id if prior.outcome == "a" else source.answer_b_id
                outcome = "a" if battle.answer_a_id == winner else "b"
            vote = _vote(battle, Owner(user=user), outcome)
            vote.refresh_from_db()
            assert not vote.control  # overlap votes count
    report = evaluator_quality_list(campaign=campaign, agreement_rounds=50)
    figure = report.agreement[0]
    assert figure.scope == "campaign"
    assert figure.alpha.items == 6
    assert figure.alpha.alpha == pytest.approx(1.0)


def test_a_gold_file_is_checked_whole_before_anything_is_written() -> None:
    campaign, cs, qs = _campaign(questions=2)
    qset = qs[0].question_set.name
    good = {
        "question_set": qset,
        "question_id": qs[0].external_id,
        "better": cs[0].slug,
        "worse": cs[1].slug,
    }
    bad = {**good, "question_id": "no-such-question"}
    with pytest.raises(GoldImportError) as caught:
        gold_items_import(
            campaign=campaign, text="\n".join(json.dumps(r) for r in (good, bad, {"x": 1}))
        )
    assert len(caught.value.errors) == 2
    assert not GoldItem.objects.filter(campaign=campaign).exists()
    (made,) = gold_items_import(campaign=campaign, text=json.dumps(good))
    assert made.better.contestant_id == cs[0].pk
    assert GoldItem.objects.filter(Q(campaign=campaign)).count() == 1
