from __future__ import annotations

import pytest

from models_backend.fingerprints import safe_prefix, start_pending


@pytest.mark.parametrize(
    ("partial", "sendable"),
    [
        ("Sure, here is", "Sure, here is"),
        ("Sure, here is Clau", "Sure, here is "),
        ("Hello there! I am Smol", "Hello there!"),
        ("The <|im_e", "The"),
        ("Use [INS", "Use"),
        ("OK", "OK"),
        ("Smol", ""),
        ("저는 클로", ""),
        ("파이썬은 좋은 언어입니다. 그리고", "파이썬은 좋은 언어입니다. 그리고"),
        ("안녕하세요, 클로", "안녕하세요, "),
        ("Yes. The answer is 4. ", "Yes. The answer is 4. "),
        ("First. <think>maybe", "First."),
        ("Use `<think>` tags. <thi", "Use `<think>` tags."),
        ("Use `re.sub(", "Use"),
        ("analysis", ""),
        ("assistant", ""),
        ("Done.</s>", "Done."),
        ("Done.\nUSE", "Done."),
        ("Paris.us", "Paris."),
        ("```text\nline one\nline two", "```text\nline one"),
    ],
)
def test_stream_holds_back_what_stripping_could_still_change(partial: str, sendable: str) -> None:
    assert safe_prefix(partial, ["claude", "클로드", "smollm"]) == sendable


def test_sendable_prefix_is_always_a_prefix() -> None:
    text = "First line.\nAs an AI developed by Someone, I can help. Then more words follow"
    for end in range(len(text) + 1):
        assert text[:end].startswith(safe_prefix(text[:end], ["someone"]))


def test_nothing_is_sent_while_the_start_is_pending() -> None:
    assert safe_prefix("Okay, so", pending=start_pending("Okay, so", leading_trace=True)) == ""
    assert safe_prefix("You are", pending=start_pending("[SYSTEM_PROMPT]You are")) == ""
    assert safe_prefix("Hi there", pending=start_pending("<|im_start|>assistant\nHi there")) == (
        "Hi there"
    )


@pytest.mark.parametrize(
    ("partial", "sendable"),
    [
        # Words are not spaced in Japanese and Chinese: a Latin tail glued to them may still
        # grow into a maker's name.
        ("私はClaudeです。A", "私はClaudeです。"),
        ("今天天气很好，阿", "今天天气很好，"),
        ("我喜欢吃饭。C", "我喜欢吃饭。"),
        # One "Model: / Developer:" card is self-identification, two are a comparison: the
        # first is held while another may follow.
        ("Model: GPT-4\nDeveloper: OpenAI\n\nMod", ""),
        ("Model: GPT-4\nDeveloper: OpenAI\n\nModel: Claude\n", ""),
        (
            "Model: GPT-4\nDeveloper: OpenAI\n\nBoth are large language models, and differ.",
            "Model: GPT-4\nDeveloper: OpenAI\n\nBoth are large language models, and differ.",
        ),
    ],
)
def test_stream_holds_back_glued_names_and_cards_that_may_still_change(
    partial: str, sendable: str
) -> None:
    terms = ["claude", "anthropic", "gpt-4", "openai", "阿里云"]
    assert safe_prefix(partial, terms) == sendable
