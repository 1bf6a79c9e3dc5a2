from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from arena.battles.demo import SLUG, arena_demo_bootstrap
from arena.models import Campaign, Vote
from arena.ratings.history import rating_history

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _few_rounds(settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 20


def test_the_sample_campaign_is_rated_with_a_history_and_says_where_it_comes_from(
    client: Client,
) -> None:
    demo = arena_demo_bootstrap(sample=600)

    campaign = Campaign.objects.get(slug=SLUG)
    assert demo.created
    assert Vote.objects.filter(campaign=campaign).count() == 600
    assert "Chatbot Arena" in campaign.description
    assert "BSD" in campaign.description
    assert "leaderbot" in campaign.description
    points = rating_history(campaign=campaign)
    assert len(points) == 5
    assert [p.vote_count for p in points] == sorted(p.vote_count for p in points)
    assert points[0].computed_at < points[-1].computed_at
    page = client.get(f"/c/{SLUG}/leaderboard/").content.decode()
    assert 'class="lb-history"' in page
    assert "chatgpt-4o-latest" in page or "gpt-4o-2024-05-13" in page


def test_loading_the_sample_again_changes_nothing() -> None:
    call_command("load_arena_sample", "--sample", "300", stdout=None)
    before = Vote.objects.count()

    again = arena_demo_bootstrap(sample=300)

    assert not again.created
    assert Vote.objects.count() == before == 300
