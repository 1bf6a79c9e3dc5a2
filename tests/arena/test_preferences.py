from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest
from django.core.management import call_command
from django.utils import timezone

from arena.battles.preferences import COLUMNS, evaluator_hash
from arena.models import Answer, Battle, Campaign, Contestant, Question, Vote
from tests import factories

pytestmark = pytest.mark.django_db


def vote(
    campaign: Campaign,
    question: Question,
    a: Answer,
    b: Answer,
    outcome: str,
    *,
    evaluator: Any = None,
    tainted: bool = False,
) -> Vote:
    battle = Battle.objects.create(
        campaign=campaign,
        evaluator=evaluator,
        session_key="" if evaluator else "anon-session",
        question=question,
        answer_a=a,
        answer_b=b,
        state=Battle.State.VOTED,
        expires_at=timezone.now(),
    )
    return Vote.objects.create(
        battle=battle,
        campaign=campaign,
        evaluator=evaluator,
        question=question,
        contestant_a=a.contestant,
        contestant_b=b.contestant,
        outcome=outcome,
        tainted=tainted,
    )


@pytest.fixture
def campaign() -> Campaign:
    """Four votes: a decisive single-turn one, a decisive two-turn one, a tie and a tainted
    one; the two-turn battle's second reply of side B answers the user's follow-up."""
    campaign = factories.CampaignFactory(slug="prefs")
    one, two = factories.ContestantFactory(name="alpha"), factories.ContestantFactory(name="beta")
    user = factories.UserFactory()
    q1 = factories.QuestionFactory(text="What is 2+2?", category="math", language="en")
    q2 = factories.QuestionFactory(text="Name a colour.", turns=["Another one?"], language="en")
    a1 = factories.AnswerFactory(question=q1, contestant=one, shown_text="4")
    b1 = factories.AnswerFactory(question=q1, contestant=two, shown_text="5")
    a2 = factories.AnswerFactory(
        question=q2,
        contestant=one,
        shown_text="Red.",
        followups=[{"raw": "Blue.", "shown": "Blue.", "report": {}}],
    )
    b2 = factories.AnswerFactory(
        question=q2,
        contestant=two,
        shown_text="Green.",
        followups=[{"raw": "Teal.", "shown": "Teal.", "report": {}}],
    )
    vote(campaign, q1, a1, b1, "a", evaluator=user)
    vote(campaign, q2, a2, b2, "b")
    vote(campaign, q1, b1, a1, "tie", evaluator=user)
    vote(campaign, q1, b1, a1, "b", tainted=True)
    return campaign


def export(tmp_path: Path, fmt: str, *extra: str) -> Path:
    target = tmp_path / f"prefs.{fmt}"
    call_command("export_preferences", "--campaign", "prefs", "--format", fmt, "-o", target, *extra)
    return target


def is_conversation(messages: Any) -> bool:
    """TRL's conversational form: a list of {"role", "content"} messages."""
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(set(m) == {"role", "content"} for m in messages)
    )


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_preference_files_load_with_datasets_in_the_dpo_trainers_columns(
    tmp_path: Path, campaign: Campaign, fmt: str
) -> None:
    path = export(tmp_path, fmt)

    loader = "json" if fmt == "jsonl" else "parquet"
    data = datasets.load_dataset(
        loader, data_files=str(path), split="train", cache_dir=str(tmp_path / "hf")
    )

    assert list(data.column_names) == list(COLUMNS)
    assert data.num_rows == 2  # the tie and the tainted vote are left out
    rows = list(data)
    for row in rows:
        for column in ("prompt", "chosen", "rejected"):
            assert is_conversation(row[column])
        assert row["prompt"][0]["role"] == "user"
        assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
        assert row["tie"] is False
        assert row["excluded"] is False
    single, multi = rows
    assert single["prompt"] == [{"role": "user", "content": "What is 2+2?"}]
    assert [m["content"] for m in single["chosen"]] == ["4"]
    assert [m["content"] for m in single["rejected"]] == ["5"]
    assert (single["outcome"], single["category"], single["chosen_model"]) == ("a", "math", "alpha")
    # Side B won the two-turn battle: its whole conversation is the chosen one.
    assert [(m["role"], m["content"]) for m in multi["chosen"]] == [
        ("assistant", "Green."),
        ("user", "Another one?"),
        ("assistant", "Teal."),
    ]
    assert [m["content"] for m in multi["rejected"]] == ["Red.", "Another one?", "Blue."]
    assert (multi["turns"], multi["rejected_model"]) == (2, "alpha")
    user = Vote.objects.filter(campaign=campaign, outcome="a").get().evaluator
    assert single["evaluator"] == evaluator_hash(
        campaign_id=campaign.pk, user_id=user.pk, session_key=""
    )
    assert len(single["evaluator"]) == 20
    assert user.username not in json.dumps(rows, default=str)


def test_ties_and_excluded_votes_are_kept_as_flags_on_request(
    tmp_path: Path, campaign: Campaign
) -> None:
    path = export(tmp_path, "parquet", "--ties", "flag", "--include-excluded")

    data = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf")
    )

    flags = sorted((r["outcome"], r["tie"], r["excluded"]) for r in data)
    assert flags == [
        ("a", False, False),
        ("b", False, False),
        ("b", False, True),
        ("tie", True, False),
    ]
    tie = next(r for r in data if r["tie"])
    # A tie keeps side A as "chosen": the flag, not the column, carries the outcome.
    assert [m["content"] for m in tie["chosen"]] == ["5"]


def test_votes_on_answers_without_text_are_left_out(tmp_path: Path) -> None:
    campaign = factories.CampaignFactory(slug="prefs")
    q = factories.QuestionFactory()
    a, b = (factories.AnswerFactory(question=q, shown_text="") for _ in range(2))
    vote(campaign, q, a, b, "a")

    path = export(tmp_path, "jsonl")

    assert path.read_text() == ""


def test_an_unknown_campaign_is_refused_and_no_file_is_left(tmp_path: Path) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no campaign"):
        export(tmp_path, "jsonl")
    assert list(tmp_path.iterdir()) == []
    assert Contestant.objects.count() == 0


def test_the_api_serves_preferences_to_an_export_token_only(
    client: Any, tmp_path: Path, campaign: Campaign
) -> None:
    from arena.accounts.tokens import api_token_create

    staff = factories.UserFactory(is_staff=True, is_superuser=True)
    _token, key = api_token_create(user=staff, name="t", scopes=["export"])
    url = f"/api/v1/campaigns/{campaign.slug}/preferences"

    response = client.get(url, {"format": "parquet"}, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 200
    path = tmp_path / "api.parquet"
    path.write_bytes(response.content)
    data = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert data.num_rows == 2
    bad = client.get(url, {"ties": "maybe"}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert bad.status_code == 400
    _t, evaluate_only = api_token_create(user=staff, name="e", scopes=["evaluate"])
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {evaluate_only}").status_code == 403


def test_the_admin_action_downloads_one_campaigns_preferences(
    client: Any, campaign: Campaign
) -> None:
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))

    response = client.post(
        "/admin/arena/campaign/",
        {"action": "export_preferences_jsonl", "_selected_action": [campaign.pk]},
    )

    assert response.status_code == 200
    assert "prefs-preferences.jsonl" in response["Content-Disposition"]
    rows = [json.loads(line) for line in response.content.decode().splitlines()]
    assert [r["outcome"] for r in rows] == ["a", "b"]
