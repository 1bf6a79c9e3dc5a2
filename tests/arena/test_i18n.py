"""English and Korean: a complete Korean catalog, compiled and current, and pages that use it."""

from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests import factories

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "arena" / "locale"
PO = LOCALE / "ko" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(".*")$')
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?[sdifrx%]")


@dataclass
class PoEntry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    comments: list[str] = field(default_factory=list)
    obsolete: bool = False

    @property
    def key(self) -> str:
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"


def parse_po(text: str) -> list[PoEntry]:
    """The entries of a PO file, header first; obsolete (#~) entries are marked, not parsed."""
    entries: list[PoEntry] = []
    current: PoEntry | None = None
    last = ""
    started = False  # the current entry has a msgid

    def flush() -> None:
        nonlocal current, started
        if current is not None and (started or current.obsolete):
            entries.append(current)
        current, started = None, False

    for line in text.splitlines():
        if not line.strip():
            flush()
            continue
        if line.startswith("#") and started and current is not None and current.msgstr:
            flush()  # msgmerge may omit the blank line after the header
        if current is None:
            current = PoEntry()
        if line.startswith("#~"):
            current.obsolete = True
        elif line.startswith("#,"):
            current.flags |= {f.strip() for f in line[2:].split(",") if f.strip()}
            current.comments.append(line)
        elif line.startswith("#"):
            current.comments.append(line)
        elif match := KEYWORD.match(line):
            keyword, value = match.group(1), ast.literal_eval(match.group(2))
            if keyword in ("msgctxt", "msgid") and current.msgstr:
                flush()
                current = PoEntry()
            if keyword == "msgctxt":
                current.msgctxt = value
            elif keyword == "msgid":
                current.msgid, started = value, True
            elif keyword == "msgid_plural":
                current.msgid_plural = value
            else:
                current.msgstr.append(value)
            last = keyword
        elif line.startswith('"'):
            value = ast.literal_eval(line)
            if last == "msgctxt":
                current.msgctxt = (current.msgctxt or "") + value
            elif last == "msgid":
                current.msgid += value
            elif last == "msgid_plural":
                current.msgid_plural = (current.msgid_plural or "") + value
            else:
                current.msgstr[-1] += value
        else:
            raise ValueError(f"unreadable PO line: {line!r}")
    flush()
    return [e for e in entries if not e.obsolete]


def catalog_of(entries: list[PoEntry]) -> dict[str | tuple[str, int], str]:
    """What msgfmt would put in the .mo, keyed as gettext.GNUTranslations keys its _catalog."""
    catalog: dict[str | tuple[str, int], str] = {}
    for e in entries:
        if "fuzzy" in e.flags and e.msgid:
            continue
        if e.msgid_plural is None:
            if e.msgstr[0]:
                catalog[e.key] = e.msgstr[0]
        elif any(e.msgstr):
            for i, text in enumerate(e.msgstr):
                catalog[(e.key, i)] = text
    return catalog


def placeholders(text: str) -> set[str]:
    return {m.group(0) if not m.group(1) else m.group(1) for m in PLACEHOLDER.finditer(text)}


@pytest.fixture(scope="module")
def entries() -> list[PoEntry]:
    return parse_po(PO.read_text(encoding="utf-8"))


def test_every_korean_message_is_translated_and_none_is_fuzzy(entries: list[PoEntry]) -> None:
    header, messages = entries[0], entries[1:]
    assert header.msgid == ""
    assert "fuzzy" not in header.flags
    assert "Language: ko" in header.msgstr[0]
    assert "Plural-Forms: nplurals=1; plural=0;" in header.msgstr[0]
    assert len(messages) > 200
    untranslated = [e.msgid for e in messages if not all(e.msgstr) or not e.msgstr]
    assert untranslated == []
    fuzzy = [e.msgid for e in messages if "fuzzy" in e.flags]
    assert fuzzy == []
    plural = [e for e in messages if e.msgid_plural is not None]
    assert plural
    assert all(len(e.msgstr) == 1 for e in plural)  # Korean has one plural form


def test_translations_keep_every_placeholder(entries: list[PoEntry]) -> None:
    wrong = [
        (e.msgid, text)
        for e in entries[1:]
        if "python-format" in e.flags
        for text in e.msgstr
        if placeholders(text) != placeholders(e.msgid)
    ]
    assert wrong == []


def test_the_compiled_catalog_matches_the_po_file(entries: list[PoEntry]) -> None:
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    mo_catalog = dict(compiled._catalog)  # type: ignore[attr-defined]
    mo_header = mo_catalog.pop("", "")
    assert "Language: ko" in mo_header
    po_catalog = catalog_of(entries)
    po_catalog.pop("", None)
    missing = sorted(str(k) for k in po_catalog.keys() - mo_catalog.keys())
    stale = sorted(str(k) for k in mo_catalog.keys() - po_catalog.keys())
    assert (missing, stale) == ([], []), "run `make messages` to recompile django.mo"
    changed = sorted(str(k) for k in po_catalog if po_catalog[k] != mo_catalog[k])
    assert changed == [], "run `make messages` to recompile django.mo"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext")
def test_every_translatable_string_in_the_source_is_in_the_catalog(
    entries: list[PoEntry], tmp_path: Path
) -> None:
    """makemessages, run on a copy of the tree, finds no message the catalog lacks."""
    copy = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.mo", "*.pyc")
    for name in ("arena", "models_backend", "templates", "static"):
        shutil.copytree(ROOT / name, copy / name, ignore=ignore)
    shutil.copy(ROOT / "manage.py", copy / "manage.py")
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ko", "--no-obsolete"],
        cwd=copy,
        env={**os.environ, "DEBUG": "true"},
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = parse_po((copy / PO.relative_to(ROOT)).read_text(encoding="utf-8"))
    new = sorted({e.key for e in fresh[1:]} - {e.key for e in entries[1:]})
    assert new == [], "untranslated messages: run `make messages` and translate them"


