"""Query budgets of the evaluator API's hot paths, the two requests benchmarks/load.py drives:
next battle and vote. A query added to either path fails here before it shows up under load.

Counts include the SAVEPOINT/RELEASE pair that pytest-django's enclosing transaction turns
each `transaction.atomic` into (BEGIN/COMMIT in production, which are not counted there).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from arena.accounts.tokens import api_token_create
from arena.models import Campaign, Vote
from tests import factories

pytestmark = pytest.mark.django_db

MaxQueries = Callable[[int], AbstractContextManager[Any]]

# Token lookup + last-used stamp (2), campaign access (1), savepoint (1), open battle (1),
# contestants (1), question range for the pivot (1; kept a minute per process), pair loads
# (1), the sampler's pick-and-lock (1, + 1 when it wraps round), insert the battle (1), bump
# the pair's load (1), release (1), the battle as the evaluator sees it (1).
NEXT_BUDGET = 14
# Token (2), campaign access (1), savepoint (1), open battle (1), release (1), the battle (1).
NEXT_OPEN_BUDGET = 7
# Token (2), savepoint (1), the owner's vote lock (1), lock the battle with the rate limit and
# the reveal (1), insert the vote (1), mark the battle voted (1), release (1).
VOTE_BUDGET = 8


@pytest.fixture
def api(evaluator: User) -> tuple[Campaign, Client, dict[str, str]]:
    # Enough questions that the sampler's random pivot lands both early and late, so both
    # its plain and its wrap-round queries run over the rounds below.
    campaign, _contestants, _questions = factories.campaign_with_answers(
        contestants=5, questions=30
    )
    campaign.evaluators.add(evaluator)
    _token, key = api_token_create(user=evaluator, name="budget")
    return campaign, Client(), {"Authorization": f"Bearer {key}"}


def _next(client: Client, campaign: Campaign, bearer: dict[str, str]) -> str:
    response = client.post(reverse("api:campaign_next", args=[campaign.slug]), headers=bearer)
    assert response.status_code == 200
    battle = response.json()["battle"]
    assert battle is not None
    return str(battle["code"])


def _vote(client: Client, code: str, bearer: dict[str, str]) -> None:
    response = client.post(
        reverse("api:battle_vote", args=[code]),
        data=json.dumps({"outcome": "a"}),
        content_type="application/json",
        headers=bearer,
    )
    assert response.status_code == 201, response.content
    assert response.json()["reveal"]["a"]


def test_next_battle_request_stays_within_its_query_budget(
    api: tuple[Campaign, Client, dict[str, str]], django_assert_max_num_queries: MaxQueries
) -> None:
    campaign, client, bearer = api
    for _round in range(8):
        with django_assert_max_num_queries(NEXT_BUDGET):
            code = _next(client, campaign, bearer)
        _vote(client, code, bearer)


def test_next_battle_request_for_an_open_battle_stays_within_its_query_budget(
    api: tuple[Campaign, Client, dict[str, str]], django_assert_max_num_queries: MaxQueries
) -> None:
    campaign, client, bearer = api
    code = _next(client, campaign, bearer)
    with django_assert_max_num_queries(NEXT_OPEN_BUDGET):
        assert _next(client, campaign, bearer) == code


def test_vote_request_stays_within_its_query_budget(
    api: tuple[Campaign, Client, dict[str, str]], django_assert_max_num_queries: MaxQueries
) -> None:
    campaign, client, bearer = api
    for _round in range(8):
        code = _next(client, campaign, bearer)
        with django_assert_max_num_queries(VOTE_BUDGET):
            _vote(client, code, bearer)
    assert Vote.objects.filter(campaign=campaign).count() == 8
