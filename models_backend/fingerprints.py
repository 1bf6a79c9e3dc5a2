"""Strip chat-template fingerprints and self-identification from a contestant's raw answer.

Contract (DESIGN.md, anonymity invariant 3): ``strip_answer(raw, ...)`` returns the text an
evaluator may see plus a JSON-serialisable audit report of every change. It is pure (no I/O,
no Django), deterministic and idempotent: stripping ``result.shown`` again with the same
options changes nothing. Text outside the artifacts below is never touched.

What counts as code: fenced blocks (``` or ~~~, any indent or ``>`` prefix; a closing fence may
be followed by template tokens on its line; an unclosed fence runs to the end of the text except
a final run of template tokens / stop sequences) and inline code spans (CommonMark backtick
matching, never across a blank line). Every character inside code is kept, except that line
endings become LF everywhere.

Rules, applied to prose (text outside code) and repeated until nothing changes:

1. Line endings become LF; prose becomes Unicode NFC (kinds ``line_endings``, ``unicode_nfc``).
2. An echoed prompt (text that opens with a user/system turn) is dropped up to the first
   assistant-turn marker (``prompt_echo``); without such a marker nothing is dropped.
2a. Reasoning traces go (``reasoning_trace``; the raw text keeps them): ``<think>…</think>``
   anywhere in prose; a leading trace closed by ``</think>`` alone (its opener was in the
   prompt: everything up to the first ``</think>``); an unclosed ``<think>`` at the start
   (the whole answer is a trace, so nothing is shown; an unclosed one mid-answer stays, it
   may be prose). gpt-oss harmony keeps only the ``final`` channel's messages: ``analysis``
   and ``commentary`` messages go whole (the change names the ``channel``), headers and
   ``<|end|>``/``<|return|>``/``<|call|>`` go as special tokens, a ``user`` message is an
   echoed prompt or a hallucinated turn; headers without their first special tokens
   (``analysis<|message|>``, ``<|channel|>final<|message|>``) count too.
3. A hallucinated next turn is cut from its marker to the end (``hallucinated_turn``): a
   user/system turn marker (``<|im_start|>user``, ``<|start_header_id|>user<|end_header_id|>``,
   ``<start_of_turn>user``, ``<|user|>``, ``[INST]``, ``USER:``, ``### Instruction:`` ...) that
   follows an end-of-turn token, or starts a line after some content, or a "user" line glued to
   the previous sentence (Llama 3 decoded without special tokens). A plain-text label
   (``User:``) is not cut when the previous line ends with ":" or starts with a speaker label:
   that is an example dialogue the answer was asked to write.
4. Special tokens (the caller's plus ``KNOWN_SPECIAL_TOKENS``) are removed by exact string,
   together with the role word of header sequences (``<|im_start|>assistant``) (``special_token``).
   Tokens that look like HTML tags (``<s>``, ``</s>``) go only where they are clearly template
   tokens: in a run with another template token; ``<s>`` at the start of the text unless a later
   ``</s>`` in mid-prose closes it; ``<s>`` or ``</s>`` at the end unless that ``</s>`` closes an
   earlier ``<s>word`` (an opener directly followed by text; "the <s> element" only mentions
   one). Elsewhere they are prose: "use the <s> tag", "<s>$20</s> $15" stay. A plain word in the
   caller's token list is ignored: it cannot be an unusual string.
5. At the start (``role_header``, ``whitespace``): role labels (``Assistant:``, ``ASSISTANT:``,
   ``### Response:`` ... unless later lines start with ``User:``: a dialogue script), a bare
   ``assistant``/``model`` line (a header decoded without its special tokens), leading blank
   lines and up to three spaces before the first word. At the end: stop sequences (only there,
   repeated), dangling role labels, trailing whitespace. Inline: an ``assistant`` role word
   glued to the end of a sentence ("...2024.assistant\n\nAnything else?").
6. Self-identification (``identity``; the exact rule heads the Self-identification section): a
   first-person phrase that names a model family or maker ("I am ChatGPT", "I'm Llama, a model
   made by Meta", "As an AI developed by OpenAI", "저는 Claude입니다", "Google에서 만든 언어
   모델입니다"). A neutral mention ("Meta released Llama 3 in 2024", "Gemini는 Google에서 개발한
   모델입니다") is not one. ``redact`` replaces the span with a neutral phrase ("an AI
   assistant", "AI 어시스턴트", "[redacted]", or drops a "made by X" clause); ``exclude`` keeps
   the text and sets ``flagged``. Both list the mentions. Quoted speech ('"I am Claude," said
   the baker') is a character, not the model, and is left alone. Matching runs on a normalised
   view (NFKC, TR39 confusables, format characters and Markdown markers dropped) mapped back to
   the original, so "Ｃｌａｕｄｅ", "Cl<zero-width space>aude", "**Claude**" and "GPT‑4" are
   caught and removed whole; third-person forms ("Claude here", "Anthropic trained me",
   "Name: X" with "Creator: Y") and French, Spanish, German, Japanese and Chinese count too.
   Identity in code is listed (``code`` true, ``redacted`` false) and flags the answer under
   either policy; code is never edited.

Length bound: for NFC input (nearly all model output) the shown text is never longer than the
input, plus at most ``MAX_REDACTION_GROWTH`` characters per ``identity`` change.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from confusable_homoglyphs.confusables import confusables_data  # type: ignore[import-untyped]

from models_backend.identity_terms import (
    COMMON_WORD_TERMS,
    KNOWN_IDENTITY_TERMS,
    NATURE_WORD_TERMS,
    PERSONAL_NAME_TERMS,
)

__all__ = [
    "KNOWN_IDENTITY_TERMS",
    "KNOWN_SPECIAL_TOKENS",
    "MAX_REDACTION_GROWTH",
    "StripResult",
    "asks_identity",
    "named_terms",
    "safe_prefix",
    "start_pending",
    "strip_answer",
]

Policy = Literal["redact", "exclude"]
Change = dict[str, object]

REPORT_VERSION: Final = 1
_MAX_PASSES: Final = 6
_MAX_ROUNDS: Final = 4
_MAX_SENTENCE: Final = 200  # characters searched for the end of a self-description sentence

NEUTRAL_EN: Final = "an AI assistant"
NEUTRAL_KO: Final = "AI 어시스턴트"
REDACTED: Final = "[redacted]"
MAX_REDACTION_GROWTH: Final = max(len(NEUTRAL_EN), len(NEUTRAL_KO), len(REDACTED))


@dataclass(frozen=True)
class StripResult:
    """The text safe to show, the audit report, and whether an exclude policy flagged it.

    ``report``: ``{"version", "policy", "flagged", "changes": [{"kind", "text", "where", ...}],
    "identity_mentions": [{"terms", "text", "lang", "redacted", "code"}]}``; ``where`` is
    "start", "end", "inline" or "all"; identity changes add ``replacement``. Under ``redact``,
    ``flagged`` is set only by identity that could not be redacted (in code).
    """

    shown: str
    report: dict[str, object]
    flagged: bool

    @property
    def counts(self) -> dict[str, int]:
        """Number of recorded changes per kind."""
        counter: Counter[str] = Counter()
        changes = self.report.get("changes")
        if isinstance(changes, list):
            for change in changes:
                if isinstance(change, dict):
                    counter[str(change.get("kind"))] += 1
        return dict(counter)


# The maintained table. Entries ending in ":" are plain-text role labels, stripped only at the
# start/end of an answer (or where they open a hallucinated turn); all others are special
# tokens, removed anywhere outside code.
KNOWN_SPECIAL_TOKENS: Final[dict[str, tuple[str, ...]]] = {
    "chatml_qwen": ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_sep|>"),
    "smollm": ("<|im_start|>", "<|im_end|>", "<|endoftext|>"),
    "llama2": ("<s>", "</s>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<unk>"),
    "llama3": (
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
        "<|eom_id|>",
        "<|python_tag|>",
        "<|finetune_right_pad_id|>",
    ),
    "mistral": (
        "<s>",
        "</s>",
        "<unk>",
        "[INST]",
        "[/INST]",
        "[SYSTEM_PROMPT]",
        "[/SYSTEM_PROMPT]",
        "[TOOL_CALLS]",
        "[AVAILABLE_TOOLS]",
        "[/AVAILABLE_TOOLS]",
        "[TOOL_RESULTS]",
        "[/TOOL_RESULTS]",
    ),
    "gemma": ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<pad>"),
    "phi3": ("<|assistant|>", "<|end|>", "<|user|>", "<|system|>", "<|endoftext|>"),
    "deepseek": (
        "<｜begin▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        "<｜User｜>",
        "<｜Assistant｜>",
        "<｜tool▁calls▁begin｜>",
        "<｜tool▁calls▁end｜>",
        "<｜tool▁call▁begin｜>",
        "<｜tool▁call▁end｜>",
        "<｜tool▁sep｜>",
        "<｜tool▁outputs▁begin｜>",
        "<｜tool▁outputs▁end｜>",
        "<｜tool▁output▁begin｜>",
        "<｜tool▁output▁end｜>",
        "<｜fim▁hole｜>",
        "<｜fim▁begin｜>",
        "<｜fim▁end｜>",
        "<｜▁pad▁｜>",
    ),
    "command_r": (
        "<BOS_TOKEN>",
        "<EOS_TOKEN>",
        "<|START_OF_TURN_TOKEN|>",
        "<|END_OF_TURN_TOKEN|>",
        "<|CHATBOT_TOKEN|>",
        "<|USER_TOKEN|>",
        "<|SYSTEM_TOKEN|>",
        "<|START_RESPONSE|>",
        "<|END_RESPONSE|>",
    ),
    "zephyr": ("<s>", "</s>", "<|assistant|>", "<|user|>", "<|system|>"),
    "vicuna": ("<s>", "</s>", "USER:", "ASSISTANT:"),
    "alpaca": ("</s>", "### Instruction:", "### Input:", "### Response:"),
    "exaone": ("[BOS]", "[|system|]", "[|user|]", "[|assistant|]", "[|endofturn|]"),
    "solar": ("<s>", "</s>", "### System:", "### User:", "### Assistant:"),
    "openchat": ("<|end_of_turn|>", "GPT4 Correct User:", "GPT4 Correct Assistant:"),
    # gpt-oss "harmony": only the final channel's message is an answer (rule 2a).
    "gpt_oss": (
        "<|start|>",
        "<|channel|>",
        "<|message|>",
        "<|end|>",
        "<|return|>",
        "<|call|>",
        "<|constrain|>",
        "<|endoftext|>",
    ),
    "llama4": (
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|header_start|>",
        "<|header_end|>",
        "<|eot|>",
        "<|eom|>",
        "<|python_start|>",
        "<|python_end|>",
        "<|finetune_right_pad|>",
        "<|image_start|>",
        "<|image_end|>",
        "<|image|>",
        "<|patch|>",
    ),
    "granite": (
        "<|start_of_role|>",
        "<|end_of_role|>",
        "<|end_of_text|>",
        "<|tool_call|>",
    ),
    "phi4": ("<|im_start|>", "<|im_sep|>", "<|im_end|>", "<|endoftext|>"),
    "gemma3": (
        "<bos>",
        "<eos>",
        "<start_of_turn>",
        "<end_of_turn>",
        "<start_of_image>",
        "<end_of_image>",
        "<image_soft_token>",
        "<pad>",
    ),
}
# Reasoning-trace tags: not special tokens (an unclosed one mid-answer is kept, rule 2a).
THINK_OPEN: Final = "<think>"
THINK_CLOSE: Final = "</think>"


def _by_length(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items), key=lambda s: (-len(s), s)))


def _is_label(entry: str) -> bool:
    return entry.endswith(":")


def _is_assistant_label(label: str) -> bool:
    low = label.lower()
    return "assistant" in low or "response" in low


_TABLE_ENTRIES: Final = frozenset(t for ts in KNOWN_SPECIAL_TOKENS.values() for t in ts)
_TABLE_TOKENS: Final = frozenset(t for t in _TABLE_ENTRIES if not _is_label(t))
_ASSISTANT_LABELS: Final = _by_length(
    {"Assistant:", "assistant:", "ASSISTANT:", "### ASSISTANT:", "### RESPONSE:"}
    | {t for t in _TABLE_ENTRIES if _is_label(t) and _is_assistant_label(t)}
)
_USER_LABELS: Final = _by_length(
    {"User:", "user:", "USER:", "Human:", "HUMAN:", "### Human:", "### USER:"}
    | {t for t in _TABLE_ENTRIES if _is_label(t) and not _is_assistant_label(t)}
)
_END_TOKENS: Final = frozenset(
    {
        "<|im_end|>",
        "<|endoftext|>",
        "</s>",
        "<|eot_id|>",
        "<|end_of_text|>",
        "<|eom_id|>",
        "<end_of_turn>",
        "<eos>",
        "<|end|>",
        "<｜end▁of▁sentence｜>",
        "<|END_OF_TURN_TOKEN|>",
        "<EOS_TOKEN>",
        "<|END_RESPONSE|>",
        "[|endofturn|]",
        "<|end_of_turn|>",
        "<|return|>",
        "<|call|>",
        "<|eot|>",
        "<|eom|>",
    }
)
# Tokens that may sit between an end-of-turn token and the next turn's role marker.
_TURN_OPENERS: Final = frozenset(
    {
        "<s>",
        "<bos>",
        "<BOS_TOKEN>",
        "<|begin_of_text|>",
        "<｜begin▁of▁sentence｜>",
        "[BOS]",
        "<|START_OF_TURN_TOKEN|>",
    }
)
_ASSISTANT_ROLE_TOKENS: Final = frozenset(
    {"<|assistant|>", "<｜Assistant｜>", "<|CHATBOT_TOKEN|>", "[|assistant|]", "[/INST]"}
)
_USER_ROLE_TOKENS: Final = frozenset(
    {
        "<|user|>",
        "<|system|>",
        "<｜User｜>",
        "<|USER_TOKEN|>",
        "<|SYSTEM_TOKEN|>",
        "[|user|]",
        "[|system|]",
        "[INST]",
        "<<SYS>>",
        "[SYSTEM_PROMPT]",
    }
)
_ANYWHERE_USER_TOKENS: Final = frozenset({"<｜User｜>"})
# fmt: off
_HTML_TAG_NAMES: Final = frozenset({
    "a", "b", "big", "br", "code", "del", "div", "em", "hr", "i", "ins", "kbd", "li", "mark",
    "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "td",
    "th", "tr", "tt", "u", "ul",
})
# fmt: on
_HTML_TOKEN_RE: Final = re.compile(r"<(/?)([a-z][a-z0-9]*)>")

_USER_ROLES: Final = "user|system|tool|function|ipython|developer|human"
# Header sequences whose role name sits between or after special tokens; the role word goes too.
# A header cut off at the end of the text (a stream mid-header) goes whole, so that its partial
# role word is never shown and then taken back.
_PARTIAL_ROLE: Final = r"[^\S\n]*[a-z]{1,12}\Z"
_PARTIAL_HEADER: Final = r"[^<>\n]{0,40}(?:<[|\w]{0,16})?\Z"
_HEADER_SOURCES: Final = (
    rf"<\|start_header_id\|>(?:[^<>\n]{{0,40}}?<\|end_header_id\|>|{_PARTIAL_HEADER})",
    rf"<\|header_start\|>(?:[^<>\n]{{0,40}}?<\|header_end\|>|{_PARTIAL_HEADER})",
    rf"<\|start_of_role\|>(?:[^<>\n]{{0,40}}?<\|end_of_role\|>|{_PARTIAL_HEADER})",
    rf"<\|im_start\|>(?:[^\S\n]*(?:assistant|model|{_USER_ROLES})(?!\w)|{_PARTIAL_ROLE})?",
    rf"<start_of_turn>(?:[^\S\n]*(?:model|assistant|user|system)(?!\w)|{_PARTIAL_ROLE})?",
    rf"<\|start\|>(?:[^\S\n]*(?:assistant|{_USER_ROLES})(?!\w)|{_PARTIAL_ROLE})?",
    rf"<\|channel\|>(?:[^\S\n]*(?:final|analysis|commentary)(?!\w)|{_PARTIAL_ROLE})?",
    r"<\|reserved_special_token_\d+\|>",
)
_USER_HEADER_SOURCE: Final = (
    rf"<\|start_header_id\|>[^\S\n]*(?:{_USER_ROLES})[^\S\n]*<\|end_header_id\|>"
    rf"|<\|header_start\|>[^\S\n]*(?:{_USER_ROLES})[^\S\n]*<\|header_end\|>"
    rf"|<\|start_of_role\|>[^\S\n]*(?:{_USER_ROLES})[^\S\n]*<\|end_of_role\|>"
    rf"|<\|im_start\|>[^\S\n]*(?:{_USER_ROLES})(?!\w)"
    rf"|<\|start\|>[^\S\n]*(?:{_USER_ROLES})(?!\w)"
    r"|<start_of_turn>[^\S\n]*(?:user|system)(?!\w)"
)


def _alt(items: Iterable[str]) -> str:
    return "|".join(re.escape(s) for s in _by_length(items))


def _label_source(labels: Iterable[str]) -> str:
    return "|".join(re.escape(s).replace(r"\ ", r"[^\S\n]*") for s in labels)


_ASSISTANT_LABEL_SOURCE: Final = _label_source(_ASSISTANT_LABELS)
_USER_LABEL_SOURCE: Final = _label_source(_USER_LABELS)
_SPEAKER_LINE_RE: Final = re.compile(
    rf"(?:{_ASSISTANT_LABEL_SOURCE}|{_USER_LABEL_SOURCE}"
    r"|\*\*[^*\n]{1,30}:\*\*|[A-Za-z가-힣][\w .'’-]{0,24}:[^\S\n])"
)
_USER_LABEL_RE: Final = re.compile(_USER_LABEL_SOURCE)
_FIELD_LINE_RE: Final = re.compile(r"[A-Za-z가-힣][\w .'’-]{0,24}:[^\S\n]")
_ROLE_LINE_RE: Final = re.compile(rf"(?:{_ASSISTANT_LABEL_SOURCE}|{_USER_LABEL_SOURCE})")
# Raw output that starts with a user/system turn is an echo of the prompt: the answer starts
# after the first assistant-turn marker.
_ECHO_START_RE: Final = re.compile(
    rf"(?:\s|{_alt(_TURN_OPENERS)})*(?:{_USER_HEADER_SOURCE}|{_alt(_USER_ROLE_TOKENS)}"
    rf"|(?:{_USER_LABEL_SOURCE})(?=\s))"
)
_ASSISTANT_MARKER_RE: Final = re.compile(
    rf"<\|start_header_id\|>[^\S\n]*assistant[^\S\n]*<\|end_header_id\|>"
    rf"|<\|header_start\|>[^\S\n]*assistant[^\S\n]*<\|header_end\|>"
    rf"|<\|start_of_role\|>[^\S\n]*assistant[^\S\n]*<\|end_of_role\|>"
    rf"|<\|start\|>[^\S\n]*assistant(?!\w)"
    rf"|<\|im_start\|>[^\S\n]*assistant(?!\w)|<start_of_turn>[^\S\n]*model(?!\w)"
    rf"|{_alt(_ASSISTANT_ROLE_TOKENS)}|(?:{_ASSISTANT_LABEL_SOURCE})"
)

_LINE_ENDING_RE: Final = re.compile(r"\r\n?")
_FENCE_RE: Final = re.compile(r"[ \t>]*(?P<fence>`{3,}|~{3,})(?P<rest>[^\n]*)")
_BACKTICKS_RE: Final = re.compile(r"`+")
_BLANK_LINE_RE: Final = re.compile(r"\n[ \t]*\n")
# Blank lines, and up to three spaces before the first word (four would make a code block).
_LEADING_BLANK_LINES_RE: Final = re.compile(r"(?:[^\S\n]*\n)+| {1,3}(?=\S)")
_LEADING_WS_RE: Final = re.compile(r"\s+")
_TRAILING_WS_RE: Final = re.compile(r"\s+\Z")
_LEAD_LABEL_RE: Final = re.compile(rf"(?:{_ASSISTANT_LABEL_SOURCE})")
_LATER_USER_LINE_RE: Final = re.compile(rf"\n[^\S\n]*(?:{_USER_LABEL_SOURCE})")
# A header decoded with skip_special_tokens leaves its role word alone on the first line.
_LEAD_ROLE_LINE_RE: Final = re.compile(r"(?:assistant|model)[^\S\n]*\n")
_TRAIL_ASSISTANT_LABEL_RE: Final = re.compile(
    rf"(?:\A|(?<=\n))[^\S\n]*(?:{_ASSISTANT_LABEL_SOURCE})[^\S\n]*\Z"
)
_TRAIL_USER_LABEL_RE: Final = re.compile(
    rf"(?:\A|(?<=\n))[^\S\n]*(?:{_USER_LABEL_SOURCE})[^\S\n]*\Z"
)
_GLUED_PUNCT: Final = r"""[.!?)\]"'*`]"""
_TRAIL_ROLE_WORD_RE: Final = re.compile(rf"(?:(?<=\n)|(?<={_GLUED_PUNCT}))(?:assistant|user)\Z")
# Llama 3 decoded without special tokens: "...in 2024.assistant\n\nIs there anything else".
_GLUED_ASSISTANT_RE: Final = re.compile(rf"(?<={_GLUED_PUNCT})assistant(?=\n)")


