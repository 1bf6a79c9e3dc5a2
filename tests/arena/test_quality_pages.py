"""The admin's vote-quality page and the leaderboard's account of exclusions."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from arena.models import Exclusion, Vote
from arena.quality import exclusions
from arena.ranking.crowds import crowd_simulate
from arena.ratings.recompute import ratings_recompute
from tests import factories
from tests.arena.test_quality import _load

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign() -> object:
    crowd = crowd_simulate(
        np.linspace(1.0, -1.0, 6),
        rng=np.random.default_rng(2),
        honest=12,
        random=0,
        left=1,
        shills=1,
        votes_per_voter=40,
    )
    return _load(crowd)


def test_quality_page_lists_evaluators_and_excludes_with_a_reason(
    client: Client, staff_user: object, campaign: object
) -> None:
    client.force_login(staff_user)  # type: ignore[arg-type]
    url = reverse("admin:arena_campaign_quality", args=[campaign.pk])  # type: ignore[attr-defined]
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Krippendorff" in html
    assert "side A won" in html  # the always-left clicker's reason
    name = Vote.objects.filter(campaign=campaign).values_list("evaluator__username", flat=True)[0]
    refused = client.post(url, {"evaluator": name, "reason": ""}, follow=True)
    assert "Give a reason" in refused.content.decode()
    assert not Exclusion.objects.exists()
    client.post(url, {"evaluator": name, "reason": "careless"})
    exclusion = Exclusion.objects.get()
    assert (exclusion.label, exclusion.reason, exclusion.created_by) == (
        name,
        "careless",
        staff_user,
    )


def test_quality_page_needs_the_vote_permission(client: Client, campaign: object) -> None:
    staff = factories.UserFactory(is_staff=True)
    client.force_login(staff)
    url = reverse("admin:arena_campaign_quality", args=[campaign.pk])  # type: ignore[attr-defined]
    assert client.get(url).status_code == 403


def test_leaderboard_says_what_exclusions_left_out_and_shows_everything(
    client: Client, staff_user: object, campaign: object
) -> None:
    name = Vote.objects.filter(campaign=campaign).values_list("evaluator__username", flat=True)[0]
    exclusions.exclusion_create(campaign=campaign, evaluator=name, reason="careless", by=None)  # type: ignore[arg-type]
    ratings_recompute(campaign_id=campaign.pk)  # type: ignore[attr-defined]
    client.force_login(staff_user)  # type: ignore[arg-type]
    url = reverse("leaderboard", args=[campaign.slug])  # type: ignore[attr-defined]
    html = client.get(url).content.decode()
    assert 'id="excluded-quality"' in html
    assert "40 votes from 1 evaluator(s) left out by exclusions." in html
    assert "An admin&#x27;s decision" in html or "An admin's decision" in html
    assert "?everything=1" in html
    everything = client.get(url, {"everything": "1"}).content.decode()
    assert "Showing everything" in everything
    assert 'id="show-counted"' in everything


def test_admin_excludes_chosen_votes_and_revokes_with_reasons(
    client: Client, staff_user: object, campaign: object
) -> None:
    client.force_login(staff_user)  # type: ignore[arg-type]
    chosen = [
        str(pk) for pk in Vote.objects.filter(campaign=campaign).values_list("pk", flat=True)[:4]
    ]
    changelist = reverse("admin:arena_vote_changelist")
    form = client.post(changelist, {"action": "exclude_votes", "_selected_action": chosen})
    assert form.status_code == 200
    assert "Reason (kept in the audit trail)" in form.content.decode()
    assert not Exclusion.objects.exists()
    client.post(
        changelist,
        {"action": "exclude_votes", "_selected_action": chosen, "reason": "duplicate session"},
    )
    exclusion = Exclusion.objects.get()
    assert sorted(str(pk) for pk in exclusion.votes.values_list("pk", flat=True)) == sorted(chosen)
    assert Vote.objects.filter(excluded=True).count() == 4
    client.post(
        reverse("admin:arena_exclusion_changelist"),
        {"action": "revoke", "_selected_action": [str(exclusion.pk)], "reason": "my mistake"},
    )
    exclusion.refresh_from_db()
    assert exclusion.revoked_at is not None
    assert exclusion.revoke_reason == "my mistake"
    assert not Vote.objects.filter(excluded=True).exists()
    # The audit trail cannot be deleted from the admin.
    delete = reverse("admin:arena_exclusion_delete", args=[exclusion.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Exclusion.objects.filter(pk=exclusion.pk).exists()


def test_api_serves_the_quality_report_to_export_tokens(client: Client, campaign: object) -> None:
    from arena.accounts.tokens import api_token_create

    staff = factories.UserFactory(is_staff=True, is_superuser=True)
    _token, key = api_token_create(user=staff, name="quality", scopes=["export"])
    url = reverse("api:evaluator_quality", args=[campaign.slug])  # type: ignore[attr-defined]
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    rows = response.json()["evaluators"]
    assert len(rows) == 14
    assert {"evaluator", "votes", "flagged", "reasons"} <= rows[0].keys()
    plain = factories.UserFactory()
    _token, other = api_token_create(user=plain, name="q", scopes=["evaluate"])
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {other}").status_code == 403
