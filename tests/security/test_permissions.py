"""Attacks on who may do what through the API and the token admin: staff accounts without
the model permissions, tokens used beyond their scopes or their expiry, and a staff member
minting a token for a superuser or reading a new key back out of a cookie."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from arena.accounts.tokens import TokenRefused, api_token_create
from arena.models import ApiToken, Question
from tests import factories

pytestmark = pytest.mark.django_db
CSV = b"id,prompt\nq1,What is 2+2?\n"
IMPORT_URL = "api:question_set_import"


def _staff(*codenames: str, superuser: bool = False) -> User:
    user = factories.UserFactory(is_staff=True, is_superuser=superuser)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # a fresh instance: no permission cache


def _bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _import(client: Client, key: str, **extra: str) -> HttpResponse:
    return client.post(  # type: ignore[return-value]
        reverse(IMPORT_URL),
        {"set": "attack", "file": SimpleUploadedFile("q.csv", CSV), **extra},
        **_bearer(key),
    )


def _export(client: Client, key: str) -> HttpResponse:
    campaign = factories.CampaignFactory()
    url = reverse("api:battles_export", args=[campaign.slug])
    return client.get(url, **_bearer(key))  # type: ignore[return-value]


# Staff endpoints check the admin's model permissions, not is_staff ---------------------------


def test_staff_without_model_permissions_cannot_import_or_export(client: Client) -> None:
    staff = _staff()
    token, key = api_token_create(user=staff, name="t")
    # The attack's token: a staff member's token from before scopes, which the migration
    # gave every scope; the account's missing permissions still stop it.
    ApiToken.objects.filter(pk=token.pk).update(scopes="evaluate import export")
    response = _import(client, key)
    assert response.status_code == 403
    assert set(response.json()["required_permissions"]) == {
        "arena.add_questionset",
        "arena.add_question",
    }
    assert Question.objects.count() == 0
    response = _export(client, key)
    assert response.status_code == 403
    assert set(response.json()["required_permissions"]) == {"arena.view_battle", "arena.view_vote"}


def test_a_new_token_of_staff_without_permissions_holds_only_evaluate(client: Client) -> None:
    token, key = api_token_create(user=_staff(), name="t")
    assert token.scopes == "evaluate"
    assert _import(client, key).status_code == 403
    assert _export(client, key).status_code == 403
    assert Question.objects.count() == 0


def test_staff_with_the_permissions_may_import_and_export(client: Client) -> None:
    importer = _staff("add_questionset", "add_question")
    _token, key = api_token_create(user=importer, name="t")
    assert _import(client, key).status_code == 201
    assert _export(client, key).status_code == 403
    exporter = _staff("view_battle", "view_vote")
    _token, key = api_token_create(user=exporter, name="t")
    assert _export(client, key).status_code == 200
    assert _import(client, key).status_code == 403


def test_updating_questions_through_the_api_needs_the_change_permission(client: Client) -> None:
    _token, key = api_token_create(user=_staff("add_questionset", "add_question"), name="t")
    assert _import(client, key).status_code == 201
    response = _import(client, key, mode="update")
    assert response.status_code == 403
    assert response.json()["required_permissions"] == ["arena.change_question"]


# Scopes and expiry, on every call ------------------------------------------------------------


def test_a_token_without_the_scope_is_refused_even_for_a_superuser(client: Client) -> None:
    admin = _staff(superuser=True)
    _token, key = api_token_create(user=admin, name="voting", scopes=["evaluate"])
    response = _import(client, key)
    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["import"]
    assert "insufficient_scope" in response["WWW-Authenticate"]
    assert Question.objects.count() == 0
    assert _export(client, key).status_code == 403
    assert client.get(reverse("api:campaigns"), **_bearer(key)).status_code == 200
    _token, key = api_token_create(user=admin, name="import", scopes=["import"])
    assert client.get(reverse("api:campaigns"), **_bearer(key)).status_code == 403
    assert _import(client, key).status_code == 201


def test_an_expired_token_is_refused_with_401(client: Client) -> None:
    admin = _staff(superuser=True)
    later = timezone.now() + dt.timedelta(days=1)
    token, key = api_token_create(user=admin, name="t", expires_at=later)
    assert client.get(reverse("api:campaigns"), **_bearer(key)).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1), last_used_at=None
    )
    for response in [
        client.get(reverse("api:campaigns"), **_bearer(key)),
        _import(client, key),
        _export(client, key),
    ]:
        assert response.status_code == 401
        assert "expired" in response.json()["error"]
        assert 'error="invalid_token"' in response["WWW-Authenticate"]
    token.refresh_from_db()
    assert token.last_used_at is None
    assert Question.objects.count() == 0


def test_a_token_cannot_be_made_with_scopes_its_user_lacks() -> None:
    evaluator = factories.UserFactory()
    with pytest.raises(TokenRefused, match="import"):
        api_token_create(user=evaluator, name="t", scopes=["import"])
    with pytest.raises(TokenRefused, match="admin"):
        api_token_create(user=_staff("add_questionset", "add_question"), name="t", scopes=["admin"])
    assert not ApiToken.objects.exists()


def test_create_api_token_command_takes_scopes_and_an_expiry() -> None:
    user = _staff("view_battle", "view_vote")
    out = io.StringIO()
    call_command(
        "create_api_token", user.username, "--scopes", "export", "--expires-days", "3", stdout=out
    )
    token = ApiToken.objects.get(user=user)
    assert out.getvalue().strip()[6:14] == token.prefix
    assert token.scopes == "export"
    assert token.expires_at is not None
    assert abs(token.expires_at - timezone.now() - dt.timedelta(days=3)) < dt.timedelta(minutes=1)
    with pytest.raises(CommandError, match="import"):
        call_command("create_api_token", user.username, "--scopes", "import", stdout=out)


# The token admin -----------------------------------------------------------------------------


def _token_admin_staff() -> User:
    return _staff("add_apitoken", "change_apitoken", "view_apitoken", "delete_apitoken")


def test_staff_cannot_mint_a_token_for_a_superuser_in_the_admin(client: Client) -> None:
    superuser = _staff(superuser=True)
    staff = _token_admin_staff()
    client.force_login(staff)
    form = client.get(reverse("admin:arena_apitoken_add"))
    assert form.status_code == 200
    assert f'<option value="{staff.pk}"' in form.content.decode()
    assert f'<option value="{superuser.pk}"' not in form.content.decode()  # not offered
    response = client.post(
        reverse("admin:arena_apitoken_add"), {"user": superuser.pk, "name": "mine now"}
    )
    assert response.status_code == 200  # the form again, with its error
    assert "arena_" not in response.content.decode()
    assert not ApiToken.objects.filter(user=superuser).exists()


def test_staff_cannot_reassign_or_see_another_users_token_in_the_admin(client: Client) -> None:
    superuser = _staff(superuser=True)
    staff = _token_admin_staff()
    own, _key = api_token_create(user=staff, name="own")
    theirs, _key = api_token_create(user=superuser, name="theirs")
    client.force_login(staff)
    client.post(
        reverse("admin:arena_apitoken_change", args=[own.pk]),
        {"user": superuser.pk, "name": "own", "scopes": ["admin"]},
    )
    own.refresh_from_db()
    assert (own.user_id, own.scopes) == (staff.pk, "evaluate")
    page = client.get(reverse("admin:arena_apitoken_change", args=[theirs.pk]))
    assert page.status_code == 302  # "doesn't exist" for them
    changelist = client.get(reverse("admin:arena_apitoken_changelist")).content.decode()
    assert "theirs" not in changelist


def test_staff_cannot_lift_the_expiry_set_on_their_own_token(client: Client) -> None:
    staff = _token_admin_staff()
    expires = timezone.now() + dt.timedelta(days=3)
    own, _key = api_token_create(user=staff, name="own", expires_at=expires)
    client.force_login(staff)
    client.post(
        reverse("admin:arena_apitoken_change", args=[own.pk]),
        {"name": "own", "expires_at_0": "", "expires_at_1": "", "expires_at": ""},
    )
    own.refresh_from_db()
    assert own.expires_at == expires


def _cookie_texts(response: HttpResponse) -> list[str]:
    """Every Set-Cookie header, and any messages cookie decoded."""
    texts = [morsel.OutputString() for morsel in response.cookies.values()]
    storage = CookieStorage(RequestFactory().get("/"))
    for name, morsel in response.cookies.items():
        if name == storage.cookie_name and morsel.value:
            texts.extend(str(m) for m in storage._decode(morsel.value) or [])
    return texts


def test_a_new_key_is_shown_once_on_its_own_page_and_never_in_a_cookie(client: Client) -> None:
    staff = _token_admin_staff()
    client.force_login(staff)
    response = client.post(reverse("admin:arena_apitoken_add"), {"user": staff.pk, "name": "ci"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    found = re.search(r'id="api-token-key"[^>]*>(arena_[\w-]+)<', response.content.decode())
    assert found is not None
    key = found.group(1)
    token = ApiToken.objects.get(user=staff)
    assert key[6:14] == token.prefix
    assert token.scopes == "evaluate"
    assert all(key not in text for text in _cookie_texts(response))
    assert all(key not in str(value) for value in client.session.values())
    for url in [
        reverse("admin:arena_apitoken_changelist"),
        reverse("admin:arena_apitoken_change", args=[token.pk]),
    ]:
        again = client.get(url)
        assert key not in again.content.decode()
        assert all(key not in text for text in _cookie_texts(again))
    assert client.get(reverse("api:campaigns"), **_bearer(key)).status_code == 200


def test_a_superuser_mints_for_another_user_only_the_scopes_they_may_hold(client: Client) -> None:
    client.force_login(_staff(superuser=True))
    evaluator = factories.UserFactory()
    url = reverse("admin:arena_apitoken_add")
    refused = client.post(url, {"user": evaluator.pk, "name": "x", "scopes": ["export"]})
    assert refused.status_code == 200
    assert not ApiToken.objects.exists()
    made = client.post(url, {"user": evaluator.pk, "name": "x", "scopes": ["evaluate"]})
    assert made.status_code == 200
    assert "api-token-key" in made.content.decode()
    assert ApiToken.objects.get().user_id == evaluator.pk