@dataclass(frozen=True)
class _Compiled:
    token: re.Pattern[str]
    run: re.Pattern[str]
    lead_junk: re.Pattern[str]
    trail_junk: re.Pattern[str]
    terminal: re.Pattern[str]
    fence_rest: re.Pattern[str]
    cut: re.Pattern[str]
    stops: tuple[str, ...]


@lru_cache(maxsize=64)
def _compile(extra_tokens: tuple[str, ...], stops: tuple[str, ...]) -> _Compiled:
    token_source = "|".join((*_HEADER_SOURCES, _alt(_TABLE_TOKENS | set(extra_tokens))))
    tok = f"(?:{token_source})"
    stop = f"(?:{_alt(stops)})" if stops else "(?!)"
    user_mark = (
        f"(?:{_USER_HEADER_SOURCE}|{_alt(_USER_ROLE_TOKENS)}"
        rf"|(?:{_USER_LABEL_SOURCE})(?=\s|\Z))"
    )
    cut = (
        rf"(?P<after_end>(?:{_alt(_END_TOKENS)})(?:\s*(?:{_alt(_TURN_OPENERS)}))*\s*)"
        rf"(?P<m1>{user_mark})"
        rf"|^[^\S\n]*(?P<m2>{user_mark})"
        rf"|(?P<m3>{_USER_HEADER_SOURCE})"
        rf"|(?<={_GLUED_PUNCT})(?P<m4>user)(?=\n)"
        # Full-width DeepSeek tokens never occur in prose: a user turn wherever it starts.
        rf"|(?P<m5>{_alt(_ANYWHERE_USER_TOKENS)})"
    )
    return _Compiled(
        token=re.compile(tok),
        run=re.compile(rf"{tok}(?:\s*{tok})*"),
        lead_junk=re.compile(rf"(?:\s|{tok}|{_ASSISTANT_LABEL_SOURCE})*"),
        trail_junk=re.compile(
            rf"(?:\s|{tok}|{stop}|{_ASSISTANT_LABEL_SOURCE}|{_USER_LABEL_SOURCE})*"
        ),
        terminal=re.compile(rf"(?:{tok}|{stop})(?:\s*(?:{tok}|{stop}))*\s*\Z"),
        fence_rest=re.compile(rf"[^\S\n]*(?:{tok}|{stop})(?:\s*(?:{tok}|{stop}))*[^\S\n]*"),
        cut=re.compile(cut, re.MULTILINE),
        stops=_by_length(stops),
    )


# ---------------------------------------------------------------------------------------------
# Segmentation: code is kept verbatim, everything else is prose.


@dataclass
class _Seg:
    code: bool
    text: str


def _split_inline(chunk: str) -> list[_Seg]:
    """Split prose into prose and inline code spans (CommonMark backtick-run matching)."""
    runs = [(m.start(), m.end()) for m in _BACKTICKS_RE.finditer(chunk)]
    if len(runs) < 2:
        return [_Seg(False, chunk)]
    blanks = [m.start() for m in _BLANK_LINE_RE.finditer(chunk)]
    following: list[int] = [-1] * len(runs)
    last_of_length: dict[int, int] = {}
    for k in range(len(runs) - 1, -1, -1):
        length = runs[k][1] - runs[k][0]
        following[k] = last_of_length.get(length, -1)
        last_of_length[length] = k
    out: list[_Seg] = []
    pos = 0
    k = 0
    while k < len(runs):
        opener_start, opener_end = runs[k]
        j = following[k]
        if j != -1:
            b = bisect.bisect_left(blanks, opener_end)
            if b < len(blanks) and blanks[b] < runs[j][0]:
                j = -1
        if j == -1:
            k += 1
            continue
        out.append(_Seg(False, chunk[pos:opener_start]))
        out.append(_Seg(True, chunk[opener_start : runs[j][1]]))
        pos = runs[j][1]
        k = j + 1
    out.append(_Seg(False, chunk[pos:]))
    return out


def _append(segs: list[_Seg], seg: _Seg) -> None:
    if not seg.text:
        return
    if segs and not segs[-1].code and not seg.code:
        segs[-1].text += seg.text
    else:
        segs.append(seg)


def _segment(text: str, ctx: _Compiled) -> list[_Seg]:
    """Split text into alternating prose and code segments (fenced blocks, inline spans)."""
    segs: list[_Seg] = []
    prose_start = 0
    fence: tuple[str, int, int] | None = None  # (char, length, start of the opening line)
    pos = 0
    n = len(text)
    while pos < n:
        newline = text.find("\n", pos)
        line_end = n if newline < 0 else newline
        m = _FENCE_RE.fullmatch(text, pos, line_end)
        if fence is None:
            if m and not (m["fence"][0] == "`" and "`" in m["rest"]):
                for seg in _split_inline(text[prose_start:pos]):
                    _append(segs, seg)
                fence = (m["fence"][0], len(m["fence"]), pos)
        elif m and m["fence"][0] == fence[0] and len(m["fence"]) >= fence[1]:
            rest = m["rest"]
            code_end = -1
            if not rest.strip():
                code_end = line_end
            elif ctx.fence_rest.fullmatch(rest):
                code_end = m.start("rest")
            if code_end >= 0:
                _append(segs, _Seg(True, text[fence[2] : code_end]))
                prose_start = code_end
                fence = None
        pos = line_end + 1
    if fence is None:
        for seg in _split_inline(text[prose_start:]):
            _append(segs, seg)
        return segs
    # Unclosed fence: it runs to the end, but a final run of template tokens / stop sequences
    # is where generation stopped, not code.
    start = fence[2]
    first_newline = text.find("\n", start)
    tail = None if first_newline < 0 else ctx.terminal.search(text, first_newline)
    if tail is None:
        _append(segs, _Seg(True, text[start:]))
    else:
        _append(segs, _Seg(True, text[start : tail.start()]))
        _append(segs, _Seg(False, text[tail.start() :]))
    return segs


def _join(segs: list[_Seg]) -> str:
    return "".join(s.text for s in segs)


# ---------------------------------------------------------------------------------------------
# Template artifacts.


def _record(changes: list[Change], kind: str, text: str, where: str) -> None:
    if text:
        changes.append({"kind": kind, "text": text, "where": where})


def _normalise_prose(segs: list[_Seg], changes: list[Change]) -> None:
    for seg in segs:
        if seg.code:
            continue
        normal = unicodedata.normalize("NFC", seg.text)
        if normal == seg.text:
            continue
        # Record only the stretch that changed, not the whole prose.
        head = 0
        limit = min(len(normal), len(seg.text))
        while head < limit and normal[head] == seg.text[head]:
            head += 1
        tail = 0
        while tail < limit - head and normal[len(normal) - 1 - tail] == seg.text[-1 - tail]:
            tail += 1
        changes.append(
            {
                "kind": "unicode_nfc",
                "text": seg.text[head : len(seg.text) - tail],
                "where": "inline",
                "to": normal[head : len(normal) - tail],
            }
        )
        seg.text = normal


