"""Attacks on the size of things: bodies too deep for the JSON parser, bodies too big to buffer,
uploads read whole before their size is checked, files of endless bad rows. Each test is the
attack; it fails on the code before the fix."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.core.files.uploadedfile import InMemoryUploadedFile, SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from arena.accounts.tokens import api_token_create
from arena.asgi import application
from arena.models import Question
from tests import factories

CHUNK = 8 * 1024
BAD_ROWS = 10_000


def _bearer(user: User) -> dict[str, str]:
    _token, key = api_token_create(user=user, name="attack")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _vote(client: Client, user: User, body: str | bytes) -> Any:
    return client.post(
        reverse("api:battle_vote", args=[uuid.uuid4()]),
        data=body,
        content_type="application/json",
        **_bearer(user),
    )


# Deep JSON -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_vote_body_of_100000_open_brackets_is_a_400_not_a_500(
    client: Client, evaluator: User
) -> None:
    response = _vote(client, evaluator, "[" * 100_000)
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "[" * 5_000 + "]" * 5_000,
        '{"a":' * 5_000 + "1" + "}" * 5_000,
        '{"outcome": "a", "reason": ' + "[" * 3_000 + '"x"' + "]" * 3_000 + "}",
        '{"outcome": "a", "reason": [[[[[[[[]]]]]]]]}',
    ],
    ids=["arrays", "objects", "deep-field", "just-over-the-limit"],
)
def test_deep_json_in_an_api_body_is_a_400_that_says_so(
    client: Client, evaluator: User, body: str
) -> None:
    response = _vote(client, evaluator, body)
    assert response.status_code == 400
    assert "nested" in response.json()["error"]


@pytest.mark.django_db
def test_brackets_inside_strings_are_not_nesting(client: Client, evaluator: User) -> None:
    body = json.dumps({"outcome": "a", "reason": '[[[[{{{{ "\\" ' * 100})
    response = _vote(client, evaluator, body)
    assert response.status_code == 404  # parsed, then refused for the battle, not the body


@pytest.mark.django_db
def test_an_oversized_json_body_is_a_400_before_it_is_parsed(
    client: Client, evaluator: User
) -> None:
    body = json.dumps({"outcome": "a", "reason": "x" * 200_000})
    response = _vote(client, evaluator, body)
    assert response.status_code == 400
    assert "over the limit" in response.json()["error"]


def test_the_depth_scan_is_linear_on_unterminated_strings() -> None:
    from arena import jsonbounds

    for text in ('"\\' * 500_000, '"' * 1_000_001, '"' + "[" * 1_000_000):
        jsonbounds.check_depth(text)  # would take minutes if it backtracked
    with pytest.raises(json.JSONDecodeError):
        jsonbounds.loads("[" * 1_000_000)


@pytest.mark.django_db
def test_a_deep_json_lines_upload_is_a_400_not_a_500(client: Client, staff_user: User) -> None:
    file = SimpleUploadedFile("q.jsonl", b'{"prompt": "ok"}\n' + b"[" * 100_000 + b"\n")
    response = client.post(
        reverse("api:question_set_import"), {"set": "deep", "file": file}, **_bearer(staff_user)
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["line"] == 2
    assert "nested" in response.json()["errors"][0]["message"]
    assert not Question.objects.exists()


@pytest.mark.django_db
def test_a_deep_battles_file_is_refused_not_a_crash(tmp_path: Path) -> None:
    factories.CampaignFactory(slug="target")
    for name, text in (("deep.json", "[" * 100_000), ("deep.jsonl", "{}\n" + "[" * 100_000)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        err = io.StringIO()
        with pytest.raises(CommandError):
            call_command("import_battles", str(path), "--campaign", "target", stderr=err)
        assert "nested" in err.getvalue()


# Bodies through the ASGI application ---------------------------------------------------------


class _Client:
    """An HTTP client at the ASGI boundary that counts what the application pulls."""

    def __init__(self, chunks: int, chunk: int = CHUNK) -> None:
        self.left, self.chunk = chunks, chunk
        self.pulled = 0
        self.messages: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self.left == 0:
            await asyncio.Event().wait()  # the body is over: only a disconnect could follow
        self.left -= 1
        self.pulled += self.chunk
        return {"type": "http.request", "body": b"x" * self.chunk, "more_body": self.left > 0}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    async def request(self, path: str, content_length: int | None) -> int:
        headers = [(b"host", b"testserver"), (b"content-type", b"application/octet-stream")]
        if content_length is not None:
            headers.append((b"content-length", str(content_length).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("testserver", 80),
        }
        await asyncio.wait_for(application(scope, self.receive, self.send), 60)
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        return int(start["status"])


def _post(path: str, *, chunks: int, content_length: int | None) -> tuple[int, _Client]:
    client = _Client(chunks)
    status = async_to_sync(client.request)(path, content_length)
    return status, client


@pytest.mark.django_db(transaction=True)
def test_an_oversized_content_length_is_refused_before_a_byte_is_read() -> None:
    # 300 MB declared; the client would send 4 MiB of it before the old code's 403.
    status, client = _post("/healthz", chunks=512, content_length=300_000_000)
    assert status == 413
    assert client.pulled == 0


@pytest.mark.django_db(transaction=True)
def test_a_streamed_body_without_content_length_is_cut_off_at_the_limit(settings: Any) -> None:
    settings.ARENA_MAX_BODY_BYTES = 64 * 1024
    status, client = _post("/healthz", chunks=1_000, content_length=None)
    assert status == 413
    assert client.pulled <= settings.ARENA_MAX_BODY_BYTES + CHUNK
    body = json.loads(client.messages[-1]["body"])
    assert "65,536" in body["error"]


@pytest.mark.django_db(transaction=True)
def test_a_body_within_the_limit_reaches_django(settings: Any) -> None:
    settings.ARENA_MAX_BODY_BYTES = 64 * 1024
    status, client = _post("/healthz", chunks=8, content_length=8 * CHUNK)
    assert status == 403  # Django's CSRF check: the body was read and handed on
    assert client.pulled == 8 * CHUNK


@pytest.mark.django_db(transaction=True)
def test_only_the_upload_endpoints_take_an_upload_sized_body(settings: Any) -> None:
    settings.ARENA_MAX_BODY_BYTES = 64 * 1024
    settings.ARENA_MAX_UPLOAD_BYTES = 1024 * 1024
    upload_sized = 64  # chunks: 512 KiB
    for path in ("/healthz", reverse("api:battle_vote", args=[uuid.uuid4()])):
        status, _client = _post(path, chunks=upload_sized, content_length=None)
        assert status == 413, path
    status, client = _post(
        reverse("api:question_set_import"), chunks=upload_sized, content_length=None
    )
    assert status == 401  # through to the view's token check
    assert client.pulled == upload_sized * CHUNK
    status, client = _post(
        reverse("admin:arena_questionset_upload"),
        chunks=upload_sized,
        content_length=upload_sized * CHUNK,
    )
    assert status == 403  # through to CSRF
    status, client = _post(
        reverse("api:question_set_import"), chunks=512, content_length=300_000_000
    )
    assert status == 413
    assert client.pulled == 0
    status, client = _post(reverse("api:question_set_import"), chunks=1_000, content_length=None)
    assert status == 413
    assert client.pulled <= 1024 * 1024 + 64 * 1024 + CHUNK


# Uploads -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_upload_over_the_limit_is_refused_without_being_read(
    client: Client, staff_user: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ARENA_MAX_UPLOAD_BYTES = 1_000

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the oversized upload was read")

    def never_chunks(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield never()

    file = io.BytesIO(b"id,prompt\n" + b"a,b\n" * 5_000)
    file.name = "q.csv"
    # On the server side the file arrives as an InMemoryUploadedFile, which must stay unread.
    monkeypatch.setattr(InMemoryUploadedFile, "read", never)
    monkeypatch.setattr(InMemoryUploadedFile, "chunks", never_chunks)
    response = client.post(
        reverse("api:question_set_import"), {"set": "big", "file": file}, **_bearer(staff_user)
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"line": None, "message": "The file is 20010 bytes, over the limit of 1000 bytes."}
    ]


def test_an_upload_of_unknown_size_is_read_only_up_to_the_limit(settings: Any) -> None:
    from arena.questions.imports import QuestionImportError, upload_read

    settings.ARENA_MAX_UPLOAD_BYTES = 10 * 1024
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 1024

    with pytest.raises(QuestionImportError) as info:
        upload_read(endless())
    assert pulled == 11
    assert str(info.value.errors[0]) == "The file is over the limit of 10240 bytes."
    assert upload_read(iter([b"ab", b"cd"]), size=4) == b"abcd"


# Endless bad rows ----------------------------------------------------------------------------

BAD_CSV = ("id,prompt\n" + "".join(f"q{i},\n" for i in range(BAD_ROWS))).encode()
REST = f"… and {BAD_ROWS - 200:,} more errors"


@pytest.mark.django_db
def test_a_10000_bad_row_import_lists_200_errors_and_counts_the_rest_in_the_api(
    client: Client, staff_user: User
) -> None:
    file = SimpleUploadedFile("q.csv", BAD_CSV)
    response = client.post(
        reverse("api:question_set_import"), {"set": "bad", "file": file}, **_bearer(staff_user)
    )
    assert response.status_code == 400
    body = response.json()
    assert len(body["errors"]) == 200
    assert body["errors"][0] == {"line": 2, "message": "missing or empty prompt"}
    assert body["more_errors"] == BAD_ROWS - 200
    assert body["more_errors_text"] == REST


@pytest.mark.django_db
def test_a_10000_bad_row_import_is_capped_in_the_admin(client: Client, staff_user: User) -> None:
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:arena_questionset_upload"),
        {"set_name": "bad", "mode": "refuse", "file": SimpleUploadedFile("q.csv", BAD_CSV)},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert f"The file was refused: {BAD_ROWS} problems." in page
    assert page.count("missing or empty prompt") == 200
    assert REST in page


@pytest.mark.django_db
def test_a_10000_bad_row_import_is_capped_in_the_command(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes(BAD_CSV)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_questions", str(path), "--set", "bad", stderr=err)
    lines = err.getvalue().splitlines()
    assert len(lines) == 201
    assert lines[-1] == f"{path}: {REST}"


@pytest.mark.django_db
def test_a_10000_bad_battle_import_is_capped_in_the_command(tmp_path: Path) -> None:
    factories.CampaignFactory(slug="target")
    path = tmp_path / "battles.jsonl"
    path.write_text('{"model_a": "alpha"}\n' * BAD_ROWS, encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_battles", str(path), "--campaign", "target", stderr=err)
    lines = err.getvalue().splitlines()
    assert len(lines) == 201
    assert lines[-1] == f"{path}: {REST}"
