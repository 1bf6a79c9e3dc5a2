from __future__ import annotations

import datetime as dt
from typing import Any

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from arena import models


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @classmethod
    def _after_postgeneration(cls, instance: User, create: bool, results: Any = None) -> None:
        if create:
            instance.save()


class ContestantFactory(factory.django.DjangoModelFactory[models.Contestant]):
    class Meta:
        model = models.Contestant

    name = factory.Sequence(lambda n: f"Zephyrine-{n}B-Instruct")
    slug = factory.Sequence(lambda n: f"zephyrine-{n}b")
    family = "Zephyrine"
    backend = models.Contestant.Backend.VLLM
    model = factory.Sequence(lambda n: f"/models/zephyrine-{n}b")


class QuestionSetFactory(factory.django.DjangoModelFactory[models.QuestionSet]):
    class Meta:
        model = models.QuestionSet

    name = factory.Sequence(lambda n: f"Set {n}")


class QuestionFactory(factory.django.DjangoModelFactory[models.Question]):
    class Meta:
        model = models.Question

    question_set = factory.SubFactory(QuestionSetFactory)
    external_id = factory.Sequence(lambda n: f"q{n}")
    text = factory.Sequence(lambda n: f"Question number {n}?")
    language = "en"


class AnswerFactory(factory.django.DjangoModelFactory[models.Answer]):
    class Meta:
        model = models.Answer

    question = factory.SubFactory(QuestionFactory)
    contestant = factory.SubFactory(ContestantFactory)
    config_hash = factory.LazyAttribute(lambda o: o.contestant.config_hash)
    status = models.Answer.Status.DONE
    raw_text = factory.Sequence(lambda n: f"Answer text {n}.")
    shown_text = factory.LazyAttribute(lambda o: o.raw_text)
    completion_tokens = 5
    prompt_tokens = 7


class CampaignFactory(factory.django.DjangoModelFactory[models.Campaign]):
    class Meta:
        model = models.Campaign
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")


class BattleFactory(factory.django.DjangoModelFactory[models.Battle]):
    class Meta:
        model = models.Battle

    campaign = factory.SubFactory(CampaignFactory)
    evaluator = factory.SubFactory(UserFactory)
    question = factory.SubFactory(QuestionFactory)
    answer_a = factory.SubFactory(AnswerFactory, question=factory.SelfAttribute("..question"))
    answer_b = factory.SubFactory(AnswerFactory, question=factory.SelfAttribute("..question"))
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=1))


def campaign_with_answers(
    *, contestants: int = 3, questions: int = 4, **campaign_fields: Any
) -> tuple[models.Campaign, list[models.Contestant], list[models.Question]]:
    """A campaign over one question set where every contestant has a done answer to every
    question."""
    campaign = CampaignFactory(**campaign_fields)
    question_set = QuestionSetFactory()
    qs = [QuestionFactory(question_set=question_set) for _ in range(questions)]
    cs = [ContestantFactory() for _ in range(contestants)]
    for q in qs:
        for c in cs:
            AnswerFactory(question=q, contestant=c, shown_text=f"Reply to {q.external_id}.")
    campaign.question_sets.add(question_set)
    campaign.contestants.add(*cs)
    return campaign, cs, qs


class JudgeFactory(factory.django.DjangoModelFactory[models.Judge]):
    class Meta:
        model = models.Judge

    name = factory.Sequence(lambda n: f"Judge {n}")
    slug = factory.Sequence(lambda n: f"judge-{n}")
    serving = factory.SubFactory(ContestantFactory)