def _cut_prompt_echo(segs: list[_Seg], changes: list[Change]) -> None:
    """Drop an echoed prompt: text that opens with a user/system turn, up to and including the
    first assistant-turn marker (the answer follows it). Without such a marker, keep all."""
    if not segs or segs[0].code or not _ECHO_START_RE.match(segs[0].text):
        return
    for i, seg in enumerate(segs):
        if seg.code:
            continue
        marker = _ASSISTANT_MARKER_RE.search(seg.text)
        if marker is not None:
            end = len(seg.text) - len(seg.text[marker.end() :].lstrip())
            _record(changes, "prompt_echo", _join(segs[:i]) + seg.text[:end], "start")
            seg.text = seg.text[end:]
            del segs[:i]
            return


def _cut_hallucinated_turn(segs: list[_Seg], ctx: _Compiled, changes: list[Change]) -> None:
    """Cut from the first marker that opens a next (user/system) turn to the end."""
    prefix = ""
    for i, seg in enumerate(segs):
        if seg.code:
            prefix += seg.text
            continue
        for m in ctx.cut.finditer(seg.text):
            group = next(g for g in ("m1", "m2", "m3", "m4", "m5") if m[g] is not None)
            start = m.start(group)
            before = prefix + seg.text[: m.start()]
            if not before.strip():
                continue
            if group == "m2":
                line_prefix = prefix + seg.text[:start]
                if not line_prefix.rstrip(" \t").endswith("\n"):
                    continue
                if _USER_LABEL_RE.fullmatch(m[group]) and (
                    _looks_like_dialogue(line_prefix) or _looks_like_field_list(seg.text, start)
                ):
                    continue
            _record(changes, "hallucinated_turn", seg.text[start:] + _join(segs[i + 1 :]), "end")
            seg.text = seg.text[:start]
            del segs[i + 1 :]
            return
        prefix += seg.text


def _looks_like_dialogue(prefix: str) -> bool:
    """True when the line before a plain "User:" label introduces or continues a dialogue."""
    previous = prefix.rstrip().rsplit("\n", 1)[-1].strip()
    return previous.endswith(":") or bool(_SPEAKER_LINE_RE.match(previous))


def _looks_like_field_list(text: str, start: int) -> bool:
    """True when the line after "User: ..." is another "Name: ..." line that is no role label,
    as in "User: can read\nAdmin: can write"."""
    newline = text.find("\n", start)
    if newline < 0:
        return False
    following = text[newline + 1 :].lstrip("\n").split("\n", 1)[0].strip()
    return bool(_FIELD_LINE_RE.match(following)) and not _ROLE_LINE_RE.match(following)


def _html_tag(token: str) -> tuple[str, bool] | None:
    m = _HTML_TOKEN_RE.fullmatch(token)
    if m is None or m[2] not in _HTML_TAG_NAMES:
        return None
    return m[2], m[1] == "/"


def _has_mid_prose_closer(segs: list[_Seg], i: int, pos: int, tag: str, ctx: _Compiled) -> bool:
    """Whether a later ``</tag>`` in prose is followed by more content (so it closes HTML)."""
    closer = f"</{tag}>"
    last = len(segs) - 1
    for j in range(i, len(segs)):
        seg = segs[j]
        if seg.code:
            continue
        start = pos if j == i else 0
        at = seg.text.find(closer, start)
        while at >= 0:
            rest = seg.text[at + len(closer) :]
            if j != last or not ctx.trail_junk.fullmatch(rest):
                return True
            at = seg.text.find(closer, at + 1)
    return False


def _remove_tokens(segs: list[_Seg], ctx: _Compiled, changes: list[Change]) -> None:
    """Remove special-token runs from prose, keeping HTML-like ``<s>``/``</s>`` in prose."""
    last = len(segs) - 1
    open_tags: Counter[str] = Counter()
    for i, seg in enumerate(segs):
        if seg.code:
            continue
        text = seg.text
        out: list[str] = []
        pos = 0
        leading = i == 0  # nothing but template junk seen so far
        while True:
            m = ctx.run.search(text, pos)
            if m is None:
                break
            out.append(text[pos : m.start()])
            leading = leading and ctx.lead_junk.fullmatch(out[-1]) is not None
            at_start = leading
            at_end = i == last and ctx.trail_junk.fullmatch(text, m.end()) is not None
            found = list(ctx.token.finditer(text, m.start(), m.end()))
            tokens = [t.group() for t in found]
            has_other = any(_html_tag(t) is None for t in tokens)
            kept: list[str] = []
            for t in found:
                html = _html_tag(t.group())
                if html is None:
                    continue
                tag, closer = html
                if has_other:
                    continue
                if closer:
                    # "<s>old</s>" closes an HTML element; "with </s> as usual" mentions one.
                    if open_tags[tag] > 0 and not text[t.start() - 1 : t.start()].isspace():
                        open_tags[tag] -= 1
                        kept.append(t.group())
                    elif not at_end:
                        kept.append(t.group())
                elif not at_end and not (
                    at_start and not _has_mid_prose_closer(segs, i, m.end(), tag, ctx)
                ):
                    if text[t.end() : t.end() + 1].strip():
                        open_tags[tag] += 1
                    kept.append(t.group())
            end = m.end()
            if kept:
                spaced = any(c.isspace() for c in m.group())
                replacement = (" " if spaced else "").join(kept)
                if replacement == m.group():
                    out.append(replacement)
                    pos = end
                    continue
            else:
                if at_start:
                    # Whitespace after a leading header is template whitespace too.
                    end = len(text) - len(text[end:].lstrip())
                left = next((o[-1] for o in reversed(out) if o), _previous_char(segs, i))
                if left in (" ", "\t"):
                    # "a <tok> b" becomes "a b", not "a  b".
                    while text[end : end + 1] in (" ", "\t"):
                        end += 1
                right = text[end : end + 1] or _next_char(segs, i)
                replacement = _separator(left, right, m.group(), tokens)
            where = "start" if at_start else "end" if at_end else "inline"
            _record(changes, "special_token", text[m.start() : end], where)
            out.append(replacement)
            pos = end
        out.append(text[pos:])
        seg.text = "".join(out)


def _previous_char(segs: list[_Seg], i: int) -> str:
    return segs[i - 1].text[-1:] if i > 0 else ""


def _next_char(segs: list[_Seg], i: int) -> str:
    return segs[i + 1].text[:1] if i + 1 < len(segs) else ""


def _separator(left: str, right: str, removed: str, tokens: list[str]) -> str:
    """What replaces a removed token run so that the words around it do not fuse."""
    if not left or not right or left.isspace() or right.isspace():
        return ""
    if "\n" in removed or any(t in _END_TOKENS for t in tokens):
        return "\n"
    if any(c.isspace() for c in removed):
        return " "
    return ""


def _strip_leading(segs: list[_Seg], changes: list[Change]) -> None:
    if not segs or segs[0].code:
        return
    seg = segs[0]
    removed_artifact = False
    while True:
        label = _LEAD_LABEL_RE.match(seg.text) or _LEAD_ROLE_LINE_RE.match(seg.text)
        if label and _LATER_USER_LINE_RE.search(seg.text, label.end()):
            # "Assistant: Hi\nUser: ..." is a dialogue the answer writes, not a leaked header.
            label = None
        if label and label.end() > 0:
            _record(changes, "role_header", label.group(), "start")
            seg.text = seg.text[label.end() :]
            removed_artifact = True
            continue
        ws = (_LEADING_WS_RE if removed_artifact else _LEADING_BLANK_LINES_RE).match(seg.text)
        if ws:
            _record(changes, "whitespace", ws.group(), "start")
            seg.text = seg.text[ws.end() :]
            continue
        return


def _strip_trailing(segs: list[_Seg], ctx: _Compiled, changes: list[Change]) -> None:
    if not segs or segs[-1].code:
        return
    seg = segs[-1]
    while True:
        text = seg.text
        ws = _TRAILING_WS_RE.search(text)
        if ws:
            _record(changes, "whitespace", ws.group(), "end")
            seg.text = text[: ws.start()]
            continue
        stop = next((s for s in ctx.stops if text.endswith(s)), None)
        if stop is not None:
            _record(changes, "stop_sequence", stop, "end")
            seg.text = text[: -len(stop)]
            continue
        m = _TRAIL_ASSISTANT_LABEL_RE.search(text) or _TRAIL_ROLE_WORD_RE.search(text)
        if m:
            _record(changes, "role_header", m.group(), "end")
            seg.text = text[: m.start()]
            continue
        m = _TRAIL_USER_LABEL_RE.search(text)
        if m and text[: m.start()].strip():
            _record(changes, "hallucinated_turn", m.group(), "end")
            seg.text = text[: m.start()]
            continue
        return


def _remove_glued_roles(segs: list[_Seg], changes: list[Change]) -> None:
    for seg in segs:
        if seg.code:
            continue
        for m in _GLUED_ASSISTANT_RE.finditer(seg.text):
            _record(changes, "role_header", m.group(), "inline")
        seg.text = _GLUED_ASSISTANT_RE.sub("", seg.text)


# ---------------------------------------------------------------------------------------------
# Reasoning traces (rule 2a): removed from what is shown; the raw text keeps them.

_THINK_RE: Final = re.compile(rf"{re.escape(THINK_OPEN)}|{re.escape(THINK_CLOSE)}")
_HARMONY_TOKEN_RE: Final = re.compile(r"<\|(?:start|channel|message|end|return|call)\|>")
_HARMONY_TERMINATORS: Final = frozenset({"<|end|>", "<|return|>", "<|call|>"})
_HARMONY_OPENERS: Final = frozenset({"<|start|>", "<|channel|>"})
_HARMONY_USER_ROLES: Final = frozenset({"user", "system", "developer"})
# A message header: "<|start|>assistant<|channel|>analysis<|message|>", or what vLLM returns
# without its first special tokens ("analysis<|message|>", "<|channel|>final<|message|>").
_HARMONY_HEADER_RE: Final = re.compile(
    r"\s*(?:<\|start\|>[^\S\n]*(?P<role>[^\s<>]{1,60})?|(?P<bare>[a-z][\w.-]{0,40}))?"
    r"(?:[^\S\n]+to=[^\s<>]{1,80})?[^\S\n]*"
    r"(?:<\|channel\|>[^\S\n]*(?P<channel>[A-Za-z]\w{0,30})?[^<>\n]{0,80}?)?"
    r"(?:<\|constrain\|>[^<>\n]{0,40}?)?"
    r"<\|message\|>"
)
# A header the text ends in (a stream stopped mid-header).
_HARMONY_PARTIAL_RE: Final = re.compile(
    r"\s*(?:<\|start\|>[^<>\n]{0,60}|[a-z][\w.-]{0,40})?(?:<\|channel\|>[^<>\n]{0,80})?"
    r"(?:<\|constrain\|>[^<>\n]{0,40})?(?:<[|\w]{0,16})?\Z"
)
# The channel word of a bare header glued before "<|message|>" in mid-text.
_HARMONY_BARE_TAIL_RE: Final = re.compile(r"(?:(?<![^\s>])[a-z][\w.-]{0,40})?[^\S\n]*\Z")

_Removal = tuple[int, int, str, dict[str, object]]


@dataclass(frozen=True)
class _Msg:
    start: int  # header start
    body: int  # content start
    stop: int  # content end
    end: int  # after the terminator
    role: str
    channel: str
    partial: bool = False


def _ranges(segs: list[_Seg]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    prose: list[tuple[int, int]] = []
    code: list[tuple[int, int]] = []
    pos = 0
    for seg in segs:
        (code if seg.code else prose).append((pos, pos + len(seg.text)))
        pos += len(seg.text)
    return prose, code


def _crosses(start: int, end: int, code: list[tuple[int, int]]) -> bool:
    return any(a < end and start < b for a, b in code)


def _prose_tokens(
    text: str, pattern: re.Pattern[str], prose: list[tuple[int, int]]
) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for a, b in prose for m in pattern.finditer(text, a, b)]


def _harmony_messages(
    text: str, tokens: list[tuple[int, int, str]], code: list[tuple[int, int]]
) -> list[_Msg]:
    """Split harmony output into messages; text outside any header is a message of no role."""
    msgs: list[_Msg] = []
    pos, n = 0, len(text)
    message_at = {s for s, _, t in tokens if t == "<|message|>"}
    while pos < n:
        header = _HARMONY_HEADER_RE.match(text, pos)
        if header and (
            header.end() - len("<|message|>") not in message_at or _crosses(pos, header.end(), code)
        ):
            header = None
        if header is None:
            partial = _HARMONY_PARTIAL_RE.match(text, pos)
            if partial and partial.group().strip() and not _crosses(pos, n, code):
                msgs.append(_Msg(pos, n, n, n, "", "", partial=True))
                return msgs
        body = header.end() if header else pos
        nxt = next((tok for tok in tokens if tok[0] >= body and (tok[0] > pos or header)), None)
        if nxt is None:
            stop = end = n
        elif nxt[2] in _HARMONY_TERMINATORS:
            stop, end = nxt[0], nxt[1]
        elif nxt[2] in _HARMONY_OPENERS:
            stop = end = nxt[0]
        else:  # "<|message|>" of a bare header: "…<|end|>final<|message|>"
            tail = _HARMONY_BARE_TAIL_RE.search(text, body, nxt[0])
            stop = end = tail.start() if tail else nxt[0]
            if end <= pos:
                stop = end = nxt[1]
        role, channel = "", ""
        if header:
            role = header["role"] or ""
            channel = header["channel"] or ""
            if header["bare"]:
                role, channel = ("", header["bare"]) if not channel else (header["bare"], channel)
        msgs.append(_Msg(pos, body, stop, end, role, channel))
        pos = max(end, pos + 1)
    return msgs