# Pages --------------------------------------------------------------------------------------


@pytest.fixture
def battle_client(evaluator: User) -> tuple[Client, str]:
    campaign, _, questions = factories.campaign_with_answers(contestants=2, questions=2)
    campaign.evaluators.add(evaluator)
    question = questions[0]
    answers = list(question.answers.all())
    battle: Any = factories.BattleFactory(  # type: ignore[no-untyped-call]
        campaign=campaign,
        evaluator=evaluator,
        question=question,
        answer_a=answers[0],
        answer_b=answers[1],
    )
    client = Client()
    client.force_login(evaluator)
    return client, f"/b/{battle.code}/"


KOREAN_BATTLE = [
    "A가 더 좋음",
    "B가 더 좋음",
    "비슷함",
    "둘 다 나쁨",
    "건너뛰기",
    "답변 A",
    "답변 B",
]
ENGLISH_BATTLE = ["A is better", "B is better", "Tie", "Both are bad", "Skip", "Answer A"]


def test_battle_page_is_korean_for_accept_language_ko(battle_client: tuple[Client, str]) -> None:
    client, url = battle_client
    response = client.get(url, headers={"accept-language": "ko"})
    page = response.content.decode()
    assert '<html lang="ko">' in page
    for text in [*KOREAN_BATTLE, "어느 답변이 더 좋습니까?", "이유(선택)", "내 투표: 0"]:
        assert text in page
    for text in ENGLISH_BATTLE:
        assert f">{text} <kbd>" not in page
    # Messages for a failed live answer are in the page too, for the script to show.
    assert 'data-failed-a="답변 A를 생성하지 못했습니다. 다시 질문해 주십시오."' in page


def test_battle_page_is_english_by_default(battle_client: tuple[Client, str]) -> None:
    client, url = battle_client
    page = client.get(url).content.decode()
    assert '<html lang="en">' in page
    for text in ENGLISH_BATTLE:
        assert text in page
    for text in KOREAN_BATTLE:
        assert text not in page


def test_the_language_cookie_wins_over_accept_language(battle_client: tuple[Client, str]) -> None:
    client, url = battle_client
    client.cookies["django_language"] = "ko"
    page = client.get(url, headers={"accept-language": "en"}).content.decode()
    assert "A가 더 좋음" in page
    client.cookies["django_language"] = "en"
    page = client.get(url, headers={"accept-language": "ko"}).content.decode()
    assert "A is better" in page


def test_vote_refusals_are_in_the_readers_language(battle_client: tuple[Client, str]) -> None:
    client, url = battle_client
    client.cookies["django_language"] = "ko"
    response = client.post(url + "vote/", {"outcome": "nonsense"}, follow=True)
    assert "A, B, 비슷함, 둘 다 나쁨 중에서 고르십시오." in response.content.decode()


def test_home_page_in_both_languages(evaluator: User) -> None:
    campaign: Any = factories.CampaignFactory(
        name="Summer eval", leaderboard_public=True, public_refresh="live"
    )  # type: ignore[no-untyped-call]
    campaign.evaluators.add(evaluator)
    client = Client()
    client.force_login(evaluator)
    korean = client.get("/", headers={"accept-language": "ko-KR,ko;q=0.9"}).content.decode()
    for text in ["투표 시작", "리더보드", "로그아웃", "내 투표: 0 · 남은 질문: 0", "Summer eval"]:
        assert text in korean
    english = client.get("/", headers={"accept-language": "en-US"}).content.decode()
    for text in ["Start voting", "Log out", "Your votes: 0 · questions left: 0"]:
        assert text in english
    assert "투표 시작" not in english


@pytest.mark.django_db
def test_login_page_in_both_languages() -> None:
    client = Client()
    korean = client.get("/accounts/login/", headers={"accept-language": "ko"}).content.decode()
    assert "<h1>로그인</h1>" in korean
    assert "사용자 이름" in korean  # Django's own Korean catalog, for the form's labels
    assert "비밀번호" in korean
    english = client.get("/accounts/login/").content.decode()
    assert "<h1>Log in</h1>" in english
    assert "Username" in english
    bad = client.post(
        "/accounts/login/",
        {"username": "nobody", "password": "wrong"},
        headers={"accept-language": "ko"},
    )
    assert "사용자 이름 또는 비밀번호가 올바르지 않습니다." in bad.content.decode()


@pytest.mark.django_db
def test_the_language_switch_in_the_header_sets_the_language() -> None:
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    form = re.search(r'<form action="/i18n/setlang/" method="post"[^>]*>(.*?)</form>', page, re.S)
    assert form is not None
    assert '<select name="language"' in form.group(1)
    assert '<option value="ko">한국어</option>' in form.group(1)
    assert '<option value="en" selected>English</option>' in form.group(1)
    assert 'name="next" type="hidden" value="/accounts/login/"' in form.group(1)

    response = client.post("/i18n/setlang/", {"language": "ko", "next": "/accounts/login/"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert response.cookies["django_language"].value == "ko"
    page = client.get("/accounts/login/").content.decode()
    assert '<html lang="ko">' in page
    assert '<option value="ko" selected>한국어</option>' in page
    assert "<h1>로그인</h1>" in page

    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "<h1>Log in</h1>" in client.get("/accounts/login/").content.decode()


@pytest.mark.django_db
def test_the_language_switch_refuses_an_unknown_language_and_a_foreign_next() -> None:
    client = Client()
    response = client.post("/i18n/setlang/", {"language": "xx", "next": "https://evil.example/"})
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]
    assert "django_language" not in response.cookies
