"""Attack: get script into a page (a websocket frame's HTML, an uploaded question, a model's
answer) and have the browser run it; frame the site; downgrade it to plain http.

Every page answers with a Content-Security-Policy that runs only our static scripts and
scripts carrying this response's nonce, never inline code (so no template may carry an
on*= handler or inline style); in a real browser the pages raise no CSP violation while an
injected handler is refused. `manage.py check --deploy` is clean in a production-like
environment, http is redirected to https there, and the answers carry HSTS.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from arena.markdown import render_markdown
from arena.models import Battle, Campaign
from arena.ratings.recompute import ratings_recompute
from tests import factories
from tests.arena.test_ratings_service import ROUND_ROBIN, cast_votes
from tests.browser import conftest as browser_conftest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from tests.browser.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
PASSWORD = "correct horse battery"

# The browser tests' daphne server and Chromium (tests/browser/conftest.py).
server = browser_conftest.server
browser = browser_conftest.browser
_async_unsafe_allowed = browser_conftest._async_unsafe_allowed


@pytest.fixture(autouse=True)
def _few_rounds(settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 20


def _policy(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


class _Markup(HTMLParser):
    """The page's script tags (attributes and inline text) and any on*= or style= attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str | None]] = []
        self.inline_code: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, _value in attrs:
            if name.startswith("on") or name == "style":
                self.handlers.append(f"<{tag} {name}=…>")
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_code.append(data.strip()[:80])


def _assert_strict_policy(url: str, response: Any, *, own_page: bool) -> None:
    assert response.status_code == 200, url
    header = response.headers.get("Content-Security-Policy")
    assert header, f"{url} has no Content-Security-Policy"
    policy = _policy(header)
    scripts = policy["script-src"]
    assert "'unsafe-inline'" not in scripts, url
    assert "'unsafe-eval'" not in scripts, url
    assert "'unsafe-inline'" not in policy["style-src"], url
    assert policy["default-src"] == ["'self'"], url
    assert policy["object-src"] == ["'none'"], url
    assert policy["frame-ancestors"] == ["'none'"], url
    assert policy["base-uri"] == ["'self'"], url
    assert policy["form-action"] == ["'self'"], url
    assert policy["img-src"] == ["'self'", "data:"], url
    assert {"'self'", "ws://testserver", "wss://testserver"} <= set(policy["connect-src"]), url

    markup = _Markup()
    markup.feed(response.content.decode())
    assert not markup.inline_code, f"{url} runs inline script: {markup.inline_code}"
    assert not markup.handlers, f"{url} has inline handlers or styles: {markup.handlers}"
    assert markup.scripts, f"{url} loads no script"
    nonces = [s for s in scripts if s.startswith("'nonce-")]
    for script in markup.scripts:
        src = script.get("src") or ""
        assert re.match(r"/[^/]", src), f"{url}: a script from elsewhere: {src!r}"
        if own_page:
            assert len(nonces) == 1, f"{url}: no nonce in {header}"
            assert f"'nonce-{script.get('nonce')}'" == nonces[0], f"{url}: {script}"


def _rated_campaign(**fields: Any) -> Campaign:
    campaign, cs, questions = factories.campaign_with_answers(contestants=3, questions=1, **fields)
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    ratings_recompute(campaign_id=campaign.pk)
    return campaign


@pytest.mark.django_db
def test_every_evaluator_page_and_the_admin_run_only_nonced_or_own_scripts(
    staff_user: User,
) -> None:
    campaign = _rated_campaign(leaderboard_public=True, public_refresh="live", allow_live=True)
    evaluator = factories.UserFactory()
    campaign.evaluators.add(evaluator)
    live = factories.BattleFactory(campaign=campaign, evaluator=evaluator, mode=Battle.Mode.LIVE)

    anonymous = Client()
    _assert_strict_policy("login", anonymous.get(reverse("login")), own_page=True)
    client = Client()
    client.force_login(evaluator)
    battle_url = client.get(reverse("campaign_next", args=[campaign.slug]))["Location"]
    pages = {
        "home": reverse("home"),
        "battle": battle_url,
        "live battle": reverse("battle", args=[live.code]),
        "live page": reverse("live_new", args=[campaign.slug]),
        "leaderboard": reverse("leaderboard", args=[campaign.slug]),
    }
    for name, url in pages.items():
        _assert_strict_policy(name, client.get(url), own_page=True)

    admin = Client()
    admin.force_login(staff_user)
    question_set = campaign.question_sets.get()
    for url in (
        reverse("admin:arena_questionset_progress", args=[question_set.pk]),
        reverse("admin:index"),
        reverse("admin:arena_battle_changelist"),
        reverse("admin:arena_questionset_change", args=[question_set.pk]),
    ):
        _assert_strict_policy(url, admin.get(url), own_page=False)