def _harmony_spans(text: str, segs: list[_Seg]) -> list[_Removal]:
    """Keep only the final channel's messages (and text outside any header)."""
    if "<|message|>" not in text and "<|channel|>" not in text:
        return []
    prose, code = _ranges(segs)
    tokens = _prose_tokens(text, _HARMONY_TOKEN_RE, prose)
    if not any(t in ("<|message|>", "<|channel|>") for _, _, t in tokens):
        return []
    spans: list[_Removal] = []
    kept = False
    for m in _harmony_messages(text, tokens, code):
        if m.partial:
            spans.append((m.start, m.end, "special_token", {}))
        elif m.role in _HARMONY_USER_ROLES:
            if kept:
                spans.append((m.start, len(text), "hallucinated_turn", {}))
                break
            spans.append((m.start, m.end, "prompt_echo", {}))
        elif m.channel == "final" or (not m.channel and m.role in ("", "assistant")):
            spans.append((m.start, m.body, "special_token", {}))
            spans.append((m.stop, m.end, "special_token", {}))
            kept = kept or bool(text[m.body : m.stop].strip())
        else:
            channel = m.channel or m.role
            spans.append((m.start, m.end, "reasoning_trace", {"channel": channel}))
    return spans


def _think_spans(text: str, segs: list[_Seg], ctx: _Compiled) -> list[_Removal]:
    """``<think>…</think>`` outside code; a leading trace closed by ``</think>`` alone; an
    unclosed ``<think>`` at the start (the whole answer is a trace). Stray closers go."""
    if "think>" not in text:
        return []
    prose, code = _ranges(segs)
    tokens = _prose_tokens(text, _THINK_RE, prose)
    spans: list[_Removal] = []
    i = 0
    if tokens and tokens[0][2] == THINK_CLOSE:
        spans.append((0, tokens[0][1], "reasoning_trace", {}))
        i = 1
    while i < len(tokens):
        start, end, tag = tokens[i]
        if tag == THINK_CLOSE:
            spans.append((start, end, "special_token", {}))
            i += 1
            continue
        close = next((j for j in range(i + 1, len(tokens)) if tokens[j][2] == THINK_CLOSE), None)
        if close is None:
            at_start = not _crosses(0, start, code) and ctx.lead_junk.fullmatch(text, 0, start)
            if not spans and at_start:
                spans.append((start, len(text), "reasoning_trace", {}))
            # An opener in mid-answer that never closes is kept: it may be prose.
            break
        spans.append((start, tokens[close][1], "reasoning_trace", {}))
        i = close + 1
    return spans


def _apply_spans(text: str, spans: list[_Removal], changes: list[Change]) -> str:
    out: list[str] = []
    pos = 0
    left = ""
    for start, end, kind, extra in spans:
        if end <= start or start < pos:
            continue
        out.append(text[pos:start])
        left = text[start - 1] if start > 0 and text[pos:start] else left
        if left in (" ", "\t"):
            while text[end : end + 1] in (" ", "\t"):
                end += 1
        removed = text[start:end]
        separator = _separator(left, text[end : end + 1], removed, [])
        where = (
            "start" if not "".join(out).strip() else "end" if not text[end:].strip() else "inline"
        )
        changes.append({"kind": kind, "text": removed, "where": where, **extra})
        out.append(separator)
        left = separator or left
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _remove_reasoning(segs: list[_Seg], ctx: _Compiled, changes: list[Change]) -> str | None:
    """Remove reasoning traces and gpt-oss non-final channels; None when there are none."""
    text = _join(segs)
    new = text
    spans = _harmony_spans(new, segs)
    if spans:
        new = _apply_spans(new, spans, changes)
        segs = _segment(new, ctx)
    spans = _think_spans(new, segs, ctx)
    if spans:
        new = _apply_spans(new, spans, changes)
    return None if new == text else new


def _template_pass(text: str, ctx: _Compiled, changes: list[Change]) -> str:
    segs = _segment(text, ctx)
    _normalise_prose(segs, changes)
    reasoned = _remove_reasoning(segs, ctx, changes)
    if reasoned is not None:
        segs = _segment(reasoned, ctx)
    _cut_prompt_echo(segs, changes)
    _cut_hallucinated_turn(segs, ctx, changes)
    _remove_tokens(segs, ctx, changes)
    _remove_glued_roles(segs, changes)
    _strip_leading(segs, changes)
    _strip_trailing(segs, ctx, changes)
    return _join(segs)


def _strip_templates(text: str, ctx: _Compiled, changes: list[Change]) -> str:
    for _ in range(_MAX_PASSES):
        new = _template_pass(text, ctx, changes)
        if new == text:
            break
        text = new
    return text


# ---------------------------------------------------------------------------------------------
# Self-identification.
#
# Rule: a mention counts only inside a first-person self-description —
#   English: a cue ("I am", "I'm", "I was", "I've been", "you're talking to", "my name is",
#   "call me", "I go by", "my creators are", or a clause-initial "as") followed, within the
#   same clause, by a chain of words drawn only from a small self-description vocabulary
#   ("a large language model", "called", "version of", "made by", "trained by", "based on",
#   "from" ...) and identity terms. "As ..." also needs an AI noun or a following ", I".
#   Korean: a first-person subject (저는/제가/나는/제 이름은 ...) with, in the same sentence, a
#   term followed by a copula (입니다/이에요/이며/라고 ...) or by a maker particle and a creation
#   verb (에서 개발한, 가 만든, 에 의해 훈련되었습니다); or, with no subject, a sentence that
#   opens with "<maker>에서 만든 ..." and ends in "<AI noun>입니다", or a greeting followed by
#   "<term>입니다".
# Anything else — "Meta released Llama 3", "I think Claude is good", "Gemini는 Google에서 개발한
# 모델입니다" — is a neutral mention and left alone.

_TERM_PART_RE: Final = re.compile(r"[^\W_]+|[^\w\s_-]")
_WORD_RE: Final = re.compile(r"\w+")
_TRAILING_THE_RE: Final = re.compile(r"\bthe[^\S\n]+\Z", re.IGNORECASE)
_INDEFINITE_ARTICLE_RE: Final = re.compile(r"\ban?[^\S\n]+\Z", re.IGNORECASE)
_FIRST_WORD_RE: Final = re.compile(r"[^\W\d_]+")
_COMMON_WORDS: Final = frozenset(t.casefold() for t in COMMON_WORD_TERMS)
_KO_ADNOMINAL_RE: Final = re.compile(r"[한된든진][^\S\n]*\Z")
_HANGUL: Final = "가-힣"
_HANGUL_END_RE: Final = re.compile(f"[{_HANGUL}]$")
_KO_PARTICLE_AHEAD: Final = (
    "가|이|은|는|을|를|의|에|와|과|로|으로|도|만|입|예요|야|라|랑|팀|사|처럼|보다|께|기반|계열|모델"
)
_VARIANT: Final = (
    r"(?:[ _-]?v?\d+(?:\.\d+)*[a-z]?(?:[-_]?\d+(?:\.\d+)?[a-z]?)*"
    r"|[-_][a-z]+\d*"
    r"|[^\S\n]?\+"
    r"|[^\S\n]+(?:sonnet|opus|haiku|instruct|chat|pro|flash|ultra|nano|mini|turbo|plus|large"
    r"|small|medium|coder|vision|omni|max|lite|preview|thinking|reasoner|nemo|cloud|ai|team"
    r"|research|labs?|inc\.?|corp(?:oration)?\.?|platforms|deepmind|instant|advanced|guard"
    r"|experimental|exp|scout|maverick|behemoth)(?![A-Za-z0-9]))*+"
)
_DESC_WORDS: Final = (
    "a|an|the|this|ai|a\\.i\\.|artificial|intelligence|large|small|big|language|llm|llms|model"
    "|models|assistant|chatbot|chat|bot|helpful|friendly|conversational|virtual|digital"
    "|multimodal|multilingual|open|open-source|open-weight|open-weights|source|generative"
    "|instruction-tuned|instruct|instruction|tuned|text-based|neural|network|system|program"
    "|agent|version|variant|family|series|member|product|creation|one|of|latest|new|newest"
    "|advanced|powerful|just|simply|actually|really|also|here|your|personal|research|lab"
    "|called|named|known|as|team|company|researchers|engineers|developers|architecture"
    "|technology|platform|edition|release|iteration|generation|checkpoint"
)
_LINK_VERBS: Final = (
    "made|developed|created|trained|built|designed|programmed|released|fine-tuned|finetuned"
    "|pre-trained|pretrained|engineered|produced|owned|maintained|operated|powered|provided"
    "|launched|published|introduced|brought|derived|distilled|based"
)
_LINK_WORDS: Final = f"{_LINK_VERBS}|by|on|upon|from|at|to|you"
_LINK_PHRASE_RE: Final = re.compile(
    rf"\b(?:(?:{_LINK_VERBS})(?:[^\S\n]+to[^\S\n]+you)?[^\S\n]+(?:by|on|upon|from|at)"
    r"|from|at|by)\b",
    re.IGNORECASE,
)
_AI_NOUN_RE: Final = re.compile(
    r"\b(?:ai|a\.i\.|assistant|model|llm|chatbot|bot|language)\b", re.IGNORECASE
)
_EN_CUES: Final = (
    r"(?P<cop>\bI[^\S\n]+am\b|\bI['’]m\b|\bI[^\S\n]+was\b|\bI['’]ve[^\S\n]+been\b"
    r"|\bI[^\S\n]+have[^\S\n]+been\b"
    r"|\byou(?:['’]re|[^\S\n]+are)[^\S\n]+(?:talking|chatting|speaking)[^\S\n]+(?:to|with)\b)"
    r"|(?P<name>\bmy[^\S\n]+name(?:[^\S\n]+is|['’]s)\b|\bcall[^\S\n]+me\b"
    r"|\bI[^\S\n]+go[^\S\n]+by\b|\bI[^\S\n]+belong[^\S\n]+to\b"
    r"|\brefer[^\S\n]+to[^\S\n]+me[^\S\n]+as\b)"
    r"|(?P<poss>\bmy[^\S\n]+(?:creators?|developers?|makers?|parent[^\S\n]+company|company"
    r"|authors?|trainers?|builders?|designers?|origins?)"
    r"(?:[^\S\n]+(?:is|are|was|were|include|includes))?\b)"
    r"|(?P<as>(?:^|(?<=[\n(\[\"'“])|(?<=[.!?;:,(\-*>\"'“][^\S\n]))as\b)"
)
_SEP: Final = r"(?:[^\S\n]*[,(\u2013\u2014\"“”‘][^\S\n]*|[^\S\n]+)"
_CHAIN_SEPARATORS: Final = ' \t,(\u2013\u2014"“”‘'
_EN_SENTENCE_END_RE: Final = re.compile(r"[.!?](?=\s|\Z)|\n")
_AFTER_AS_RE: Final = re.compile(r"[^\S\n]*,[^\S\n]*(?:I|my|me)\b")
_MODIFIED_NOUN_RE: Final = re.compile(
    r"[^\S\n]+(?!(?:and|or|but|so|nor|yet|that|who|which|here|to|for|with|in|on|at|now|today"
    r"|speaking|again|too|as|if|because|since|not|only|from|by)\b)[a-z]"
)

_KO_SELF_RE: Final = re.compile(
    rf"(?<![{_HANGUL}A-Za-z0-9])(?:저는|저도|제가|나는|내가|저[^\S\n]*역시|저[^\S\n]*또한"
    rf"|제[^\S\n]*이름은|내[^\S\n]*이름은|저의[^\S\n]*이름은|저를)(?![{_HANGUL}])"
)
_KO_SENTENCE_END_RE: Final = re.compile(r"[!?。\n]|\.(?!\d)")
_KO_COPULA: Final = (
    r"입니다|이에요|예요|이야|야(?![가-힣])|이라고|라고|라는|이라는|이며|이고|이자|으로서|로서"
    r"|랍니다|이랍니다|입니당|임(?![가-힣])|이죠|죠|이지요"
)
_KO_DESC: Final = (
    r"(?:[^\S\n]*(?:기반|계열|의|AI|인공지능|대규모|대형|언어|모델|어시스턴트|챗봇|비서"
    r"|시리즈|버전)){0,5}?"
)
_KO_CREATE: Final = (
    r"(?:개발|만들|만든|만들어|훈련|학습|제작|설계|구축|창조|출시|공개|생성|트레이닝"
    r"|파인[^\S\n]*튜닝|미세[^\S\n]*조정)[가-힣]*"
)
_KO_MAKER_TAIL: Final = (
    r"[^\S\n]*(?:에[^\S\n]*의해서?|에서는|에서|이|가|의|팀이|팀에서|팀의|사가|사에서|사의"
    r"|연구원이|연구원에서|연구소에서)[^\S\n]*" + _KO_CREATE + r"[^\S\n]*"
    r"|[^\S\n]*기반(?:의|으로|인)?[^\S\n]*"
)
_KO_NAME_TAIL_RE: Final = re.compile(rf"{_KO_DESC}(?=[^\S\n]*(?:{_KO_COPULA}))")
_KO_MAKER_TAIL_RE: Final = re.compile(_KO_MAKER_TAIL)
_KO_PREDICATE_RE: Final = re.compile(rf"(?:{_KO_COPULA}|되었|됐|졌|되어|돼|되었습니다)")
_KO_PASSIVE_RE: Final = re.compile(r"(?:되었|됐|졌|되어|돼)")
_KO_SENTENCE_START: Final = r"(?:^|(?<=[.!?。\n])|(?<=[.!?。][^\S\n]))[^\S\n]*"
_KO_GREETING: Final = r"(?:안녕하세요|안녕|반갑습니다|반가워요|네|예)[!,.~]*[^\S\n]*"
_KO_AI_COPULA_RE: Final = re.compile(
    r"[^.!?\n]{0,40}?(?:AI|인공지능|어시스턴트|언어[^\S\n]*모델|모델|챗봇|비서|LLM)[^\S\n]*"
    r"(?:입니다|이에요|예요|이야|임(?![가-힣])|이죠|이랍니다|랍니다)"
)
_KO_CALLED_RE: Final = re.compile(
    r"[^\S\n]*(?:이라고|라고)[^\S\n]*(?:합니다|해요|불러|부릅니다|불립니다)"
)

