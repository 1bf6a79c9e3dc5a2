"""The judge's prompts: tested defaults in English and Korean, and the rendering of an
admin-edited template.

A template names its slots in braces: ``{question}``, ``{answer_a}`` and ``{answer_b}``
(pairwise) or ``{answer}`` (single), and ``{reference}``, which becomes the reference block
when the question has a reference answer and the judge uses it, and nothing otherwise. Slots
are replaced textually, once, in one pass: any other brace in the template is left as written
and braces inside questions or answers are never read as slots (``str.format`` would do both,
and would let a template reach attributes of its arguments).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PAIRWISE, SINGLE = "pairwise", "single"
_SLOT = re.compile(r"\{(question|answer_a|answer_b|answer|reference)\}")
REQUIRED = {
    PAIRWISE: ("{question}", "{answer_a}", "{answer_b}"),
    SINGLE: ("{question}", "{answer}"),
}

SYSTEM = {
    ("pairwise", "en"): (
        "You are an impartial judge of two AI assistants' answers to the same user prompt. "
        "Judge helpfulness, correctness, relevance, completeness and clarity. If a reference "
        "answer is given, check both answers against it. Do not let the order of the answers, "
        "their length or the assistants' names sway you; a longer answer is not a better one. "
        "Explain briefly, then give exactly one final verdict on its own line, one of:\n"
        "[[A>>B]] Assistant A is significantly better\n"
        "[[A>B]] Assistant A is slightly better\n"
        "[[A=B]] Tie, relatively the same\n"
        "[[B>A]] Assistant B is slightly better\n"
        "[[B>>A]] Assistant B is significantly better\n"
        'Example of the last line: "My final verdict is: [[A>B]]".'
    ),
    ("pairwise", "ko"): (
        "당신은 같은 사용자 질문에 대한 두 AI 어시스턴트의 답변을 공정하게 평가하는 심사자입니다. "
        "유용성, 정확성, 관련성, 완전성, 명확성을 기준으로 판단하세요. "
        "참고 답변이 주어지면 두 답변을 그것과 비교해 확인하세요. "
        "답변의 순서, 길이, 어시스턴트의 이름에 흔들리지 마세요. 긴 답변이 "
        "더 좋은 답변은 아닙니다. 짧게 이유를 설명한 뒤, 마지막 줄에 다음 중 정확히 하나의 최종 "
        "판정을 쓰세요:\n"
        "[[A>>B]] 어시스턴트 A가 훨씬 낫다\n"
        "[[A>B]] 어시스턴트 A가 조금 낫다\n"
        "[[A=B]] 비슷하다(무승부)\n"
        "[[B>A]] 어시스턴트 B가 조금 낫다\n"
        "[[B>>A]] 어시스턴트 B가 훨씬 낫다\n"
        '마지막 줄의 예: "최종 판정: [[A>B]]".'
    ),
    ("single", "en"): (
        "You are an impartial judge of an AI assistant's answer to a user prompt. Consider "
        "helpfulness, correctness, relevance, depth and clarity. If a reference answer is "
        "given, check the answer against it. Do not reward length for its own sake. Explain "
        "briefly, then rate the answer from 1 to 10 on its own last line in exactly this "
        'format: "Rating: [[5]]".'
    ),
    ("single", "ko"): (
        "당신은 사용자 질문에 대한 AI 어시스턴트의 답변을 공정하게 평가하는 심사자입니다. 유용성, "
        "정확성, 관련성, 깊이, 명확성을 고려하세요. 참고 답변이 주어지면 답변을 그것과 비교해 "
        "확인하세요. 길이 자체를 보상하지 마세요. "
        "짧게 이유를 설명한 뒤, 마지막 줄에 1부터 10까지의 "
        '점수를 정확히 다음 형식으로 쓰세요: "평점: [[5]]".'
    ),
}

TEMPLATE = {
    ("pairwise", "en"): (
        "<|User Prompt|>\n{question}\n\n{reference}"
        "<|The Start of Assistant A's Answer|>\n{answer_a}\n<|The End of Assistant A's Answer|>"
        "\n\n<|The Start of Assistant B's Answer|>\n{answer_b}\n"
        "<|The End of Assistant B's Answer|>"
    ),
    ("pairwise", "ko"): (
        "<|사용자 질문|>\n{question}\n\n{reference}"
        "<|어시스턴트 A의 답변 시작|>\n{answer_a}\n<|어시스턴트 A의 답변 끝|>\n\n"
        "<|어시스턴트 B의 답변 시작|>\n{answer_b}\n<|어시스턴트 B의 답변 끝|>"
    ),
    ("single", "en"): (
        "[Question]\n{question}\n\n{reference}"
        "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
    ),
    ("single", "ko"): (
        "[질문]\n{question}\n\n{reference}[어시스턴트 답변 시작]\n{answer}\n[어시스턴트 답변 끝]"
    ),
}

REFERENCE = {
    "en": "<|Reference Answer|>\n{text}\n<|End of Reference Answer|>\n\n",
    "ko": "<|참고 답변|>\n{text}\n<|참고 답변 끝|>\n\n",
}


def default_system(mode: str, language: str) -> str:
    return SYSTEM[(mode, language if (mode, language) in SYSTEM else "en")]


def default_template(mode: str, language: str) -> str:
    return TEMPLATE[(mode, language if (mode, language) in TEMPLATE else "en")]


def template_errors(template: str, mode: str) -> list[str]:
    """What is wrong with an edited template for ``mode`` (empty: nothing)."""
    missing = [slot for slot in REQUIRED[mode] if slot not in template]
    errors = [f"the template needs the slot {slot}" for slot in missing]
    foreign = {"{answer}"} if mode == PAIRWISE else {"{answer_a}", "{answer_b}"}
    errors += [
        f"{slot} is not a slot of {mode} templates" for slot in sorted(foreign) if slot in template
    ]
    return errors


@dataclass(frozen=True)
class Conversation:
    """What one side wrote: the first reply, then (user turn, reply) follow-ups."""

    first: str
    followups: tuple[tuple[str, str], ...] = ()

    def text(self, language: str) -> str:
        if not self.followups:
            return self.first
        user, assistant = ("사용자", "어시스턴트") if language == "ko" else ("User", "Assistant")
        parts = [self.first]
        for turn, reply in self.followups:
            parts.append(f"### {user}\n{turn}\n\n### {assistant}\n{reply}")
        return "\n\n".join(parts)


def render(
    template: str,
    *,
    language: str,
    question: str,
    reference: str,
    answers: tuple[Conversation, ...],
) -> str:
    """The user message: ``template`` with its slots filled (one answer for single mode, two
    for pairwise)."""
    block = (
        REFERENCE.get(language, REFERENCE["en"]).replace("{text}", reference) if reference else ""
    )
    values = {"question": question, "reference": block}
    if len(answers) == 1:
        values["answer"] = answers[0].text(language)
    else:
        values["answer_a"] = answers[0].text(language)
        values["answer_b"] = answers[1].text(language)
    return _SLOT.sub(lambda m: values.get(m.group(1), m.group(0)), template)
