from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from arena.models import Answer, Vote
from tests import factories

pytestmark = pytest.mark.django_db


def _vote_for(battle: factories.models.Battle, outcome: str = "a") -> Vote:
    return Vote.objects.create(
        battle=battle,
        campaign=battle.campaign,
        evaluator=battle.evaluator,
        question=battle.question,
        contestant_a=battle.answer_a.contestant,
        contestant_b=battle.answer_b.contestant,
        outcome=outcome,
    )


def test_second_vote_on_a_battle_is_rejected_by_the_database() -> None:
    battle = factories.BattleFactory()
    _vote_for(battle, "a")
    with pytest.raises(IntegrityError), transaction.atomic():
        _vote_for(battle, "b")
    assert Vote.objects.filter(battle=battle).count() == 1
    assert Vote.objects.get(battle=battle).outcome == "a"


def test_duplicate_answer_for_question_contestant_and_config_is_rejected() -> None:
    answer = factories.AnswerFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Answer.objects.create(
            question=answer.question, contestant=answer.contestant, config_hash=answer.config_hash
        )
    assert Answer.objects.count() == 1


def test_answer_with_another_config_is_a_new_row() -> None:
    answer = factories.AnswerFactory()
    contestant = answer.contestant
    contestant.temperature = 0.1
    contestant.save()
    assert contestant.config_hash != answer.config_hash
    Answer.objects.create(
        question=answer.question, contestant=contestant, config_hash=contestant.config_hash
    )
    assert Answer.objects.count() == 2


def test_battle_cannot_put_one_answer_on_both_sides() -> None:
    battle = factories.BattleFactory()
    battle.answer_b = battle.answer_a
    with pytest.raises(IntegrityError), transaction.atomic():
        battle.save()


def test_vote_outcome_outside_the_four_choices_is_rejected() -> None:
    battle = factories.BattleFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        _vote_for(battle, "c")


def test_failed_answer_needs_a_reason() -> None:
    answer = factories.AnswerFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Answer.objects.filter(pk=answer.pk).update(status="failed", failure_reason="")


def test_external_id_is_unique_within_a_set_only() -> None:
    question = factories.QuestionFactory(external_id="x1")
    factories.QuestionFactory(external_id="x1")  # another set: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.QuestionFactory(external_id="x1", question_set=question.question_set)


def test_contestant_sampling_ranges_are_enforced() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ContestantFactory(top_p=1.5)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ContestantFactory(backend="openai", base_url="")