# Caller terms that would match our own neutral replacements are ignored, or redaction would
# never reach a fixed point.
_NEUTRAL_WORDS: Final = frozenset(
    {
        "ai",
        "a.i.",
        "assistant",
        "an ai assistant",
        "ai assistant",
        "model",
        "redacted",
        "[redacted]",
        "어시스턴트",
        "ai 어시스턴트",
        "chatbot",
        "llm",
        "language model",
        "the",
        "an",
        "i",
        "me",
        "my",
    }
)


def _term_source(term: str) -> str:
    return r"[\s_-]*".join(re.escape(p) for p in _TERM_PART_RE.findall(term))


def _latin_term_source(term: str) -> str:
    source = _term_source(term)
    if term in COMMON_WORD_TERMS:
        # "solar", "zephyr", "gemini" are words too: as a model name they are capitalised.
        return f"(?-i:{source[0]}){source[1:]}"
    return source


_NOUN_ARTICLE_RE: Final = re.compile(r"\b(?:an?|the)[^\S\n]+\Z", re.IGNORECASE)
_NATURE_WORDS: Final = frozenset(t.casefold() for t in NATURE_WORD_TERMS)
_PERSON_WORDS: Final = frozenset(t.casefold() for t in PERSONAL_NAME_TERMS)
_TERM_FIRST_WORDS: Final = frozenset(
    w.group().casefold() for t in KNOWN_IDENTITY_TERMS if (w := _FIRST_WORD_RE.match(t))
)
_NEXT_NAME_RE: Final = re.compile(r"[^\S\n]+([A-Z][^\W\d_]+)")


def _is_common_noun_use(text: str, term: re.Match[str]) -> bool:
    """Whether a term names something else: "I am a Gemini" (zodiac), "I am a Falcon" (a poem),
    "the Mistral" (the wind), "Claude Monet" (a person)."""
    first = _FIRST_WORD_RE.match(term.group())
    if first is None:
        return False
    word = first.group().casefold()
    before = text[max(0, term.start() - 5) : term.start()]
    if word in _NATURE_WORDS and _NOUN_ARTICLE_RE.search(before):
        return True
    if word in _COMMON_WORDS and _INDEFINITE_ARTICLE_RE.search(before):
        return True
    if word in _PERSON_WORDS and term.group().casefold() == word:
        surname = _NEXT_NAME_RE.match(text, term.end())
        return surname is not None and surname[1].casefold() not in _TERM_FIRST_WORDS
    return False


# ---------------------------------------------------------------------------------------------
# The normalised view that self-identification is matched on: NFKC, TR39 confusables folded to
# ASCII (Cyrillic "а" -> "a"), dashes to "-", format characters (Cf: zero-width space, joiners,
# soft hyphen) and Markdown emphasis / inline-code markers dropped. Each view character keeps
# the index of the original character it came from, so a span found in the view is removed
# from the original text whole ("GPT‑4" with its non-breaking hyphen).

# Scripts whose letters are never folded: CJK and Hangul text carry their own rules, and their
# confusables (一 -> "-", ロ -> "O") would only make noise.
_FOLD_KEEP: Final = ("HANGUL", "CJK", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC", "BOPOMOFO")


def _confusable_table() -> dict[str, str]:
    table: dict[str, str] = {}
    data: dict[str, list[dict[str, str]]] = confusables_data
    for char, glyphs in data.items():
        if len(char) != 1 or char.isascii() or unicodedata.name(char, "").startswith(_FOLD_KEEP):
            continue
        targets = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii()]
        letters = [c for c in targets if c.isalpha()] or [c for c in targets if c.isdigit()]
        if letters:
            table[char] = letters[0]
    return table


_CONFUSABLE: Final = _confusable_table()
_VIEW_DROPPED: Final = frozenset("*`")
_VIEW_FAST_RE: Final = re.compile(r"[*`_~]")
_EMPHASIS: Final = "*_~"


@lru_cache(maxsize=8192)
def _fold(char: str) -> str:
    if char.isascii():
        return "" if char in _VIEW_DROPPED else char
    out: list[str] = []
    for c in unicodedata.normalize("NFKC", char):
        category = unicodedata.category(c)
        if c.isascii():
            if c not in _VIEW_DROPPED:
                out.append(c)
        elif category == "Cf":
            continue
        elif category == "Pd":
            out.append("-")
        else:
            out.append(_CONFUSABLE.get(c, c))
    return "".join(out)


@dataclass(frozen=True)
class _View:
    text: str
    index: tuple[int, ...] | None  # original index of each view character; None: identical
    dropped: frozenset[int]  # original indices that have no view character
    size: int

    def original(self, start: int, end: int) -> tuple[int, int]:
        if self.index is None:
            return start, end
        if start >= len(self.index):
            return self.size, self.size
        if end <= start:
            return self.index[start], self.index[start]
        return self.index[start], self.index[end - 1] + 1


def _view(text: str) -> _View:
    if text.isascii() and not _VIEW_FAST_RE.search(text):
        return _View(text, None, frozenset(), len(text))
    chars: list[str] = []
    index: list[int] = []
    dropped: set[int] = set()
    last = len(text) - 1
    for i, c in enumerate(text):
        if c == "_":
            # Intraword "_" is part of a name (snake_case); elsewhere it is emphasis.
            intraword = 0 < i < last and text[i - 1].isalnum() and text[i + 1].isalnum()
            folded = c if intraword else ""
        elif c == "~":
            strike = (i > 0 and text[i - 1] == "~") or (i < last and text[i + 1] == "~")
            folded = "" if strike else c
        else:
            folded = _fold(c)
        if not folded:
            dropped.add(i)
            continue
        chars.append(folded)
        index.extend([i] * len(folded))
    return _View("".join(chars), tuple(index), frozenset(dropped), len(text))


def _marker_runs(text: str, dropped: frozenset[int], start: int, end: int) -> Counter[str]:
    runs: Counter[str] = Counter()
    for i in range(start, end):
        if (
            i in dropped
            and text[i] in _EMPHASIS
            and not (i > start and i - 1 in dropped and text[i - 1] == text[i])
        ):
            runs[text[i]] += 1
    return runs


def _widen(text: str, view: _View, start: int, end: int) -> tuple[int, int, str]:
    """Bounds of a redaction that leave Markdown emphasis balanced, plus markers to keep.

    "I'm **Claude**, an AI made by X" loses "**Claude**, ..." whole; when no widening over the
    dropped markers next to the span balances them, the span's own markers follow the
    replacement ("**I am Claude**, made by X" -> "**I am an AI assistant**").
    """
    if not view.dropped:
        return start, end, ""
    back = start
    while back > 0 and back - 1 in view.dropped and text[back - 1] in _EMPHASIS:
        back -= 1
    forward = end
    while forward < len(text) and forward in view.dropped and text[forward] in _EMPHASIS:
        forward += 1
    for s, e in ((start, end), (back, forward), (back, end), (start, forward)):
        if all(n % 2 == 0 for n in _marker_runs(text, view.dropped, s, e).values()):
            return s, e, ""
    kept = "".join(text[i] for i in range(start, end) if i in view.dropped and text[i] in _EMPHASIS)
    return start, end, kept


@dataclass(frozen=True)
class _IdentityPatterns:
    term: re.Pattern[str]
    english: re.Pattern[str]
    ko_start: re.Pattern[str]
    chain: re.Pattern[str]
    direct: tuple[_Direct, ...]
    field: re.Pattern[str]


@dataclass(frozen=True)
class _Direct:
    """A pattern "<before><term><after>", tried only where a term was found (a scan for the
    term at every position, and a compile of the term list per pattern, are the slow part)."""

    lang: str
    needs_self: bool
    before: re.Pattern[str] | None  # must end right where the term starts
    after: re.Pattern[str]  # must match right where the term ends


def _direct_pattern(lang: str, needs_self: bool, source: str, flags: int) -> _Direct:
    before, _, after = source.partition("(?P<t>{T})")
    return _Direct(
        lang,
        needs_self,
        re.compile(f"(?:{before})\\Z", flags) if before else None,
        re.compile(after, flags),
    )