def test_no_template_carries_inline_script_handlers_or_styles() -> None:
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert templates
    found = []
    for path in templates:
        text = path.read_text(encoding="utf-8")
        markup = _Markup()
        markup.feed(text)
        found += [f"{path.relative_to(ROOT)}: {h}" for h in markup.handlers]
        found += [f"{path.relative_to(ROOT)}: <script>{c}" for c in markup.inline_code]
        found += [
            f"{path.relative_to(ROOT)}: {m.group(0)}"
            for m in re.finditer(r"\bon[a-z]+\s*=|javascript:|<style", text, flags=re.IGNORECASE)
        ]
    assert not found, found


def test_every_heatmap_tone_is_drawn_by_the_stylesheet() -> None:
    from arena.leaderboard_view import DARK_FROM, HUES, TONE_STEPS, mix

    css = (ROOT / "static" / "arena" / "arena.css").read_text(encoding="utf-8")
    for hue, colour in HUES.items():
        for step in range(TONE_STEPS + 1):
            white = " color:#fff;" if step >= DARK_FROM else ""
            rule = f".hm-{hue}-{step} {{ background:{mix(colour, step / TONE_STEPS)};{white} }}"
            assert rule in css
    for tone in ("hm-none", "hm-empty", "hm-diag"):
        assert f".{tone} {{" in css


def test_markdown_table_alignment_is_a_class_not_an_inline_style() -> None:
    html = render_markdown("| a | b | c |\n|:--|--:|:-:|\n| 1 | 2 | 3 |\n")
    assert "style=" not in html
    assert html.count('class="ta-left"') == 2
    assert html.count('class="ta-right"') == 2
    assert html.count('class="ta-center"') == 2


# HTTPS ---------------------------------------------------------------------------------------


