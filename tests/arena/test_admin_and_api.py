from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from arena.accounts.tokens import api_token_create
from arena.models import Answer, Question
from tests import factories

pytestmark = pytest.mark.django_db
UPLOAD_URL = "admin:arena_questionset_upload"
CSV = "id,prompt,language\nk1,안녕하세요?,ko\nk2,How are you?,en\n".encode()


def _upload(client: Client, data: bytes = CSV, name: str = "q.csv", **extra: str) -> object:
    return client.post(
        reverse(UPLOAD_URL),
        {"set_name": "Uploaded", "mode": "refuse", "file": SimpleUploadedFile(name, data), **extra},
    )


def test_admin_upload_imports_for_staff(client: Client, staff_user: User) -> None:
    client.force_login(staff_user)
    response = _upload(client)
    assert response.status_code == 302
    assert set(Question.objects.values_list("text", flat=True)) == {"안녕하세요?", "How are you?"}
    page = client.get(response["Location"])  # type: ignore[index]
    assert "2 new, 0 updated, 0 unchanged" in page.content.decode()


def test_admin_upload_lists_each_error_and_imports_nothing(
    client: Client, staff_user: User
) -> None:
    client.force_login(staff_user)
    response = _upload(client, b"id,prompt\na,ok\nb,\n")
    assert response.status_code == 400
    assert "line 3: missing or empty prompt" in response.content.decode()
    assert Question.objects.count() == 0


def test_admin_upload_is_refused_to_non_staff(client: Client, evaluator: User) -> None:
    client.force_login(evaluator)
    response = _upload(client)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert Question.objects.count() == 0


def test_admin_upload_needs_the_add_permission(client: Client) -> None:
    viewer = factories.UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_questionset"))
    client.force_login(viewer)
    assert client.get(reverse(UPLOAD_URL)).status_code == 403
    assert _upload(client).status_code == 403  # type: ignore[attr-defined]
    assert Question.objects.count() == 0


def test_admin_pages_render_for_every_model(client: Client, staff_user: User) -> None:
    answer = factories.AnswerFactory(
        strip_report={"changes": [{"kind": "special_token", "text": "<|im_end|>", "where": 10}]}
    )
    factories.BattleFactory()
    client.force_login(staff_user)
    for name in [
        "contestant",
        "questionset",
        "question",
        "answer",
        "campaign",
        "battle",
        "vote",
        "ratingsnapshot",
        "apitoken",
    ]:
        assert client.get(reverse(f"admin:arena_{name}_changelist")).status_code == 200, name
    page = client.get(reverse("admin:arena_answer_change", args=[answer.pk]))
    assert page.status_code == 200
    assert "&lt;|im_end|&gt;" in page.content.decode()  # escaped, readable
    assert Answer.objects.count() >= 1


def _bearer(user: User) -> dict[str, str]:
    _token, key = api_token_create(user=user, name="t")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_api_import_for_staff_token(client: Client, staff_user: User) -> None:
    response = client.post(
        reverse("api:question_set_import"),
        {"set": "api", "file": SimpleUploadedFile("q.csv", CSV)},
        **_bearer(staff_user),
    )
    assert response.status_code == 201
    assert response.json() == {"question_set": "api", "created": 2, "updated": 0, "unchanged": 0}


def test_api_import_errors_are_json_with_lines(client: Client, staff_user: User) -> None:
    response = client.post(
        reverse("api:question_set_import"),
        {"set": "api", "file": SimpleUploadedFile("q.jsonl", b'{"prompt": ""}\n')},
        **_bearer(staff_user),
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"line": 1, "message": "missing or empty prompt"}]
    assert Question.objects.count() == 0


def test_api_import_refuses_non_staff_and_missing_tokens(client: Client, evaluator: User) -> None:
    url = reverse("api:question_set_import")
    data = {"set": "api", "file": SimpleUploadedFile("q.csv", CSV)}
    assert client.post(url, data).status_code == 401
    data["file"] = SimpleUploadedFile("q.csv", CSV)
    assert client.post(url, data, HTTP_AUTHORIZATION="Bearer arena_nope").status_code == 401
    data["file"] = SimpleUploadedFile("q.csv", CSV)
    assert client.post(url, data, **_bearer(evaluator)).status_code == 403
    assert Question.objects.count() == 0


def test_api_tokens_are_stored_only_as_digests(staff_user: User) -> None:
    token, key = api_token_create(user=staff_user, name="t")
    assert key not in token.key_hash
    assert key[6:14] == token.prefix


def test_fingerprint_audit_counts_changes_per_contestant_and_kind(
    client: Client, staff_user: User
) -> None:
    contestant = factories.ContestantFactory(name="Audited")
    report = {
        "changes": [
            {"kind": "special_token", "text": "<|im_end|>"},
            {"kind": "special_token", "text": "<|im_start|>"},
            {"kind": "identity", "text": "I am X"},
        ]
    }
    factories.AnswerFactory(contestant=contestant, strip_report=report, flagged=True)
    factories.AnswerFactory(contestant=contestant, strip_report={"changes": []})
    client.force_login(staff_user)
    page = client.get(reverse("admin:arena_answer_audit"))
    assert page.status_code == 200
    audit = page.context["audit"]
    assert audit["kinds"] == ["identity", "special_token"]
    (row,) = audit["rows"]
    assert row == {
        "contestant": "Audited",
        "answers": 2,
        "flagged": 1,
        "counts": [1, 2],
        "total": 3,
    }