_MAX_CUE: Final = 80  # characters searched before a term for the cue of a direct pattern
_LATIN_LETTER: Final = "A-Za-z0-9\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff"
_KANA: Final = "\u30a0-\u30ff"
_CJK_RE: Final = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
# A sentence start, optionally after a greeting ("Hi! Claude here.", "Hello, this is ...").
_S: Final = r"(?:^|(?<=[.!?。！？:])|(?<=[.!?。！？:][^\S\n]))[^\S\n]*"
_GREET: Final = (
    r"(?:(?:hi|hello|hey|greetings|bonjour|salut|hola|hallo)(?:[^\S\n]+there)?[^\S\n]*[!,.]*"
    r"[^\S\n]*)?"
)
_INTL_SEP: Final = (
    r"(?:(?:[^\S\n]*(?:\.\.\.|…|[,(\u2013\u2014\"“”‘'’]))+[^\S\n]*|[^\S\n]+|(?<=['’]))"
)
# Self-description vocabularies: a chain after the cue may hold only these words and terms,
# so "je suis fan de Claude", "soy usuario de ChatGPT", "ich bin ein Fan von Llama" stay.
_FR_WORDS: Final = (
    "un|une|le|la|les|l|du|de|d|des|grand|grande|gros|modèle|modèles|langage|langue|assistant"
    "|assistante|ia|intelligence|artificielle|conversationnel|conversationnelle|virtuel"
    "|virtuelle|chatbot|agent|version|basé|basée|sur|développé|développée|créé|créée|conçu"
    "|conçue|entraîné|entraînée|formé|formée|programmé|programmée|fabriqué|fabriquée|construit"
    "|construite|lancé|lancée|par|nommé|nommée|appelé|appelée|ici|votre|ton|open-source"
    "|multilingue"
)
_ES_WORDS: Final = (
    "un|una|el|la|los|las|de|del|gran|grande|modelo|modelos|lenguaje|asistente|ia|inteligencia"
    "|artificial|conversacional|virtual|chatbot|agente|versión|basado|basada|en|creado|creada"
    "|desarrollado|desarrollada|entrenado|entrenada|diseñado|diseñada|hecho|hecha|construido"
    "|construida|programado|programada|lanzado|lanzada|por|llamado|llamada|aquí|tu|su"
    "|código|abierto|multilingüe"
)
_DE_WORDS: Final = (
    "ein|eine|einer|eines|einem|einen|der|die|das|des|dem|den|großes|großer|große|grosses"
    "|grosser|sprachmodell|ki|ki-modell|ki-assistent|ki-sprachmodell|ki-chatbot|assistent"
    "|assistentin|modell|chatbot|künstliche|künstlicher|intelligenz|virtueller|digitaler"
    "|version|basierend|auf|basiert|von|entwickelt|entwickeltes|entwickelter|trainiert"
    "|trainiertes|trainierter|erstellt|erstelltes|gebaut|geschaffen|programmiert|entworfen"
    "|namens|genannt|hier|dein|ihr|bot|open-source|mehrsprachiges"
)
# French, Spanish, German first-person cues, each followed by a chain of self-description words
# (the three vocabularies together) and terms.
_CHAIN_CUES: Final = (
    r"(?P<fr>\bje[^\S\n]+suis\b|\bj['’]suis\b|\bje[^\S\n]+m['’]appelle\b"
    r"|\bmon[^\S\n]+nom[^\S\n]+est\b|\bon[^\S\n]+m['’]appelle\b|\bappelez-moi\b"
    r"|\bj['’]ai[^\S\n]+été\b)"
    r"|(?P<es>\bsoy\b|\bme[^\S\n]+llamo\b|\bmi[^\S\n]+nombre[^\S\n]+es\b"
    r"|\bpuedes[^\S\n]+llamarme\b|\bllámame\b|\bfui\b|\bhe[^\S\n]+sido\b)"
    r"|(?P<de>\bich[^\S\n]+bin\b|\bich[^\S\n]+hei(?:ß|ss)e\b|\bmein[^\S\n]+name[^\S\n]+ist\b"
    r"|\bman[^\S\n]+nennt[^\S\n]+mich\b|\bnenn[^\S\n]+mich\b|\bich[^\S\n]+wurde\b)"
)
_CHAIN_WORDS: Final = "|".join(
    sorted({*_FR_WORDS.split("|"), *_ES_WORDS.split("|"), *_DE_WORDS.split("|")}, key=len)[::-1]
)
_JA_CREATE: Final = (
    r"(?:開発|作ら|作っ|作り|作成|訓練|トレーニング|学習|構築|設計|製作|生み出|創ら)"
)
_ZH_CREATE: Final = (
    r"(?:开发|開發|研发|研發|训练|訓練|打造|创建|創建|创造|創造|推出|构建|構建|设计|設計|制作|製作"
    r"|发布|發布)"
)
_ZH_FOLLOW: Final = (
    r"(?=[^\S\n]*(?:[,，。.!！?？、:：;；(（)）]|$|模型|助手|助理|语言模型|語言模型|人工智能|AI))"
)
_EN_MADE_ME: Final = (
    r"trained|built|created|developed|designed|programmed|fine-tuned|finetuned|engineered"
)
# (language, needs a first-person context, source): {T} is a term; group "t" holds the terms
# to redact. "Needs context" patterns count in a sentence with a first-person subject, or
# right after one in the same paragraph ("私はClaudeです。Anthropicによって作られました。").
_DIRECT: Final = (
    # English, third person: "Hi! Claude here.", "This is ChatGPT speaking", "Anthropic
    # trained me", "OpenAI is my creator".
    (
        "en",
        False,
        _S + _GREET + r"(?:it['’]s[^\S\n]+)?" + r"(?P<t>{T})[^\S\n]+here\b"
        r"(?=[^\S\n]*(?:[.!,;:)\-–—]|$|to\b|and\b|with\b|again\b|ready\b|at\b))",
    ),
    (
        "en",
        False,
        r"\b(?:this|it)[^\S\n]+is[^\S\n]+(?P<t>{T})(?:[^\S\n]*,)?[^\S\n]+"
        r"(?:speaking|here|talking|writing|responding|answering|replying)\b",
    ),
    ("en", False, _S + _GREET + r"this[^\S\n]+is[^\S\n]+(?P<t>{T})[^\S\n]*,[^\S\n]*your\b"),
    (
        "en",
        False,
        r"(?P<t>{T})(?:['’]s[^\S\n]+(?:team|researchers|engineers|developers))?[^\S\n]+"
        r"(?:(?:has|have|originally|first)[^\S\n]+)?(?:" + _EN_MADE_ME + r")[^\S\n]+me\b",
    ),
    (
        "en",
        False,
        r"(?P<t>{T})[^\S\n]+(?:is|are|was|were)[^\S\n]+my[^\S\n]+(?:creators?|developers?"
        r"|makers?|trainers?|builders?|designers?|authors?|parent[^\S\n]+company)\b",
    ),
    # French, Spanish, German: "ChatGPT ici", "C'est X qui parle", "X m'a créé", "X aquí",
    # "Te habla X", "X me creó", "X hier", "Hier spricht X", "X hat mich trainiert".
    ("fr", False, _S + _GREET + r"(?P<t>{T})[^\S\n]+ici\b(?=[^\S\n]*(?:[.!,;:]|$))"),
    (
        "fr",
        False,
        r"\bc['’]est[^\S\n]+(?P<t>{T})[^\S\n]+(?:qui[^\S\n]+(?:parle|vous[^\S\n]+répond|répond)"
        r"|ici|à[^\S\n]+l['’]appareil)",
    ),
    (
        "fr",
        False,
        r"(?P<t>{T})[^\S\n]+m['’]a[^\S\n]+(?:créée?|entraînée?|développée?|conçue?|formée?"
        r"|programmée?|fabriquée?|construite?)\b",
    ),
    ("es", False, _S + _GREET + r"(?P<t>{T})[^\S\n]+aquí\b(?=[^\S\n]*(?:[.!,;:]|$))"),
    ("es", False, r"\b(?:te|le|les|os)[^\S\n]+habla[^\S\n]+(?P<t>{T})"),
    (
        "es",
        False,
        r"\b(?:este|esta)[^\S\n]+es[^\S\n]+(?P<t>{T})[^\S\n]+(?:hablando|aquí|respondiendo)\b",
    ),
    (
        "es",
        False,
        r"(?P<t>{T})[^\S\n]+me[^\S\n]+(?:creó|entrenó|desarrolló|diseñó|construyó|programó"
        r"|ha[^\S\n]+(?:creado|entrenado|desarrollado|diseñado))\b",
    ),
    ("de", False, _S + _GREET + r"(?P<t>{T})[^\S\n]+hier\b(?=[^\S\n]*(?:[.!,;:]|$))"),
    ("de", False, r"\bhier[^\S\n]+(?:ist|spricht|schreibt|antwortet)[^\S\n]+(?P<t>{T})"),
    (
        "de",
        False,
        r"(?P<t>{T})[^\S\n]+hat[^\S\n]+mich[^\S\n]+(?:\w+[^\S\n]+){0,3}?(?:trainiert|entwickelt"
        r"|erstellt|gebaut|erschaffen|programmiert|entworfen|geschaffen)\b",
    ),
    # Korean, third person: "Anthropic이 저를 만들었습니다", "저를 만든 회사는 OpenAI입니다".
    (
        "ko",
        False,
        r"(?P<t>{T})[^\S\n]*(?:이|가|에서|팀이|사가)?[^\S\n]*저를[^\S\n]*" + _KO_CREATE,
    ),
    (
        "ko",
        False,
        r"저를[^\S\n]*(?:만든|개발한|훈련시킨|학습시킨|훈련한|설계한)[^\S\n]*"
        r"(?:곳|회사|팀|기업|사람들)(?:은|는|이)[^\S\n]*(?P<t>{T})",
    ),
    # Japanese: "私はClaudeです", "こちらはClaudeです", "Anthropicが私を開発しました",
    # "私を作ったのはAnthropicです", and "<maker>によって作られました" in a self-description.
    (
        "ja",
        False,
        r"(?:私|わたし|わたくし|僕|ぼく)(?:は|の名前は)[^\S\n]*[^、，,。！？!?\n]{0,40}?(?P<t>{T})"
        r"[^\S\n]*(?:です|だ|と申します|といいます|と言います|と呼ばれ|でございます|になります|と名乗)",
    ),
    ("ja", False, r"(?:こちらは|ここは)[^\S\n]*(?P<t>{T})[^\S\n]*(?:です|だ|でございます)"),
    (
        "ja",
        False,
        r"(?P<t>{T})[^\S\n]*社?[^\S\n]*(?:が|は)[^\S\n]*(?:私|わたし|僕)を[^\S\n]*" + _JA_CREATE,
    ),
    (
        "ja",
        False,
        r"(?:私|わたし|僕)を[^\S\n]*"
        + _JA_CREATE
        + r"[^。!?\n]{0,10}?(?:のは|は)[^\S\n]*(?P<t>{T})",
    ),
    (
        "ja",
        True,
        r"(?P<t>{T})[^\S\n]*社?[^\S\n]*(?:によって|により|が|の)[^\S\n]*" + _JA_CREATE,
    ),
    # Chinese: "我是通义千问", "这里是Claude", "Anthropic训练了我", and "由<maker>开发",
    # "<maker>开发的", "来自<maker>" in a self-description.
    (
        "zh",
        False,
        r"(?:我是|我叫|我的名字是|我的名字叫|我名叫|本人是|我就是|我其实是)[^\S\n]*"
        r"[^，,。！？!?\n]{0,30}?(?P<t>{T})" + _ZH_FOLLOW,
    ),
    ("zh", False, r"(?:这里是|這裡是|这边是)[^\S\n]*(?P<t>{T})"),
    (
        "zh",
        False,
        r"(?P<t>{T})[^\S\n]*(?:公司|团队|團隊)?[^\S\n]*(?:训练|訓練|开发|開發|创造|創造|打造|创建"
        r"|創建|设计|設計|研发|研發)了我",
    ),
    (
        "zh",
        True,
        r"由[^\S\n]*(?P<t>{T})[^\S\n]*(?:公司|团队|團隊|研发团队)?[^\S\n]*" + _ZH_CREATE,
    ),
    ("zh", True, r"(?P<t>{T})[^\S\n]*(?:公司|团队|團隊)?[^\S\n]*" + _ZH_CREATE + "的"),
    ("zh", True, r"来自[^\S\n]*(?P<t>{T})"),
)
# A first-person subject in Japanese / Chinese / Korean: what makes "<maker>によって作られ
# ました" a self-description. A sentence with another subject ("ChatGPTは", "它") is not one.
_CJK_SELF_RE: Final = re.compile(
    r"(?:私|わたし|わたくし|僕|ぼく)(?:は|が|を|の名前)|我(?:是|由|被|叫|乃|的名字|名叫|其实是|就是)"
    r"|本人是|저는|제가|저를"
)
_OTHER_SUBJECT_RE: Final = re.compile(r"它|他|她|这款|这个|该|該|それ|彼|これ|この")
_TOPIC_AFTER_TERM: Final = frozenset("はが是被和与與も")
_CJK_SENTENCE_END_RE: Final = re.compile(r"[。！？!?\n]|\.(?!\d)")
# "Name: Mistral" / "Creator: Mistral AI" (a self-description card, in prose or code).
_NAME_KEYS: Final = (
    "name|model|model name|model_name|model-name|assistant|assistant name|identity|nom|nombre"
    "|modèle|modelo|modell|이름|모델|모델명|名前|モデル|モデル名|名字|名称|模型|模型名称"
)
_MAKER_KEYS: Final = (
    "creator|created by|developer|developed by|made by|trained by|built by|provider"
    "|organization|organisation|company|vendor|maker|owner|publisher|créateur|développeur"
    "|développé par|créé par|fournisseur|entreprise|creador|desarrollador|desarrollado por"
    "|creado por|proveedor|empresa|ersteller|entwickler|entwickelt von|anbieter|hersteller"
    "|unternehmen|개발사|제작사|개발자|제공자|開発元|開発者|提供元|製作者|作成者|開発会社|开发者"
    "|开发商|提供商|开发方|开发公司|研发方"
)
_MAKER_KEY_SET: Final = frozenset(_MAKER_KEYS.split("|"))
_FIELD_SOURCE: Final = (
    r"(?:^[^\S\n]*(?:(?:[>*\-•+#]+|\d+[.)]|[{\[])[^\S\n]*)*|(?<=[,;|{])[^\S\n]*"
    r"|(?<=[^\S\n]/)[^\S\n]*)[\"']?(?P<key>"
    + "|".join(sorted({*_NAME_KEYS.split("|"), *_MAKER_KEY_SET}, key=lambda k: (-len(k), k)))
    + r")[\"']?[^\S\n]*[:：][^\S\n]*[\"']?(?P<t>{T})"
)


@lru_cache(maxsize=64)
def _identity_patterns(extra_terms: tuple[str, ...]) -> _IdentityPatterns:
    terms = _by_length({*KNOWN_IDENTITY_TERMS, *extra_terms})
    hangul = [t for t in terms if _HANGUL_END_RE.search(t)]
    cjk = [t for t in terms if not _HANGUL_END_RE.search(t) and _CJK_RE.search(t)]
    latin = [t for t in terms if not _HANGUL_END_RE.search(t) and not _CJK_RE.search(t)]
    latin_alt = "|".join(_latin_term_source(t) for t in latin)
    hangul_alt = "|".join(_term_source(t) for t in hangul) or "(?!)"
    cjk_alt = "|".join(_term_source(t) for t in cjk) or "(?!)"
    # Latin terms glue onto CJK text ("私はClaudeです"), so only a Latin, Greek or Cyrillic
    # letter or digit before one makes it part of a longer word.
    term = (
        rf"(?:(?<![{_LATIN_LETTER}])(?:{latin_alt}){_VARIANT}(?![A-Za-z0-9])(?:['’]s)?"
        rf"|(?<![^\W_])(?:{hangul_alt})(?=[^{_HANGUL}]|\Z|{_KO_PARTICLE_AHEAD})"
        rf"|(?<![{_KANA}])(?:{cjk_alt})(?![{_KANA}]))"
    )
    token = rf"(?>{term}|(?:{_DESC_WORDS}|{_LINK_WORDS})(?![\w'’-]))"
    english = rf"(?:{_EN_CUES})(?P<chain>(?:{_SEP}{token}){{1,16}}+)"
    ko_start = rf"{_KO_SENTENCE_START}(?P<greet>{_KO_GREETING})?(?P<term>{term})"
    flags = re.IGNORECASE | re.MULTILINE
    chain = (
        rf"(?:{_CHAIN_CUES})"
        rf"(?P<chain>(?:{_INTL_SEP}(?>{term}|(?:{_CHAIN_WORDS})(?![\w-]))){{1,16}}+)"
    )
    direct = tuple(
        _direct_pattern(lang, needs_self, source, flags) for lang, needs_self, source in _DIRECT
    )
    return _IdentityPatterns(
        term=re.compile(term, re.IGNORECASE),
        english=re.compile(english, flags),
        ko_start=re.compile(ko_start, flags),
        chain=re.compile(chain, flags),
        direct=direct,
        field=re.compile(_FIELD_SOURCE.replace("{T}", f"(?:{term})"), flags),
    )


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    replacement: str
    phrase: str
    terms: tuple[str, ...]
    lang: str


class _Terms:
    """Every identity-term match in a text, found once and looked up by position."""

    def __init__(self, text: str, pattern: re.Pattern[str]) -> None:
        self.matches = list(pattern.finditer(text))
        self.starts = [m.start() for m in self.matches]

    def within(self, start: int, end: int) -> list[re.Match[str]]:
        first = bisect.bisect_left(self.starts, start)
        last = bisect.bisect_left(self.starts, end)
        return [m for m in self.matches[first:last] if m.end() <= end]


def _english_spans(text: str, pat: _IdentityPatterns, found: _Terms) -> list[_Span]:
    spans: list[_Span] = []
    for m in pat.english.finditer(text):
        if _inside_quotation(text, m.start()):
            continue
        chain_start, chain_end = m.span("chain")
        terms = [
            t for t in found.within(chain_start, chain_end) if not _is_common_noun_use(text, t)
        ]
        if terms and terms[-1].end() == chain_end and _MODIFIED_NOUN_RE.match(text, chain_end):
            # "I'm a big Meta fan", "I am a Claude user": the name qualifies another noun.
            terms.pop()
        link = _LINK_PHRASE_RE.search(text, chain_start, chain_end)
        cue = next(g for g in ("cop", "name", "poss", "as") if m[g] is not None)
        if cue == "as" and not (
            _AI_NOUN_RE.search(text, chain_start, chain_end) or _AFTER_AS_RE.match(text, chain_end)
        ):
            continue
        if terms:
            spans.append(_chain_span(text, m, cue, terms, link))
        elif link is None:
            continue
        # The rest of a first-person self-description sentence is about the model too:
        # "I am a model trained by researchers from ... (LMSYS)".
        limit = min(len(text), chain_end + _MAX_SENTENCE)
        sentence_end = _EN_SENTENCE_END_RE.search(text, chain_end, limit)
        stop = sentence_end.start() if sentence_end else limit
        for t in found.within(chain_end, stop):
            if _is_common_noun_use(text, t):
                continue
            start = _absorb_article(text, t.start(), chain_end)
            phrase = text[m.start() : t.end()]
            spans.append(_Span(start, t.end(), REDACTED, phrase, (t.group(),), "en"))
    return spans


def _inside_quotation(text: str, pos: int) -> bool:
    """Whether ``pos`` is inside quoted speech in its paragraph: '"I am Claude," he said.' is a
    character in a story, not the model speaking."""
    start = text.rfind("\n\n", 0, pos) + 1
    if text.count('"', start, pos) % 2:
        return True
    return text.rfind("“", start, pos) > text.rfind("”", start, pos)


