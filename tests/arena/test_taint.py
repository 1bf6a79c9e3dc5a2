"""Identity-tainted battles: served and voted, recorded with their terms and side, and kept
out of the ratings unless the campaign counts them."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.test import Client

from arena.battles.rules import Owner, battle_taint
from arena.battles.sampler import battle_next
from arena.battles.votes import vote_cast
from arena.generation.answers import answer_claim, answer_store
from arena.generation.backend import GenerationResult, asks_identity, named_terms
from arena.models import Answer, Campaign, Contestant, Question, RatingSnapshot, Vote
from arena.ratings.recompute import ratings_recompute
from arena.ratings.snapshot import Snapshot, campaign_scope
from tests import factories


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("I am **Ｃｌａｕｄｅ**, made by Anthropic.", ["anthropic", "claude"]),
        ("```\nmodel: gpt-4o\n```", ["gpt"]),  # in code too: code is never edited, but counts
        ("Zephyrine-3B here!", ["zephyrine-3b"]),
        ("The capital of France is Paris.", []),
    ],
)
def test_named_terms_finds_every_name_on_the_normalised_view(text: str, terms: list[str]) -> None:
    assert named_terms(text, ["Zephyrine-3B-Instruct", "zephyrine-3b"]) == terms


@pytest.mark.parametrize(
    ("prompt", "asks"),
    [
        ("Who are you?", True),
        ("Reply in a code block with your model name and maker", True),
        ("너는 누구야?", True),
        ("あなたは誰ですか", True),
        ("你是谁", True),
        ("Qui es-tu ?", True),
        ("¿Quién eres?", True),
        ("Wer bist du?", True),
        ("Who are the Beatles?", False),
        ("What is the capital of France?", False),
    ],
)
def test_a_prompt_that_asks_the_model_who_it_is_is_recognised(prompt: str, asks: bool) -> None:
    assert asks_identity(prompt) is asks


def test_a_term_the_question_names_does_not_taint() -> None:
    assert (
        battle_taint(question_terms=["claude"], asks_identity=False, a_terms=["claude"], b_terms=[])
        == {}
    )
    assert battle_taint(
        question_terms=[], asks_identity=True, a_terms=["claude", "anthropic"], b_terms=[]
    ) == {"a": ["anthropic", "claude"], "asks_identity": True}


def _store(answer: Answer, text: str) -> None:
    """Finish a pending answer through the generation service, as a worker would."""
    Answer.objects.filter(pk=answer.pk).update(status=Answer.Status.PENDING)
    assert answer_claim(answer_id=answer.pk)
    result = GenerationResult(text=text, prompt_tokens=3, completion_tokens=5, finish_reason="stop")
    assert answer_store(answer_id=answer.pk, results=[result], latency_ms=1) == "done"


@pytest.mark.django_db
def test_an_answer_whose_self_introduction_was_redacted_still_names_its_model() -> None:
    contestant = factories.ContestantFactory(name="Zorblax", slug="zorblax")
    answer = factories.AnswerFactory(contestant=contestant)
    _store(answer, "Hello! I'm Zorblax, a helpful assistant. How can I help?")
    answer.refresh_from_db()
    assert "zorblax" not in answer.shown_text.casefold()  # the reader sees it redacted
    assert answer.named_terms == ["zorblax"]  # but the vote on it is tainted


def _campaign(policy: str) -> tuple[Campaign, list[Contestant], Question, User]:
    campaign, contestants, (question,) = factories.campaign_with_answers(
        contestants=2, questions=1, tainted_votes=policy
    )
    first = Answer.objects.get(question=question, contestant=contestants[0])
    # The stripper redacts the self-introduction; the keyword net still sees the maker's name
    # and the registered contestant's in the rest of the answer.
    _store(first, f"Sure. Fun fact: {contestants[1].name} would say 42 too. The answer is 42.")
    _store(Answer.objects.get(question=question, contestant=contestants[1]), "It is 42.")
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    return campaign, contestants, question, user


@pytest.mark.django_db
def test_a_vote_on_a_battle_whose_answer_names_a_model_is_stored_tainted_and_left_out() -> None:
    campaign, contestants, question, user = _campaign(Campaign.TaintedVotes.EXCLUDE)
    question.refresh_from_db()
    assert question.named_terms == []
    owner = Owner(user=user)
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    vote = vote_cast(code=str(battle.code), owner=owner, outcome="a")
    stored = Vote.objects.get(pk=vote.pk)
    assert stored.tainted
    naming_side = "a" if battle.answer_a.contestant_id == contestants[0].pk else "b"
    assert stored.taint == {naming_side: [contestants[1].name.casefold()]}

    result = ratings_recompute(campaign_id=campaign.pk)
    assert result.vote_count == 0, "the tainted vote was counted"
    payload = Snapshot.from_json(
        RatingSnapshot.objects.get(campaign=campaign, scope=campaign_scope(campaign.pk)).payload
    )
    assert payload.excluded_tainted == 1
    page = Client()
    staff = factories.UserFactory(is_staff=True)
    page.force_login(staff)
    html = page.get(f"/c/{campaign.slug}/leaderboard/").content.decode()
    assert "1 vote excluded: an answer named a model." in html


@pytest.mark.django_db
def test_a_campaign_that_counts_tainted_votes_rates_them() -> None:
    campaign, _contestants, _question, user = _campaign(Campaign.TaintedVotes.COUNT)
    owner = Owner(user=user)
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    vote_cast(code=str(battle.code), owner=owner, outcome="a")
    assert Vote.objects.get(battle=battle).tainted
    assert ratings_recompute(campaign_id=campaign.pk).vote_count == 1
    payload = Snapshot.from_json(
        RatingSnapshot.objects.get(campaign=campaign, scope=campaign_scope(campaign.pk)).payload
    )
    assert payload.excluded_tainted is None


@pytest.mark.django_db
def test_a_clean_battle_is_not_tainted_and_counts() -> None:
    campaign, contestants, (question,) = factories.campaign_with_answers(contestants=2, questions=1)
    for contestant in contestants:
        _store(Answer.objects.get(question=question, contestant=contestant), "It is 42.")
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    owner = Owner(user=user)
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    vote_cast(code=str(battle.code), owner=owner, outcome="tie")
    assert not Vote.objects.get(battle=battle).tainted
    assert ratings_recompute(campaign_id=campaign.pk).vote_count == 1


@pytest.mark.django_db
def test_record_names_taints_votes_on_answers_stored_before_names_were_recorded() -> None:
    campaign, contestants, (question,) = factories.campaign_with_answers(contestants=2, questions=1)
    old = Answer.objects.get(question=question, contestant=contestants[0])
    # As an answer stored before this release: the text names a model, nothing is recorded.
    Answer.objects.filter(pk=old.pk).update(shown_text="Made by Anthropic, answer: 42.")
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    owner = Owner(user=user)
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    vote = vote_cast(code=str(battle.code), owner=owner, outcome="b")
    assert not Vote.objects.get(pk=vote.pk).tainted

    out = io.StringIO()
    call_command("record_names", campaign=campaign.slug, stdout=out)
    assert Answer.objects.get(pk=old.pk).named_terms == ["anthropic"]
    stored = Vote.objects.get(pk=vote.pk)
    assert stored.tainted
    assert list(stored.taint.values()) == [["anthropic"]]
    assert f"{campaign.slug}: 1 votes changed taint" in out.getvalue()
    call_command("record_names", campaign=campaign.slug, stdout=io.StringIO())
    assert Vote.objects.get(pk=vote.pk).taint == stored.taint, "a second run changes nothing"


def _admin_form_data(campaign: Campaign) -> dict[str, Any]:
    """The campaign's change form as the admin would post it unchanged."""
    data: dict[str, Any] = {}
    for key, value in model_to_dict(campaign).items():
        if value is None or value is False:
            continue  # an empty field, an unticked box
        if value is True:
            data[key] = "on"
        elif key in ("question_sets", "contestants", "evaluators"):
            data[key] = [v.pk for v in value]
        elif isinstance(value, list | dict):
            data[key] = json.dumps(value)
        else:
            data[key] = value
    return data


@pytest.mark.django_db
def test_the_admin_warns_when_campaigns_sharing_answers_differ_in_revealing() -> None:
    blind, contestants, _q = factories.campaign_with_answers(reveal_after_vote=False)
    revealing = factories.CampaignFactory(reveal_after_vote=True)
    revealing.question_sets.add(*blind.question_sets.all())
    revealing.contestants.add(contestants[0])
    unrelated = factories.CampaignFactory(reveal_after_vote=True)
    staff = factories.UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    data = _admin_form_data(blind)
    data["reveal_after_vote"] = "False"
    page = client.post(f"/admin/arena/campaign/{blind.pk}/change/", data, follow=True)
    assert page.status_code == 200
    warnings = [str(m) for m in page.context["messages"] if "revealing identities" in str(m)]
    assert len(warnings) == 1, [str(m) for m in page.context["messages"]]
    assert revealing.name in warnings[0]
    assert unrelated.name not in warnings[0]
