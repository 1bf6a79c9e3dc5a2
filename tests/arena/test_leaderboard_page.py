from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User
from django.test import Client
from django.urls import reverse

from arena.models import Campaign, Contestant, RatingSnapshot
from arena.ratings.read import EXPORT_COLUMNS
from arena.ratings.recompute import ratings_recompute
from arena.ratings.snapshot import campaign_scope, scope_key
from arena.routing import websocket_urlpatterns
from tests import factories
from tests.arena.test_ratings_service import ROUND_ROBIN, cast_votes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _few_rounds(settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 20


def rated_campaign(**fields: Any) -> tuple[Campaign, list[Contestant]]:
    campaign, cs, questions = factories.campaign_with_answers(contestants=3, questions=1, **fields)
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    ratings_recompute(campaign_id=campaign.pk)
    return campaign, cs


def page(client: Client, campaign: Campaign, **query: str) -> Any:
    return client.get(reverse("leaderboard", args=[campaign.slug]), query)


def test_public_leaderboard_renders_for_anonymous_visitors(client: Client) -> None:
    campaign, cs = rated_campaign(leaderboard_public=True, public_refresh="live")
    response = page(client, campaign)
    assert response.status_code == 200
    html = response.content.decode()
    for c in cs:
        assert c.name in html
    assert "<svg" in html  # the interval plot, drawn on the server
    assert html.count('class="lb-matrix"') == 2  # win rates and battle counts
    assert "Position bias" in html
    assert "/ws/leaderboard/" not in html  # the socket URL is built by the script
    assert f'data-campaign="{campaign.pk}"' in html
    assert "leaderboard.js" in html
    assert "https://" not in html  # nothing loaded from the internet


def test_team_only_leaderboard_sends_anonymous_visitors_to_log_in(client: Client) -> None:
    campaign, _cs = rated_campaign()
    for name in ("leaderboard", "leaderboard_csv", "leaderboard_json"):
        response = client.get(reverse(name, args=[campaign.slug]))
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login"))


def test_team_only_leaderboard_is_refused_to_evaluators_and_shown_to_staff(
    client: Client, staff_user: User
) -> None:
    campaign, cs = rated_campaign()
    evaluator = factories.UserFactory()
    campaign.evaluators.add(evaluator)
    client.force_login(evaluator)
    assert page(client, campaign).status_code == 403
    assert client.get(reverse("leaderboard_csv", args=[campaign.slug])).status_code == 403
    client.force_login(staff_user)
    response = page(client, campaign)
    assert response.status_code == 200
    assert cs[0].name in response.content.decode()


def test_unknown_campaign_or_scope_is_not_found(client: Client) -> None:
    campaign, _cs = rated_campaign(leaderboard_public=True, public_refresh="live")
    assert client.get(reverse("leaderboard", args=["nope"])).status_code == 404
    assert page(client, campaign, scope="campaign:999999").status_code == 404
    assert page(client, campaign, scope="rubbish").status_code == 404
    other, _ = rated_campaign(leaderboard_public=True, public_refresh="live")
    # A scope of another campaign is not shown through this one.
    assert page(client, campaign, scope=campaign_scope(other.pk)).status_code == 404


def test_campaign_without_snapshot_or_votes_says_so(client: Client) -> None:
    campaign = factories.CampaignFactory(leaderboard_public=True, public_refresh="live")
    assert "have not been computed" in page(client, campaign).content.decode()
    ratings_recompute(campaign_id=campaign.pk)
    assert "No votes yet." in page(client, campaign).content.decode()


def test_slices_and_style_view_are_offered_and_shown(client: Client) -> None:
    campaign, _cs = rated_campaign(leaderboard_public=True, public_refresh="live")
    html = page(client, campaign).content.decode()
    language = scope_key(campaign.pk, "language", "en")
    assert f'value="{language}"' in html
    assert "Last 7 days" in html
    sliced = page(client, campaign, scope=language, view="style").content.decode()
    assert "Language: en" in sliced
    assert "Style-controlled rating" in sliced
    assert "Raw rating" in sliced


def test_several_pieces_of_the_comparison_graph_are_pointed_out(client: Client) -> None:
    campaign, cs, questions = factories.campaign_with_answers(
        contestants=4, questions=1, leaderboard_public=True, public_refresh="live"
    )
    cast_votes(campaign, questions[0], cs, [(0, 1, "a", 6), (1, 0, "a", 3)])
    cast_votes(campaign, questions[0], cs, [(2, 3, "a", 6), (3, 2, "tie", 3)])
    ratings_recompute(campaign_id=campaign.pk)
    html = page(client, campaign).content.decode()
    assert "2 separate groups" in html


def test_csv_export_holds_the_table(client: Client) -> None:
    campaign, cs = rated_campaign(leaderboard_public=True, public_refresh="live")
    Contestant.objects.filter(pk=cs[0].pk).update(name="=HYPERLINK(1)")
    ratings_recompute(campaign_id=campaign.pk)
    response = client.get(reverse("leaderboard_csv", args=[campaign.slug]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    stored = RatingSnapshot.objects.filter(scope=campaign_scope(campaign.pk)).latest().payload
    expected = {c["name"]: c for c in stored["leaderboard"]["contestants"]}
    assert len(rows) == 3
    for row in rows:
        name = row["contestant"]
        assert not name.startswith("=")  # spreadsheet formulas are defused
        source = expected[name.removeprefix("'")]
        assert float(row["rating"]) == pytest.approx(source["rating"], abs=0.01)
        assert int(row["votes"]) == source["votes"]
        assert row["style_rating"] != ""


def test_json_export_holds_the_stored_snapshot(client: Client) -> None:
    campaign, _cs = rated_campaign(leaderboard_public=True, public_refresh="live")
    scope = scope_key(campaign.pk, "days", "7")
    data = client.get(reverse("leaderboard_json", args=[campaign.slug]), {"scope": scope}).json()
    stored = RatingSnapshot.objects.get(scope=scope)
    assert data["scope"] == scope
    assert data["vote_count"] == stored.vote_count == sum(n for *_x, n in ROUND_ROBIN)
    assert data["snapshot"] == stored.payload


def test_the_page_reads_snapshots_with_a_fixed_number_of_queries(
    client: Client, django_assert_num_queries: Any
) -> None:
    campaign, _cs = rated_campaign(leaderboard_public=True, public_refresh="live")
    with django_assert_num_queries(3):  # the campaign, the campaign's snapshot, its history
        assert page(client, campaign).status_code == 200
    with django_assert_num_queries(3):  # the campaign, its snapshot and the slice's
        scope = scope_key(campaign.pk, "language", "en")
        assert page(client, campaign, scope=scope).status_code == 200


def test_staff_page_stays_within_its_query_budget(
    client: Client, staff_user: User, django_assert_max_num_queries: Any
) -> None:
    campaign, _cs = rated_campaign()
    client.force_login(staff_user)
    with django_assert_max_num_queries(5):  # session, user, campaign, snapshot, history
        assert page(client, campaign).status_code == 200


def test_home_links_to_each_campaign_leaderboard(client: Client) -> None:
    campaign = factories.CampaignFactory(
        is_open=True, leaderboard_public=True, public_refresh="live"
    )
    assert reverse("leaderboard", args=[campaign.slug]) in client.get("/").content.decode()


# The websocket --------------------------------------------------------------------------------


async def _connect(campaign_id: int, user: Any) -> tuple[WebsocketCommunicator, bool, Any]:
    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/leaderboard/{campaign_id}/"
    )
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
def test_socket_receives_the_update_event_after_a_recompute() -> None:
    campaign, cs, questions = factories.campaign_with_answers(
        contestants=3, questions=1, leaderboard_public=True, public_refresh="live"
    )
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)

    async def scenario() -> dict[str, Any]:
        communicator, connected, _code = await _connect(campaign.pk, AnonymousUser())
        assert connected
        try:
            assert await communicator.receive_nothing(timeout=0.1)
            await database_sync_to_async(ratings_recompute)(campaign_id=campaign.pk)
            return dict(await communicator.receive_json_from(timeout=5))
        finally:
            await communicator.disconnect()

    event = async_to_sync(scenario)()
    stored = RatingSnapshot.objects.get(scope=campaign_scope(campaign.pk))
    assert event == {
        "type": "leaderboard.updated",
        "scope": campaign_scope(campaign.pk),
        "computed_at": stored.computed_at.isoformat(),
    }


@pytest.mark.django_db(transaction=True)
def test_socket_of_a_team_only_leaderboard_refuses_anonymous_and_evaluators() -> None:
    campaign = factories.CampaignFactory()
    evaluator = factories.UserFactory()
    staff = factories.UserFactory(is_staff=True)

    async def attempt(campaign_id: int, user: Any) -> tuple[bool, Any]:
        communicator, connected, code = await _connect(campaign_id, user)
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(attempt)(campaign.pk, AnonymousUser()) == (False, 4403)
    assert async_to_sync(attempt)(campaign.pk, evaluator) == (False, 4403)
    assert async_to_sync(attempt)(campaign.pk + 1000, staff) == (False, 4404)
    assert async_to_sync(attempt)(campaign.pk, staff)[0] is True


# The JSON API ---------------------------------------------------------------------------------


def _bearer(user: User) -> dict[str, str]:
    from arena.accounts.tokens import api_token_create

    _token, key = api_token_create(user=user, name="script")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_api_serves_snapshots_by_token_with_the_page_access_rules(
    client: Client, staff_user: User
) -> None:
    public, _cs = rated_campaign(leaderboard_public=True, public_refresh="live")
    team, _cs2 = rated_campaign()
    evaluator = factories.UserFactory()
    url = "api:leaderboard"
    assert client.get(reverse(url, args=[public.slug])).status_code == 401
    as_evaluator = _bearer(evaluator)
    data = client.get(reverse(url, args=[public.slug]), **as_evaluator).json()
    assert data["scope"] == campaign_scope(public.pk)
    assert data["snapshot"]["status"] == "ok"
    assert client.get(reverse(url, args=[team.slug]), **as_evaluator).status_code == 403
    as_staff = _bearer(staff_user)
    scope = scope_key(team.pk, "days", "30")
    data = client.get(reverse(url, args=[team.slug]), {"scope": scope}, **as_staff).json()
    assert data["scope"] == scope
    assert client.get(reverse(url, args=["nope"]), **as_staff).status_code == 404


def test_api_exports_battles_to_staff_only(client: Client, staff_user: User) -> None:
    campaign, _cs = rated_campaign(leaderboard_public=True, public_refresh="live")
    url = reverse("api:battles_export", args=[campaign.slug])
    assert client.get(url, **_bearer(factories.UserFactory())).status_code == 403
    battles = client.get(url, **_bearer(staff_user)).json()
    assert len(battles) == sum(n for *_x, n in ROUND_ROBIN)
    assert set(battles[0]) == {
        "question_id",
        "model_a",
        "model_b",
        "winner",
        "judge",
        "turn",
        "language",
        "tstamp",
        "counted",
    }


@pytest.mark.django_db
def test_home_links_the_leaderboard_only_where_the_visitor_may_open_it(client: Client) -> None:
    evaluator = factories.UserFactory()
    team = factories.CampaignFactory(slug="team-only", leaderboard_public=False)
    public = factories.CampaignFactory(
        slug="public-one", leaderboard_public=True, public_refresh="live"
    )
    team.evaluators.add(evaluator)
    public.evaluators.add(evaluator)
    client.force_login(evaluator)
    page = client.get("/").content.decode()
    assert "/c/public-one/leaderboard/" in page
    assert "/c/team-only/leaderboard/" not in page
    client.force_login(factories.UserFactory(is_staff=True))
    assert "/c/team-only/leaderboard/" in client.get("/").content.decode()