def _chain_span(
    text: str,
    m: re.Match[str],
    cue: str,
    terms: list[re.Match[str]],
    link: re.Match[str] | None,
) -> _Span:
    """The span to replace in "<cue> <chain of self-description words and terms>"."""
    chain_start, chain_end = m.span("chain")
    chain = text[chain_start:chain_end]
    content_start = chain_start + len(chain) - len(chain.lstrip(_CHAIN_SEPARATORS))
    last = terms[-1].end()
    tail = text[last:chain_end]
    # "... based on the GPT-4 architecture" ends with the chain; "Claude, the model you ..."
    # ends at the term.
    end = chain_end if tail.strip() and "," not in tail and "(" not in tail else last
    end = _balance_parenthesis(text, content_start, end)
    names = tuple(t.group() for t in terms)
    phrase = text[m.start() : end]
    if cue in ("name", "poss"):
        start = _absorb_article(text, terms[0].start(), content_start)
        return _Span(start, end, REDACTED, phrase, names, "en")
    if link is None or terms[0].start() < link.start():
        return _Span(content_start, end, NEUTRAL_EN, phrase, names, "en")
    pre = text[content_start : link.start()].rstrip(_CHAIN_SEPARATORS)
    if pre:
        # "a large language model trained by Google" -> "a large language model".
        return _Span(content_start + len(pre), end, "", phrase, names, "en")
    start = _absorb_article(text, terms[0].start(), content_start)
    return _Span(start, end, REDACTED, phrase, names, "en")


def _absorb_article(text: str, start: int, floor: int) -> int:
    before = text[floor:start]
    m = _TRAILING_THE_RE.search(before)
    return floor + m.start() if m else start


def _balance_parenthesis(text: str, start: int, end: int) -> int:
    if text.count("(", start, end) > text.count(")", start, end):
        close = text.find(")", end)
        newline = text.find("\n", end)
        if close >= 0 and (newline < 0 or close < newline):
            return close + 1
    return end


def _sentence_end(text: str, start: int) -> int:
    limit = min(len(text), start + _MAX_SENTENCE)
    m = _KO_SENTENCE_END_RE.search(text, start, limit)
    return m.start() if m else limit


def _korean_spans(text: str, pat: _IdentityPatterns, found: _Terms) -> list[_Span]:
    spans: list[_Span] = []
    for cue in _KO_SELF_RE.finditer(text):
        if _inside_quotation(text, cue.start()):
            continue
        spans.extend(_korean_subject_spans(text, found, cue))
    for m in pat.ko_start.finditer(text):
        if _inside_quotation(text, m.start()):
            continue
        span = _korean_subjectless_span(text, m)
        if span is not None:
            spans.append(span)
    return spans


def _korean_subject_spans(text: str, found: _Terms, cue: re.Match[str]) -> list[_Span]:
    """Spans in the sentence after a first-person subject (저는, 제가, 제 이름은 ...)."""
    region_end = _sentence_end(text, cue.end())
    floor = (
        cue.end() + len(text[cue.end() : region_end]) - len(text[cue.end() : region_end].lstrip())
    )
    spans: list[_Span] = []
    for t in found.within(floor, region_end):
        if t.start() < floor:
            continue
        term: tuple[str, ...] = (t.group(),)
        name_tail = _KO_NAME_TAIL_RE.match(text, t.end(), region_end)
        if name_tail and t.start() - floor <= 60:
            # The naming span swallows maker phrases before it: "OpenAI가 개발한 ChatGPT".
            while spans and spans[-1].start >= floor and spans[-1].replacement != NEUTRAL_KO:
                term = (*spans.pop().terms, *term)
            phrase = text[cue.start() : name_tail.end()]
            spans.append(_Span(floor, name_tail.end(), NEUTRAL_KO, phrase, term, "ko"))
            floor = name_tail.end()
            continue
        maker = _KO_MAKER_TAIL_RE.match(text, t.end(), region_end)
        if maker is None:
            continue
        phrase = text[cue.start() : maker.end()]
        if _KO_PASSIVE_RE.search(maker.group()):
            spans.append(_Span(t.start(), t.end(), REDACTED, phrase, term, "ko"))
        elif _KO_PREDICATE_RE.search(text, maker.end(), region_end):
            spans.append(_Span(t.start(), maker.end(), "", phrase, term, "ko"))
    return spans


def _korean_subjectless_span(text: str, m: re.Match[str]) -> _Span | None:
    """A sentence that opens with the term: "안녕하세요, Claude입니다", "Google에서 만든 ...
    언어 모델입니다", "Claude라고 합니다"."""
    t_start, t_end = m.span("term")
    term = (m["term"],)
    region_end = _sentence_end(text, t_end)
    name_tail = _KO_NAME_TAIL_RE.match(text, t_end, region_end)
    if m["greet"] and name_tail:
        phrase = text[m.start("greet") : name_tail.end()]
        return _Span(t_start, name_tail.end(), NEUTRAL_KO, phrase, term, "ko")
    if _KO_CALLED_RE.match(text, t_end):
        return _Span(t_start, t_end, REDACTED, text[t_start:region_end], term, "ko")
    maker = _KO_MAKER_TAIL_RE.match(text, t_end, region_end)
    if maker and _KO_ADNOMINAL_RE.search(maker.group()):
        ai = _KO_AI_COPULA_RE.match(text, maker.end(), region_end)
        if ai is not None:
            return _Span(t_start, maker.end(), "", text[t_start : ai.end()], term, "ko")
    return None


def _chain_spans(text: str, pat: _IdentityPatterns, found: _Terms) -> list[_Span]:
    """French, Spanish, German: a first-person cue and a chain of self-description words and
    terms ("Je suis ChatGPT, un modèle développé par OpenAI"); each term is redacted."""
    spans: list[_Span] = []
    for m in pat.chain.finditer(text):
        if _inside_quotation(text, m.start()):
            continue
        lang = next(g for g in ("fr", "es", "de") if m[g] is not None)
        chain_start, chain_end = m.span("chain")
        phrase = text[m.start() : chain_end]
        spans.extend(
            _Span(t.start(), t.end(), REDACTED, phrase, (t.group(),), lang)
            for t in found.within(chain_start, chain_end)
            if not _is_common_noun_use(text, t)
        )
    return spans


def _sentence_start(text: str, pos: int) -> int:
    ends = [m.end() for m in _CJK_SENTENCE_END_RE.finditer(text, max(0, pos - _MAX_SENTENCE), pos)]
    return ends[-1] if ends else max(0, pos - _MAX_SENTENCE)


def _in_self_context(text: str, found: _Terms, pos: int) -> bool:
    """Whether ``pos`` is in a sentence about the speaker: one with a first-person subject, or
    the next sentence of the same paragraph, unless another subject comes first."""
    start = _sentence_start(text, pos)
    if _OTHER_SUBJECT_RE.search(text, start, pos):
        return False
    if any(text[t.end() : t.end() + 1] in _TOPIC_AFTER_TERM for t in found.within(start, pos)):
        return False
    if _CJK_SELF_RE.search(text, start, pos):
        return True
    if start == 0 or text[start - 1] == "\n":
        return False
    return _CJK_SELF_RE.search(text, _sentence_start(text, start - 1), start) is not None


def _direct_spans(text: str, pat: _IdentityPatterns, found: _Terms) -> list[_Span]:
    """Third-person and CJK self-reference: "Claude here", "Anthropic trained me", "私は
    Claudeです", "我是通义千问，由阿里云开发的"; the terms in group ``t`` are redacted."""
    spans: list[_Span] = []
    for t in found.matches:
        for d in pat.direct:
            after = d.after.match(text, t.end())
            if after is None:
                continue
            start = t.start()
            if d.before is not None:
                before = d.before.search(text, max(0, start - _MAX_CUE), start)
                if before is None:
                    continue
                start = before.start()
            if _inside_quotation(text, start) or _is_common_noun_use(text, t):
                continue
            if d.needs_self and not _in_self_context(text, found, t.start()):
                continue
            phrase = text[start : after.end()]
            spans.append(_Span(t.start(), t.end(), REDACTED, phrase, (t.group(),), d.lang))
    return spans


def _field_spans(text: str, pat: _IdentityPatterns, found: _Terms) -> list[_Span]:
    """A self-description card: a paragraph (or code block) with both a "Name:"/"Model:" and a
    "Creator:"/"Provider:" field naming terms. Several such cards compare models: none count."""
    cards: dict[int, list[re.Match[str]]] = {}
    blanks = [m.start() for m in _BLANK_LINE_RE.finditer(text)]
    for m in pat.field.finditer(text):
        cards.setdefault(bisect.bisect_left(blanks, m.start()), []).append(m)
    selves = [
        fields
        for fields in cards.values()
        if {f["key"].casefold() in _MAKER_KEY_SET for f in fields} == {True, False}
    ]
    if len(selves) != 1:
        return []
    spans: list[_Span] = []
    for f in selves[0]:
        key = f["key"]
        lang = "ko" if _HANGUL_END_RE.search(key) else "zh" if _CJK_RE.search(key) else "en"
        if _CJK_RE.search(key) and re.search(f"[{_KANA}]", key + f.group()):
            lang = "ja"
        spans.extend(
            _Span(t.start(), t.end(), REDACTED, f.group(), (t.group(),), lang)
            for t in found.within(*f.span("t"))
            if not _is_common_noun_use(text, t)
        )
    return spans


def _identity_spans(text: str, pat: _IdentityPatterns) -> list[_Span]:
    """Non-overlapping self-identification spans in the normalised view, in text order."""
    terms = _Terms(text, pat.term)
    candidates = sorted(
        _english_spans(text, pat, terms)
        + _korean_spans(text, pat, terms)
        + _chain_spans(text, pat, terms)
        + _direct_spans(text, pat, terms)
        + _field_spans(text, pat, terms),
        key=lambda s: (s.start, -(s.end - s.start)),
    )
    chosen: list[_Span] = []
    for span in candidates:
        if span.end <= span.start:
            continue
        if chosen and span.start < chosen[-1].end:
            continue
        chosen.append(span)
    return chosen