def _production_env(**extra: str) -> dict[str, str]:
    dropped = ("ARENA_", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return {
        **clean,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "arena.example.org",
        **extra,
    }


def test_check_deploy_is_clean_with_the_production_settings() -> None:
    env = _production_env(
        ARENA_SECURE_COOKIES="true",
        ARENA_SSL_REDIRECT="true",
        ARENA_HSTS_PRELOAD="true",
        ARENA_PROXY_SSL_HEADER="true",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def _settings_in(env: dict[str, str]) -> str:
    code = (
        "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, "
        "s.SECURE_PROXY_SSL_HEADER)"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "arena.settings"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_https_defaults_are_on_in_production_and_off_for_development() -> None:
    assert _settings_in(_production_env()) == "True 31536000 True False None"
    assert _settings_in(_production_env(ARENA_PROXY_SSL_HEADER="true")).endswith(
        "('HTTP_X_FORWARDED_PROTO', 'https')"
    )
    development = {**_production_env(), "DEBUG": "true"}
    assert _settings_in(development) == "False 0 False False None"


@pytest.mark.django_db
def test_plain_http_is_redirected_and_https_answers_carry_hsts(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()
    plain = client.get(reverse("login"))
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/accounts/login/"
    assert client.get(reverse("healthz")).status_code == 200  # probes ask over http
    proxied = client.get(
        reverse("login"), headers={"X-Forwarded-Proto": "https", "Host": "testserver"}
    )
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    policy = _policy(proxied["Content-Security-Policy"])
    assert "ws://testserver" not in policy["connect-src"]  # an https page talks wss only
    assert "wss://testserver" in policy["connect-src"]


# In a browser --------------------------------------------------------------------------------

_COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${where}`);
});
"""

# What a websocket frame's HTML would do if the server's sanitiser ever let a handler through.
_INJECT_HANDLER = """
() => new Promise((resolve) => {
  const box = document.createElement("div");
  box.innerHTML = '<img src="data:," onerror="window.__injected = true">';
  document.body.append(box);
  setTimeout(() => resolve(window.__injected === true), 500);
})
"""


def _violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__cspViolations")
    return found


def _log_in(page: Page, server: Server, user: User, *, path: str) -> None:
    page.goto(f"{server.url}{path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("[type=submit]")


def _browser_user(**fields: Any) -> User:
    """A user whose password the server checks fast (the test settings' MD5 hasher is not
    among the server's; PBKDF2 with few rounds is)."""
    user: User = factories.UserFactory(**fields)
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "cspsalt", iterations=1000)
    user.save(update_fields=["password"])
    return user


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.django_db(transaction=True)
def test_pages_raise_no_csp_violation_and_refuse_an_injected_handler(
    server: Server, browser: Browser
) -> None:
    # The recompute notifies the leaderboard's socket through async_to_sync, which refuses
    # to run beside Playwright's event loop in this thread.
    with ThreadPoolExecutor(1) as pool:
        campaign = pool.submit(
            _rated_campaign, leaderboard_public=True, public_refresh="live", name="CSP eval"
        ).result()
    user = _browser_user()
    campaign.evaluators.add(user)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.add_init_script(_COLLECT_VIOLATIONS)
    console: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: console.append(m.text))

    _log_in(page, server, user, path="/accounts/login/?next=/")
    assert _violations(page) == []
    page.goto(f"{server.url}/c/{campaign.slug}/next/")
    page.wait_for_selector("#vote-form")
    assert _violations(page) == []

    assert page.evaluate(_INJECT_HANDLER) is False, "an injected onerror handler ran"
    refused = _violations(page)
    assert len(refused) == 1
    assert refused[0].startswith("script-src")
    assert [m for m in console if "Content Security Policy" in m] == [console[-1]]
    console.clear()

    # The language switch (once an inline onchange) still submits itself.
    with page.expect_navigation():
        page.select_option("select[name=language]", "ko")
    assert page.get_attribute("html", "lang") == "ko"
    assert _violations(page) == []

    page.goto(f"{server.url}/c/{campaign.slug}/leaderboard/")
    page.wait_for_selector(".lb-matrix td.hm-diag")
    # The socket opened under connect-src: the page says it is live.
    page.wait_for_function(
        "(el => el.textContent === el.dataset.connected)(document.getElementById('lb-live'))"
    )
    tone = page.locator(".lb-matrix td.hm-diag").first.evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert tone == "rgb(234, 238, 242)"  # the heatmap's colours come from the stylesheet
    with page.expect_navigation():
        page.select_option("select[name=language]", "en")
    assert page.get_attribute("html", "lang") == "en"
    assert _violations(page) == []
    context.close()

    staff = _browser_user(is_staff=True, is_superuser=True)
    admin = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    admin.add_init_script(_COLLECT_VIOLATIONS)
    page = admin.new_page()
    page.on("console", lambda m: console.append(m.text))
    _log_in(page, server, staff, path="/admin/login/?next=/admin/")
    assert page.locator("#site-name").count() == 1
    question_set = campaign.question_sets.get()
    for path in (
        "/admin/",
        "/admin/arena/battle/",
        f"/admin/arena/questionset/{question_set.pk}/change/",
        "/admin/arena/campaign/add/",
        f"/admin/arena/questionset/{question_set.pk}/progress/",  # last: its socket, below
    ):
        page.goto(f"{server.url}{path}")
        page.wait_for_load_state("load")
        assert _violations(page) == [], path
    page.wait_for_function(
        "(el => el.textContent === el.dataset.connected)(document.getElementById('live-state'))"
    )
    admin.close()
    assert not [m for m in console if "Content Security Policy" in m], console
