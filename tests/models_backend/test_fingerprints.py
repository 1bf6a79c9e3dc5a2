"""Fingerprint stripping: a corpus of realistic raw outputs per template family, properties
(idempotent, never grows, artifact-free text unchanged) and self-identification rules.

Pure Python: no database, no Django.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any, Literal, cast

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from models_backend.fingerprints import (
    KNOWN_IDENTITY_TERMS,
    KNOWN_SPECIAL_TOKENS,
    MAX_REDACTION_GROWTH,
    StripResult,
    safe_prefix,
    start_pending,
    strip_answer,
)

CORPUS_DIR = Path(__file__).parent / "fingerprint_corpus"
POLICIES: tuple[Literal["redact", "exclude"], ...] = ("redact", "exclude")


def _changes(result: StripResult) -> list[dict[str, Any]]:
    return cast("list[dict[str, Any]]", result.report["changes"])


def _mentions(result: StripResult) -> list[dict[str, Any]]:
    return cast("list[dict[str, Any]]", result.report["identity_mentions"])


def _load_corpus() -> list[Any]:
    params = []
    for path in sorted(CORPUS_DIR.glob("*.json")):
        family = json.loads(path.read_text(encoding="utf-8"))
        for index, case in enumerate(family["cases"]):
            options = {
                "special_tokens": case.get("special_tokens", family.get("special_tokens", [])),
                "stop": case.get("stop", family.get("stop", [])),
                "identity_terms": case.get("identity_terms", family.get("identity_terms", [])),
                "policy": case.get("policy", "redact"),
            }
            params.append(
                pytest.param(case, options, id=f"{path.stem}-{index}-{case['note'][:40]}")
            )
    return params


CORPUS = _load_corpus()


def _strip(raw: str, options: dict[str, Any]) -> StripResult:
    return strip_answer(
        raw,
        special_tokens=options["special_tokens"],
        stop=options["stop"],
        identity_terms=options["identity_terms"],
        policy=options["policy"],
    )


# ---------------------------------------------------------------------------------------------
# Corpus


def test_corpus_covers_every_family_with_several_cases() -> None:
    families = {p.stem for p in CORPUS_DIR.glob("*.json")}
    required = {
        "chatml_qwen",
        "llama2",
        "llama3",
        "mistral",
        "gemma",
        "phi3",
        "deepseek",
        "command_r",
        "zephyr",
        "vicuna",
        "alpaca",
        "exaone",
        "solar",
        "gpt_oss",
        "llama4",
        "granite",
        "phi4",
        "gemma3",
        "reasoning",
    }
    assert required <= families
    for name in required:
        cases = json.loads((CORPUS_DIR / f"{name}.json").read_text(encoding="utf-8"))["cases"]
        assert len(cases) >= 3, name


@pytest.mark.parametrize(("case", "options"), CORPUS)
def test_corpus_case_is_stripped_to_the_expected_text(
    case: dict[str, Any], options: dict[str, Any]
) -> None:
    result = _strip(case["raw"], options)
    assert result.shown == case["expected"]
    if "flagged" in case:
        assert result.flagged is case["flagged"]
    if "kinds" in case:
        assert set(result.counts) >= set(case["kinds"])


@pytest.mark.parametrize(("case", "options"), CORPUS)
def test_corpus_case_is_idempotent(case: dict[str, Any], options: dict[str, Any]) -> None:
    shown = _strip(case["raw"], options).shown
    again = _strip(shown, options)
    assert again.shown == shown
    assert not [c for c in _changes(again) if c["kind"] != "identity"]


# ---------------------------------------------------------------------------------------------
# Specific behaviour


def test_chatml_header_and_end_token_are_removed() -> None:
    result = strip_answer("<|im_start|>assistant\nParis.<|im_end|>\n")
    assert result.shown == "Paris."
    assert result.counts == {"special_token": 2, "whitespace": 1}


def test_llama3_header_decoded_without_special_tokens_is_removed() -> None:
    assert strip_answer("assistant\n\nParis is the capital.").shown == "Paris is the capital."


def test_html_s_tag_in_prose_is_kept() -> None:
    for text in (
        "Use the <s> tag to strike text through.",
        "<s>$20</s> now $15",
        "This price is <s>wrong</s>",
        "Close it with </s> as usual.",
    ):
        assert strip_answer(text).shown == text


def test_s_tokens_are_removed_in_template_positions() -> None:
    assert strip_answer("<s> Hello</s>").shown == "Hello"
    assert strip_answer("Lists are mutable. </s><s>").shown == "Lists are mutable."
    assert strip_answer("Hello there.</s>").shown == "Hello there."


def test_echoed_prompt_is_dropped_up_to_the_assistant_marker() -> None:
    result = strip_answer("<s>[INST] hi [/INST] Hello</s>")
    assert result.shown == "Hello"
    assert result.counts["prompt_echo"] == 1
    # Without an assistant marker nothing is dropped: better to show too much than nothing.
    assert strip_answer("[INST] hi").shown == "hi"


def test_code_block_keeps_template_looking_text() -> None:
    raw = (
        "Here is the prompt format:\n\n```text\n<s>[INST] Hello [/INST]\nAssistant: hi</s>\n"
        "<|im_start|>user\n```\nDone.<|im_end|>"
    )
    expected = raw.removesuffix("<|im_end|>")
    assert strip_answer(raw).shown == expected


def test_tilde_fence_and_inline_code_keep_every_character() -> None:
    raw = "Write `<|eot_id|>` or ``Assistant: `x` ``.\n\n~~~\nUSER: x\n</s>\n~~~\n"
    assert strip_answer(raw).shown == raw.rstrip("\n")


def test_unclosed_fence_still_loses_its_final_end_token() -> None:
    raw = "```python\nprint('<s>')\n<|im_end|>"
    assert strip_answer(raw).shown == "```python\nprint('<s>')\n"


def test_closing_fence_followed_by_end_token() -> None:
    raw = "```\nx = 1\n```<|eot_id|>"
    assert strip_answer(raw).shown == "```\nx = 1\n```"


def test_caller_special_tokens_and_stop_sequences() -> None:
    raw = "<|fancy_start|>The answer is 42.<|fancy_end|>\n###\n###"
    result = strip_answer(raw, special_tokens=["<|fancy_start|>", "<|fancy_end|>"], stop=["###"])
    assert result.shown == "The answer is 42."
    assert result.counts["stop_sequence"] == 2


def test_plain_word_caller_tokens_are_ignored() -> None:
    raw = "The hello world program."
    assert strip_answer(raw, special_tokens=["hello", "  "]).shown == raw


def test_stop_sequences_are_only_stripped_at_the_end() -> None:
    raw = "Observation: x\nResult"
    assert strip_answer(raw, stop=["Observation:"]).shown == raw


def test_hallucinated_user_turn_is_cut_and_recorded() -> None:
    raw = "Paris is the capital of France.\n\nUser: And Germany?\nAssistant: Berlin."
    result = strip_answer(raw)
    assert result.shown == "Paris is the capital of France."
    turn = [c for c in _changes(result) if c["kind"] == "hallucinated_turn"]
    assert turn == [
        {
            "kind": "hallucinated_turn",
            "text": "User: And Germany?\nAssistant: Berlin.",
            "where": "end",
        }
    ]


def test_requested_dialogue_is_not_cut() -> None:
    raw = "Here is a short dialogue:\n\nUser: Hi!\nAssistant: Hello, how can I help?"
    assert strip_answer(raw).shown == raw
    # A leading label followed by user lines is a script, not a leaked header: kept whole.
    script = "Assistant: Welcome!\nUser: Thanks.\nAssistant: Anytime."
    assert strip_answer(script).shown == script


def test_field_list_with_a_user_label_is_not_cut() -> None:
    raw = "Roles in the system\nUser: can read\nAdmin: can write"
    assert strip_answer(raw).shown == raw


def test_leading_role_labels_only_at_the_start() -> None:
    assert strip_answer("### Response:\nFour.").shown == "Four."
    assert strip_answer("ASSISTANT: Four.").shown == "Four."
    raw = "The label Assistant: is used by Vicuna."
    assert strip_answer(raw).shown == raw


def test_line_endings_and_nfc_are_normalised() -> None:
    raw = "Cafe\u0301\r\nline two\rthree"
    result = strip_answer(raw)
    assert result.shown == "Café\nline two\nthree"
    assert {"line_endings", "unicode_nfc"} <= set(result.counts)


def test_tables_and_prose_are_untouched() -> None:
    raw = (
        "| Model | Score |\n|---|---|\n| A | 1 |\n| B | 2 |\n\n"
        "Meta released Llama 3 in 2024; OpenAI makes GPT-4.\n\n- item: one\n- item: two"
    )
    result = strip_answer(raw)
    assert result.shown == raw
    assert result.report["changes"] == []


def test_report_is_json_serialisable() -> None:
    raw = "<|im_start|>assistant\nI am Claude, made by Anthropic.\r\n<|im_end|>User: hi"
    for policy in POLICIES:
        result = strip_answer(raw, policy=policy, identity_terms=["claude-3"])
        assert json.loads(json.dumps(result.report)) == result.report
        assert set(result.report) >= {"changes", "identity_mentions", "flagged", "policy"}
        for change in _changes(result):
            assert {"kind", "text", "where"} <= set(change)


def test_unknown_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="policy"):
        strip_answer("x", policy="hide")  # type: ignore[arg-type]


def test_maintained_tables_cover_the_required_families() -> None:
    tokens = {t for ts in KNOWN_SPECIAL_TOKENS.values() for t in ts}
    for token in (
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<s>",
        "</s>",
        "[INST]",
        "[/INST]",
        "<<SYS>>",
        "<</SYS>>",
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|end_of_text|>",
        "<|eom_id|>",
        "<start_of_turn>",
        "<end_of_turn>",
        "<eos>",
        "<bos>",
        "<|assistant|>",
        "<|end|>",
        "<|user|>",
        "<|system|>",
        "<｜begin▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        "<｜Assistant｜>",
        "<|START_OF_TURN_TOKEN|>",
        "<|CHATBOT_TOKEN|>",
        "<|END_OF_TURN_TOKEN|>",
        "ASSISTANT:",
        "### Response:",
        "### Instruction:",
        "[|assistant|]",
        "[|endofturn|]",
        "### Assistant:",
        "### User:",
        "<|start|>",
        "<|channel|>",
        "<|message|>",
        "<|return|>",
        "<|call|>",
        "<|constrain|>",
        "<|header_start|>",
        "<|header_end|>",
        "<|eot|>",
        "<|eom|>",
        "<|python_start|>",
        "<|python_end|>",
        "<|start_of_role|>",
        "<|end_of_role|>",
        "<｜User｜>",
        "[SYSTEM_PROMPT]",
        "[/SYSTEM_PROMPT]",
        "<|im_sep|>",
        "<start_of_image>",
        "<end_of_image>",
    ):
        assert token in tokens, token
    lowered = {t.lower() for t in KNOWN_IDENTITY_TERMS}
    for term in ("chatgpt", "claude", "llama", "gemini", "qwen", "openai", "meta", "upstage"):
        assert term in lowered


# ---------------------------------------------------------------------------------------------
# Reasoning traces and gpt-oss harmony


def _traces(result: StripResult) -> list[dict[str, Any]]:
    return [c for c in _changes(result) if c["kind"] == "reasoning_trace"]


@pytest.mark.parametrize(
    ("raw", "shown", "trace"),
    [
        ("<think>\nx = 2\n</think>\n\nIt is 2.", "It is 2.", "<think>\nx = 2\n</think>"),
        ("We need x.\n</think>\n\nIt is 2.", "It is 2.", "We need x.\n</think>"),
        ("<think>\nstill going", "", "<think>\nstill going"),
        ("A. <think>hm</think> B.", "A. B.", "<think>hm</think> "),
        (
            "<|start|>assistant<|channel|>analysis<|message|>hm<|end|>"
            "<|start|>assistant<|channel|>final<|message|>Answer<|return|>",
            "Answer",
            "<|start|>assistant<|channel|>analysis<|message|>hm<|end|>",
        ),
        (
            "analysis<|message|>hm<|end|>final<|message|>Answer",
            "Answer",
            "analysis<|message|>hm<|end|>",
        ),
    ],
)
def test_reasoning_trace_is_removed_and_recorded(raw: str, shown: str, trace: str) -> None:
    result = strip_answer(raw)
    assert result.shown == shown
    assert [c["text"] for c in _traces(result)] == [trace]
    assert json.loads(json.dumps(result.report)) == result.report


def test_harmony_keeps_only_the_final_channel() -> None:
    raw = (
        "<|channel|>analysis<|message|>plan<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json"
        "<|message|>{}<|call|>"
        "<|start|>assistant<|channel|>final<|message|>Done.<|return|>"
    )
    result = strip_answer(raw)
    assert result.shown == "Done."
    assert [c["channel"] for c in _traces(result)] == ["analysis", "commentary"]


def test_think_tags_and_harmony_tokens_in_code_are_text() -> None:
    for raw in (
        "Wrap it in `<think>` … `</think>`.",
        "```\n<think>x</think>\n<|channel|>final<|message|>y<|return|>\n```",
        "The analysis channel is for reasoning; the final one is shown.",
        "Use <think> tags in the prompt.",  # an opener in mid-answer that never closes
    ):
        result = strip_answer(raw)
        assert result.shown == raw
        assert result.report["changes"] == []


def test_role_words_between_header_tokens_go_too() -> None:
    for raw in (
        "<|header_start|>assistant<|header_end|>\n\nHi.<|eot|>",
        "<|start_of_role|>assistant<|end_of_role|>Hi.<|end_of_text|>",
        "<|im_start|>assistant<|im_sep|>Hi.<|im_end|>",
        "<start_of_turn>model\nHi.<end_of_turn>",
        "<｜Assistant｜>Hi.<｜User｜>More?<｜Assistant｜>Sure",
    ):
        assert strip_answer(raw).shown == "Hi.", raw


# Every family of the corpus, the identity cases included: no frame carries what a later
# strip removes or redacts (the hold-back mirrors the identity rules).
# fmt: off
STREAM_FAMILIES = frozenset({
    "alpaca", "chatml_qwen", "command_r", "deepseek", "exaone", "gemma", "gemma3", "gpt_oss",
    "granite", "identity", "llama2", "llama3", "llama4", "mistral", "openchat", "phi3", "phi4",
    "prose_controls", "reasoning", "smollm", "solar", "vicuna", "zephyr",
})
# fmt: on
_CHUNK_RE = re.compile(
    r"<\|[^|<>]{1,40}\|>|<｜[^｜]{1,40}｜>|</?[a-z_]{1,30}>|\[/?[A-Z_]{2,20}\]|\w+|\s+|.", re.S
)


def _split_points(raw: str) -> list[int]:
    """Ends of token-sized chunks, plus points inside each longer chunk (a token split)."""
    ends: set[int] = set()
    for m in _CHUNK_RE.finditer(raw):
        size = len(m.group())
        ends.update({m.start() + 1, m.start() + size // 2, m.end() - 1} if size > 2 else ())
        ends.add(m.end())
    return sorted(e for e in ends if 0 < e <= len(raw))


@pytest.mark.parametrize(
    ("case", "options"), [p for p in CORPUS if str(p.id).split("-")[0] in STREAM_FAMILIES]
)
def test_streamed_frames_are_prefixes_of_the_final_text(
    case: dict[str, Any], options: dict[str, Any]
) -> None:
    raw = case["raw"]
    terms = sorted({t.lower() for t in (*options["identity_terms"], *KNOWN_IDENTITY_TERMS)})
    final = _strip(raw, options).shown
    for end in _split_points(raw):
        prefix = raw[:end]
        pending = start_pending(prefix, leading_trace=case.get("leading_trace", False))
        sent = safe_prefix(_strip(prefix, options).shown, terms, pending=pending)
        assert final.startswith(sent), (prefix, sent)


def test_start_pending_holds_an_echoed_prompt_and_an_open_leading_trace() -> None:
    assert start_pending("<|im_start|>system\nYou are")
    assert not start_pending("<|im_start|>system\nYou are<|im_end|><|im_start|>assistant\nHi")
    assert start_pending("Okay, the user", leading_trace=True)
    assert not start_pending("Okay.</think>Hi", leading_trace=True)
    assert not start_pending("Okay, the user")


# ---------------------------------------------------------------------------------------------
# Self-identification


SELF_IDENTIFICATION = [
    ("I am ChatGPT.", "I am an AI assistant."),
    ("I'm Llama, a model made by Meta. Ask me anything.", "I'm an AI assistant. Ask me anything."),
    ("As an AI developed by OpenAI, I can't browse.", "As an AI, I can't browse."),
    ("As Claude, I have to decline.", "As an AI assistant, I have to decline."),
    ("I'm a large language model trained by Google.", "I'm a large language model."),
    ("I was developed by Meta.", "I was developed by [redacted]."),
    ("My name is Gemma.", "My name is [redacted]."),
    (
        "I am Qwen, a large language model created by Alibaba Cloud.",
        "I am an AI assistant.",
    ),
    ("I’m Claude 3.5 Sonnet, made by Anthropic.", "I’m an AI assistant."),
    ("Hi! I'm Phi-3-mini (made by Microsoft).", "Hi! I'm an AI assistant."),
    ("저는 Claude입니다.", "저는 AI 어시스턴트입니다."),
    ("저는 OpenAI가 개발한 ChatGPT입니다.", "저는 AI 어시스턴트입니다."),
    ("저는 Google에서 훈련한 대규모 언어 모델입니다.", "저는 대규모 언어 모델입니다."),
    ("Google에서 만든 언어 모델입니다.", "언어 모델입니다."),
    ("안녕하세요, 클로드입니다!", "안녕하세요, AI 어시스턴트입니다!"),
    ("저는 LG AI 연구원에서 개발한 EXAONE입니다.", "저는 AI 어시스턴트입니다."),
    (
        "제 이름은 라마이고, 메타가 만들었습니다.",
        "제 이름은 AI 어시스턴트이고, 메타가 만들었습니다.",
    ),
]

NEUTRAL_MENTIONS = [
    "Meta released Llama 3 in 2024.",
    "ChatGPT was developed by OpenAI and launched in 2022.",
    "Models such as Claude, GPT-4 and Gemini are popular.",
    "I think Mistral 7B is a strong small model.",
    "I'm not sure whether Google trained Gemma on code.",
    "As Meta announced, Llama is open-weight.",
    "I am a big fan of the Qwen papers.",
    "I am an AI assistant and I cannot browse Google.",
    "Gemini는 Google에서 개발한 모델입니다.",
    "Meta는 2024년에 Llama 3를 공개했습니다.",
    "저는 Google 검색을 자주 사용합니다.",
    "제가 Meta에서 개발한 Llama에 대해 설명드리겠습니다.",
    "이 드라마는 재미있습니다. 파이썬으로 작성했습니다.",
    "The metadata of the Solar panel is in a .phil file.",
]


@pytest.mark.parametrize(("raw", "expected"), SELF_IDENTIFICATION)
def test_self_identification_is_redacted(raw: str, expected: str) -> None:
    result = strip_answer(raw)
    assert result.shown == expected
    assert _mentions(result)
    assert result.flagged is False
    assert "identity" in result.counts


@pytest.mark.parametrize(("raw", "expected"), SELF_IDENTIFICATION)
def test_self_identification_is_flagged_under_exclude(raw: str, expected: str) -> None:
    del expected
    result = strip_answer(raw, policy="exclude")
    assert result.shown == raw
    assert result.flagged is True
    assert result.report["flagged"] is True
    assert "identity" not in result.counts
    assert _mentions(result)


@pytest.mark.parametrize("raw", NEUTRAL_MENTIONS)
def test_neutral_mentions_are_not_self_identification(raw: str) -> None:
    for policy in POLICIES:
        result = strip_answer(raw, policy=policy)
        assert result.shown == raw
        assert result.flagged is False
        assert _mentions(result) == []


def test_caller_identity_terms_are_detected_case_insensitively() -> None:
    raw = "Hello! I am Arena-Bot-7, your helper. My name is ZEPHYRINE."
    plain = strip_answer(raw)
    assert plain.shown == raw
    result = strip_answer(raw, identity_terms=["arena-bot-7", "Zephyrine"], policy="exclude")
    assert result.flagged
    assert len(_mentions(result)) == 2
    redacted = strip_answer(raw, identity_terms=["arena-bot-7", "Zephyrine"])
    assert redacted.shown == "Hello! I am an AI assistant, your helper. My name is [redacted]."


def test_caller_terms_are_word_boundary_aware() -> None:
    raw = "I am Metallica's biggest fan."
    assert strip_answer(raw, identity_terms=["Metal"]).shown == raw


def test_korean_caller_term_with_particles() -> None:
    raw = "저는 아레나봇입니다. 아레나봇에서 만든 모델입니다."
    result = strip_answer(raw, identity_terms=["아레나봇"], policy="exclude")
    assert result.flagged
    assert len(_mentions(result)) == 2


def test_neutral_caller_terms_cannot_loop_redaction() -> None:
    result = strip_answer("I am ChatGPT.", identity_terms=["AI", "Assistant", "an AI assistant"])
    assert result.shown == "I am an AI assistant."


def test_names_that_are_common_words_need_a_name_use() -> None:
    for raw in (
        "I am a falcon, soaring high.",
        "I'm a Gemini, so I love to talk.",
        "I am solar-powered.",
    ):
        assert strip_answer(raw, policy="exclude").flagged is False
    assert strip_answer("I am Gemini, made by Google.").shown == "I am an AI assistant."


def test_rest_of_a_self_description_sentence_is_redacted() -> None:
    raw = "I am a model trained by a group of people at LMSYS. LMSYS runs Chatbot Arena."
    expected = "I am a model trained by a group of people at [redacted]. LMSYS runs Chatbot Arena."
    assert strip_answer(raw).shown == expected
    short = "I am a language model trained by researchers at LMSYS."
    assert strip_answer(short).shown == "I am a language model."


def test_quoted_speech_of_a_character_is_not_self_identification() -> None:
    for raw in (
        '"I am Claude," said the old baker.',
        "“My name is Gemma,” she whispered.",
        '그는 "저는 클로드입니다"라고 말했다.',
    ):
        assert strip_answer(raw).shown == raw
    assert strip_answer('You can call me "Claude".').shown == 'You can call me "[redacted]".'


def test_identity_inside_code_is_flagged_but_never_edited() -> None:
    # Issue "Anonymity under attack": code is shown verbatim, so identity in it must flag the
    # answer (it was ignored before); it is listed unredacted and the code is kept.
    raw = "Example output:\n\n```\nI am ChatGPT, made by OpenAI.\n```\n\nAnd `I am Claude`."
    for policy in POLICIES:
        result = strip_answer(raw, policy=policy)
        assert result.shown == raw
        assert result.flagged
        assert "identity" not in result.counts
        assert [(m["code"], m["redacted"]) for m in _mentions(result)] == [(True, False)] * 2
    card = "Config:\n\n```yaml\nmodel: gpt-4o\nprovider: OpenAI\n```"
    assert strip_answer(card).shown == card
    assert strip_answer(card).flagged
    api = '```python\nclient.chat.completions.create(model="gpt-4o", messages=msgs)\n```'
    assert not strip_answer(api, policy="exclude").flagged


# ---------------------------------------------------------------------------------------------
# Properties

SAFE_ALPHABET = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHJKLMNOPQRSTUVWXYZ0123456789 .,!?'\"()-;%+=/\n")
    + list("가나다라마바사아자차카타파하한국어입니다는의é")
)

FRAGMENTS = st.sampled_from(
    [
        *sorted({t for ts in KNOWN_SPECIAL_TOKENS.values() for t in ts}),
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|im_start|>user\n",
        "<think>",
        "</think>",
        "<|start|>assistant<|channel|>analysis<|message|>",
        "<|channel|>final<|message|>",
        "analysis",
        "final",
        "```",
        "```python\n",
        "~~~",
        "`",
        "``",
        "\n",
        "\n\n",
        " ",
        "\r\n",
        "\r",
        "Assistant:",
        "User:",
        "assistant\n",
        "user\n",
        "I am ",
        "I'm ",
        "as ",
        ", made by ",
        "Claude",
        "Meta",
        "OpenAI",
        "저는 ",
        "입니다",
        "에서 만든 ",
        "모델입니다",
        "e\u0301",
        "\u0301",
        "ᄒ",
        "ᅡ",
        "ᆫ",
        ".",
        ":",
        "hello world",
        "STOP",
    ]
)

MESSY_TEXT = st.lists(st.one_of(FRAGMENTS, st.text(SAFE_ALPHABET, max_size=8)), max_size=24).map(
    "".join
)


def _safe_text(text: str) -> str:
    return text.strip()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=MESSY_TEXT, policy=st.sampled_from(POLICIES))
@example(raw="<s>a</s><s>", policy="redact")
def test_stripping_is_idempotent(raw: str, policy: Literal["redact", "exclude"]) -> None:
    first = strip_answer(raw, stop=["STOP"], policy=policy)
    second = strip_answer(first.shown, stop=["STOP"], policy=policy)
    assert second.shown == first.shown
    assert second.flagged == first.flagged


def _nfc_lf(raw: str) -> str:
    # The guaranteed bound is against NFC input: NFC of prose may decompose the few
    # composition-excluded characters, and code is never normalised, so the bound is stated
    # for text that already is NFC (as nearly all model output is).
    return unicodedata.normalize("NFC", raw.replace("\r\n", "\n").replace("\r", "\n"))


@settings(max_examples=400, deadline=None)
@given(raw=MESSY_TEXT.map(_nfc_lf))
def test_stripping_never_grows_under_exclude(raw: str) -> None:
    assert len(strip_answer(raw, policy="exclude").shown) <= len(raw)


@settings(max_examples=400, deadline=None)
@given(raw=MESSY_TEXT.map(_nfc_lf))
def test_redaction_growth_is_bounded(raw: str) -> None:
    result = strip_answer(raw)
    redactions = result.counts.get("identity", 0)
    assert len(result.shown) <= len(raw) + MAX_REDACTION_GROWTH * redactions
    if not _mentions(result):
        assert len(result.shown) <= len(raw)


@settings(max_examples=400, deadline=None)
@given(raw=st.text(SAFE_ALPHABET, max_size=200).map(_safe_text))
def test_text_without_artifacts_is_unchanged(raw: str) -> None:
    raw = unicodedata.normalize("NFC", raw)
    result = strip_answer(raw)
    assert result.shown == raw
    assert result.report["changes"] == []


def test_obfuscated_name_is_redacted_whole_in_the_original_text() -> None:
    result = strip_answer("I am GPT\u20114, a model by OpenAI. Ask away.")
    assert result.shown == "I am an AI assistant. Ask away."
    assert _changes(result)[0]["text"] == "GPT\u20114, a model by OpenAI"
    assert strip_answer("Hi, I am Cl\u200baude.").shown == "Hi, I am an AI assistant."


def test_third_person_self_reference_in_several_languages() -> None:
    for raw in (
        "Hi! Claude here.",
        "This is ChatGPT speaking.",
        "Anthropic trained me to help.",
        "Hier spricht Llama.",
        "Te habla Gemini.",
        "OpenAI m'a créé.",
        "这里是Claude。",
        "こちらはClaudeです。",
        "Anthropic이 저를 만들었습니다.",
    ):
        result = strip_answer(raw, policy="exclude")
        assert result.flagged, raw
        assert all(m["code"] is False for m in _mentions(result))


def test_stream_holds_back_a_sentence_that_may_still_become_self_identification() -> None:
    terms = sorted({t.lower() for t in KNOWN_IDENTITY_TERMS})
    assert safe_prefix("Hi! Claude", terms) == "Hi! "
    assert safe_prefix("OK. This is ChatGPT spea", terms) == "OK."
    assert safe_prefix("Ｃｌａｕ", terms) == ""
    assert safe_prefix("私はClaude", terms) == ""
    assert safe_prefix("Name: Mistral\nCreator:", terms) == ""
    assert safe_prefix("Paris is nice. The rest", terms) == "Paris is nice. The rest"