def _code_ranges(segs: list[_Seg]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    pos = 0
    for seg in segs:
        if seg.code:
            ranges.append((pos, pos + len(seg.text)))
        pos += len(seg.text)
    return ranges


def _handle_identity(
    text: str,
    ctx: _Compiled,
    pat: _IdentityPatterns,
    *,
    redact: bool,
    changes: list[Change],
    mentions: list[dict[str, object]],
    code_mentions: list[dict[str, object]],
) -> str:
    """Find self-identification in the normalised view of the whole text; redact it in prose
    (``redact``), never in code: a mention that touches code is listed with ``redacted``
    false and ``code`` true in ``code_mentions``."""
    code = _code_ranges(_segment(text, ctx))
    view = _view(text)
    edits: list[tuple[int, int, str]] = []
    for span in _identity_spans(view.text, pat):
        start, end = view.original(span.start, span.end)
        if span.end == span.start:
            continue
        in_code = any(s < end and start < e for s, e in code)
        mention: dict[str, object] = {
            "terms": list(span.terms),
            "text": span.phrase,
            "lang": span.lang,
            "redacted": redact and not in_code,
            "code": in_code,
        }
        (code_mentions if in_code else mentions).append(mention)
        if redact and not in_code:
            edits.append((start, end, span.replacement))
    for start, end, replacement in reversed(edits):
        start, end, kept = _widen(text, view, start, end)
        changes.append(
            {
                "kind": "identity",
                "text": text[start:end],
                "where": "inline",
                "replacement": replacement + kept,
            }
        )
        text = text[:start] + replacement + kept + text[end:]
    return text


# ---------------------------------------------------------------------------------------------
# Entry point.


def _clean_tokens(tokens: Iterable[str]) -> tuple[str, ...]:
    # A plain word cannot be an "unusual string"; tokenizers' added vocabulary sometimes is one.
    return tuple(sorted({t for t in tokens if t.strip() and not _WORD_RE.fullmatch(t)}))


def _clean_stops(stops: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({s for s in stops if s.strip()}))


def _clean_terms(terms: Iterable[str]) -> tuple[str, ...]:
    kept: set[str] = set()
    for term in terms:
        cleaned = " ".join(term.split())
        if len(cleaned) < 2 or cleaned.casefold() in _NEUTRAL_WORDS:
            continue
        if not _TERM_PART_RE.search(cleaned):
            continue
        if any(cleaned.casefold() in w for w in (NEUTRAL_EN.casefold(), NEUTRAL_KO.casefold())):
            continue
        kept.add(cleaned)
    return tuple(sorted(kept))


def strip_answer(
    raw: str,
    *,
    special_tokens: Iterable[str] = (),
    stop: Iterable[str] = (),
    identity_terms: Iterable[str] = (),
    policy: Policy = "redact",
) -> StripResult:
    """Return the text safe to show an evaluator and the audit of what was removed.

    ``special_tokens``: the contestant tokenizer's special/added tokens; ``stop``: its stop
    sequences; ``identity_terms``: registered contestants' names, slugs, families, aliases.
    ``policy="redact"`` replaces self-identification with a neutral phrase; ``"exclude"`` keeps
    it and sets ``flagged``. Both list the mentions in ``report["identity_mentions"]``.
    """
    if policy not in ("redact", "exclude"):
        raise ValueError(f"unknown policy {policy!r}")
    ctx = _compile(_clean_tokens(special_tokens), _clean_stops(stop))
    pat = _identity_patterns(_clean_terms(identity_terms))
    changes: list[Change] = []
    mentions: list[dict[str, object]] = []

    text = _LINE_ENDING_RE.sub("\n", raw)
    if text != raw:
        changes.append(
            {"kind": "line_endings", "text": "\r", "where": "all", "count": raw.count("\r")}
        )
    code_mentions: list[dict[str, object]] = []
    for _ in range(_MAX_ROUNDS):
        text = _strip_templates(text, ctx, changes)
        before = len(mentions)
        code_mentions = []  # code is never edited: each round finds the same ones again
        text = _handle_identity(
            text,
            ctx,
            pat,
            redact=policy == "redact",
            changes=changes,
            mentions=mentions,
            code_mentions=code_mentions,
        )
        if policy == "exclude" or len(mentions) == before:
            break
    else:
        text = _strip_templates(text, ctx, changes)
    mentions += code_mentions

    # Under redact, identity that could not be redacted (it is in code) still flags.
    flagged = bool(mentions) if policy == "exclude" else bool(code_mentions)
    report: dict[str, object] = {
        "version": REPORT_VERSION,
        "policy": policy,
        "changes": changes,
        "identity_mentions": mentions,
        "flagged": flagged,
    }
    return StripResult(shown=text, report=report, flagged=flagged)


# The safety net --------------------------------------------------------------------------------


def named_terms(text: str, identity_terms: Iterable[str] = ()) -> list[str]:
    """Every identity term (the known ones and ``identity_terms``) that ``text`` names anywhere,
    code included, matched on the same normalised view as the stripper (NFKC, confusables,
    format characters and Markdown markers ignored), each as the term it matched, in lower
    case, sorted. Unlike `strip_answer` this does not ask whether the text is about itself:
    it is the keyword test that keeps a battle whose answer names a model out of the ratings
    (FastChat's, on a normalised view), whatever the detection above missed."""
    terms = _clean_terms(identity_terms)
    pattern = _identity_patterns(terms).term
    matched = {m.group() for m in pattern.finditer(_view(text).text)}
    if not matched:
        return []
    known = _by_length({*KNOWN_IDENTITY_TERMS, *terms})
    found: set[str] = set()
    for phrase in matched:
        for term in known:  # longest first: "Mistral AI" before "Mistral"
            if re.match(_term_source(term), phrase, re.IGNORECASE):
                found.add(term.casefold())
                break
    return sorted(found)


# "Who are you?" in the languages the detection covers: a live prompt that asks the model its
# name, maker or model makes any answer an identity answer.
_ASKS_IDENTITY_RE: Final = re.compile(
    r"(?i:\bwho\s+(?:are|r)\s+(?:you|u)\b|\bwhat(?:'s|\s+is)\s+your\s+(?:name|model)\b"
    r"|\bwhat\s+(?:model|llm|ai|language\s+model)\s+(?:are\s+you|is\s+this)\b"
    r"|\bwho\s+(?:made|built|created|trained|developed)\s+you\b"
    r"|\b(?:which|what)\s+company\s+(?:made|built|created|trained)\s+you\b"
    r"|\bidentify\s+yourself\b|\bintroduce\s+yourself\b"
    r"|\byour\s+(?:own\s+)?(?:model\s+)?(?:name|maker|creator|developer|vendor|provider)\b"
    r"|\bqui\s+es[-\s]tu\b|\bqui\s+êtes[-\s]vous\b|\bquel\s+modèle\s+es[-\s]tu\b"
    r"|\bqui\s+t'a\s+(?:créé|entraîné|développé)"
    r"|\bqui[ée]n\s+eres\b|\bqu[ée]\s+modelo\s+eres\b|\bqui[ée]n\s+te\s+(?:cre[óo]|entren[óo])"
    r"|\bwer\s+bist\s+du\b|\bwelches\s+modell\s+bist\s+du\b|\bwer\s+hat\s+dich\s+"
    r"(?:gebaut|trainiert|entwickelt|erschaffen))"
    r"|(?:너|당신|넌|니)\s*(?:는|은)?\s*누구|(?:무슨|어떤|어느)\s*(?:모델|AI|인공지능)|"
    r"누가\s*(?:너|당신)를?\s*(?:만들|개발|훈련)|이름이\s*(?:뭐|무엇)"
    r"|あなたは(?:誰|だれ)|君は(?:誰|だれ)|何の(?:モデル|AI)|どの(?:モデル|AI)|誰が(?:あなた|君)を"
    r"|你是(?:谁|誰|什么模型|哪个模型)|您是(?:谁|誰)|谁(?:创造|开发|训练|制造)了你|你叫什么"
)


def asks_identity(prompt: str) -> bool:
    """Whether a prompt asks the model who or what it is (its name, maker or model)."""
    return _ASKS_IDENTITY_RE.search(_view(prompt).text) is not None


# The live stream's hold-back ------------------------------------------------------------------
# It mirrors the rules above: whatever strip_answer could still remove or redact once more text
# arrives must not have been sent yet. So a partial word (it may become a model's name), a
# partial template token, and a whole sentence that has begun a self-introduction ("I am …",
# "저는 …") are held back until they are complete.
_SELF_INTRO = re.compile(
    r"(?i)(?:\b(?:i|i'm|i’m|im|my|as|me|we|our|this\s+is|je|j['’]|mon|moi|soy|me|mi|yo|te|ich"
    r"|mein|mich|hier)\b|저는|제가|나는|제\s*이름|저희|저를|私|わたし|僕|こちら|我|本人|这里)"
)
_SENTENCE_END = re.compile(r"[。！？]|[.!?\n](?=\s|$)")
# A "Name:"/"Creator:" field line: the card it may belong to is held back to its paragraph end.
_FIELD_LINE = re.compile(
    rf"(?im)^[^\S\n]*(?:(?:[>*\-•+#]+|\d+[.)])[^\S\n]*)*[\"']?(?:{_NAME_KEYS}|{_MAKER_KEYS})"
    r"[\"']?[^\S\n]*[:：]"
)


@lru_cache(maxsize=64)
def _hold_terms(terms: tuple[str, ...]) -> re.Pattern[str]:
    """Any of these terms as a word (as a substring in CJK and Hangul), on the folded view."""
    parts = [
        rf"(?<![a-z0-9]){re.escape(t)}(?![a-z])" if t[:1].isascii() else re.escape(t)
        for t in sorted(set(terms), key=len, reverse=True)
        if t
    ]
    return re.compile("|".join(parts) or "(?!)", re.IGNORECASE)


_TOKEN_CHARS = ("<", "[", "#", "|", "｜", "`")
_TOKEN_START = re.compile(r"(?:<[^>\s]{0,40}|\[[^\]\s]{0,40}|<｜[^｜]{0,40}|#{1,6}[^\n]{0,20})$")
# A first word that may still become a bare header ("analysis<|message|>", "assistant\n").
_LEAD_WORD = re.compile(r"\s*([a-z]+)")
_HEADER_WORDS = ("analysis", "assistant", "commentary", "final", "model")
_LABEL_PREFIXES = (*_ASSISTANT_LABELS, *_USER_LABELS)
_GLUED_ROLE_TAIL = re.compile(rf"(?<={_GLUED_PUNCT})[a-z]{{1,9}}\Z")
_HTML_TOKEN_TAIL = re.compile(r"(?:</?s>\s*)+\Z")
_HANGUL_TAIL = re.compile(r"[가-힣]+")


def start_pending(raw: str, *, leading_trace: bool = False) -> bool:
    """Whether the start of a partial raw answer is still undecided, so that nothing of it may
    be sent: it opens with a user/system turn (an echoed prompt, cut once an assistant marker
    arrives) or, for a contestant whose prompt opens the reasoning trace (``leading_trace``),
    no ``</think>`` has arrived yet. Pass the result to ``safe_prefix(pending=...)``."""
    if leading_trace and THINK_CLOSE not in raw:
        return True
    text = _LINE_ENDING_RE.sub("\n", raw)
    return bool(_ECHO_START_RE.match(text)) and _ASSISTANT_MARKER_RE.search(text) is None


def _code_hold(shown: str, segs: list[_Seg]) -> int:
    """Where text that may still become (or stop being) code begins: an unmatched backtick
    run in prose (an inline span may still close), or the last line of an unclosed fence
    (its final template tokens were taken for the end of generation)."""
    pos = 0
    for seg in segs:
        if seg.code:
            pos += len(seg.text)
            continue
        for run in _BACKTICKS_RE.finditer(seg.text):
            if _BLANK_LINE_RE.search(shown, pos + run.end()) is None:
                return pos + run.start()
        pos += len(seg.text)
    last = segs[-1] if segs else None
    if last is not None and last.code:
        start = len(shown) - len(last.text)
        opening = _FENCE_RE.match(last.text)
        lines = last.text.rstrip("\n").split("\n")
        closing = _FENCE_RE.fullmatch(lines[-1]) if len(lines) > 1 else None
        if opening and not (
            closing
            and closing["fence"][0] == opening["fence"][0]
            and len(closing["fence"]) >= len(opening["fence"])
            and not closing["rest"].strip()
        ):
            return max(start, shown.rfind("\n", start, len(shown.rstrip("\n"))) + 1)
    return len(shown)


def safe_prefix(shown: str, terms: Sequence[str] = (), *, pending: bool = False) -> str:
    """The part of a partial answer that can be sent now without a later strip undoing it.

    ``terms`` are identity terms in lower case: a partial last word that could still grow
    into one of them (or into a template token, role label or header word) is held back; any
    other is sent at once. An unclosed ``<think>`` outside code holds back all that follows
    it, and so does text whose code status may still change. ``pending``: the caller knows
    the start is undecided (``start_pending``; the shown text cannot tell): nothing is sent.
    """
    if pending:
        return ""
    last_space = max(shown.rfind(" "), shown.rfind("\n"), shown.rfind("\t"))
    cut = last_space + 1 if last_space >= 0 else 0
    partial = _view(shown[cut:]).text.lower()  # "Ｃｌａｕ" may still become "Claude"
    if (
        partial
        and not partial.startswith(_TOKEN_CHARS)
        and not any(t.startswith(partial) for t in terms)
        # A term with a Korean ending still arriving: "EXAONE입니" (-다).
        and not any(
            partial.startswith(t) and _HANGUL_TAIL.fullmatch(partial, len(t)) for t in terms
        )
    ):
        cut = len(shown)
    # Held text that a strip may remove whole (a partial token, label or trace): the
    # whitespace before it may end the answer once it goes, and is stripped then.
    removable = partial.startswith(_TOKEN_CHARS)
    token = _TOKEN_START.search(shown[:cut])
    if token:
        cut, removable = token.start(), True
    segs = _segment(shown, _compile((), ()))
    hold = _code_hold(shown, segs)
    if THINK_OPEN in shown:
        opened = _prose_tokens(shown, _THINK_RE, _ranges(segs)[0])
        hold = min(hold, opened[0][0]) if opened else hold
    if hold < cut:
        cut, removable = hold, True
    # A line, or what follows a token, that may still grow into a role label ("ASSI").
    line = max(shown.rfind(c) for c in "\n>]") + 1
    line += len(shown[line:]) - len(shown[line:].lstrip(" \t"))
    if line < len(shown) and any(x.startswith(shown[line:]) for x in _LABEL_PREFIXES):
        cut, removable = min(cut, line), True
    glued = _GLUED_ROLE_TAIL.search(shown, 0, cut)
    if glued and any(w.startswith(glued.group()) for w in ("assistant", "user")):
        cut, removable = glued.start(), True
    html = _HTML_TOKEN_TAIL.search(shown, 0, cut)
    if html:
        cut, removable = html.start(), True
    lead = _LEAD_WORD.fullmatch(shown, 0, cut)
    if lead and any(w.startswith(lead[1]) for w in _HEADER_WORDS):
        cut = 0
    ends = [m.end() for m in _SENTENCE_END.finditer(shown, 0, cut)]
    sentence_start = ends[-1] if ends else 0
    sentence = _view(shown[sentence_start:cut]).text
    # A sentence that names a model may still become "Claude here" or "Anthropic trained me";
    # a field line may still be joined by the rest of a "Name: / Creator:" card.
    if _SELF_INTRO.search(sentence) or _hold_terms(tuple(terms)).search(sentence):
        cut = sentence_start
    card = _held_card(shown, cut)
    if card is not None:
        cut = card
    glued_at = _glued_term_start(shown, last_space + 1, terms)
    if glued_at is not None and glued_at < cut:
        cut = glued_at
    return shown[:cut].rstrip() if removable else shown[:cut]


# Partial text after which another "Name: …" line may still come (empty, or a short first line).
_MAY_BE_FIELD = re.compile(r"\s*(?:[^\S\n]*[^\n:：]{1,30})?")


def _held_card(shown: str, cut: int) -> int | None:
    """Where to cut for a "Name: / Creator:" card that may still change: a field line in the
    paragraph being written, or, while what follows it may still become another card, in the
    paragraphs before it (one card is self-identification, two are a comparison: "Model: GPT-4
    / Developer: OpenAI" is redacted until a second card makes it neutral)."""
    para = shown.rfind("\n\n", 0, cut) + 1
    field = _FIELD_LINE.search(shown, para, cut)
    if field is None and not (para > 0 and _MAY_BE_FIELD.fullmatch(shown, para, cut)):
        return None
    held = None if field is None else field.start()
    end = para
    while end > 0:
        previous = shown.rfind("\n\n", 0, end - 1) + 1
        field = _FIELD_LINE.search(shown, previous, end)
        if field is None:
            break
        held, end = field.start(), previous
    return held


def _spaceless(c: str) -> bool:
    """A character of a script written without spaces between words (CJK, kana)."""
    return "\u2e80" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" or "\u3040" <= c <= "\u30ff"


def _glued_term_start(shown: str, start: int, terms: Sequence[str]) -> int | None:
    """Where, in the space-free tail of ``shown`` from ``start``, a part begins that may still
    grow into an identity term: right after a character of a script without spaces or after
    punctuation ("私はClaudeです。A" may become "…。Anthropicによって"); None if nowhere."""
    view = _view(shown[start:])
    text = view.text.lower()
    for i in range(1, len(text)):
        before = text[i - 1]
        if not (_spaceless(before) or unicodedata.category(before)[0] == "P"):
            continue
        tail = text[i:]
        if any(t.startswith(tail) for t in terms) or any(
            tail.startswith(t) and _HANGUL_TAIL.fullmatch(tail, len(t)) for t in terms
        ):
            return start + view.original(i, len(text))[0]
    return None
