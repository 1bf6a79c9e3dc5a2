"""The verdict parser on a corpus of realistic judge outputs, English and Korean, well formed
and malformed: strict on the markers, the documented fallback, and never a guess."""

from __future__ import annotations

import pytest

from arena.judging.verdicts import parse_grade, parse_pairwise

PAIRWISE_OK = [
    # arena-hard-auto's own shape: reasoning, then the marker line.
    ("Assistant A is more accurate and concise.\n\nMy final verdict is: [[A>B]]", "A>B"),
    ("Both answers are correct, but B explains its steps.\nMy final verdict is [[B>A]].", "B>A"),
    ("A ignores the question entirely.\n\n**Final verdict: [[B>>A]]**", "B>>A"),
    ("They are essentially the same.\nMy final verdict is tie: [[A=B]]", "A=B"),
    ("[[A>>B]]", "A>>B"),
    ("The marker is repeated: [[A>B]] ... so, again, [[A>B]]", "A>B"),
    ("Spaces inside: [[ B > A ]]", "B>A"),
    ("Lower case: [[a>b]]", "A>B"),
    ("Mirrored notation: [[A<B]]", "B>A"),
    ("Mirrored strong: [[B<<A]]", "A>>B"),
    ("Tie written backwards: [[B=A]]", "A=B"),
    ("Double equals: [[A==B]]", "A=B"),
    ("Full-width brackets and signs: ［［Ａ＞Ｂ］］", "A>B"),
    ("Much-greater sign: [[A≫B]]", "A>>B"),
    # Korean.
    ("어시스턴트 A가 질문에 더 정확하게 답했습니다.\n\n최종 판정: [[A>B]]", "A>B"),
    ("두 답변 모두 비슷한 수준입니다.\n최종 판정은 [[A=B]]입니다.", "A=B"),
    ("B의 설명이 훨씬 자세하고 정확합니다. 최종 판정: [[B>>A]]", "B>>A"),
]

PAIRWISE_FALLBACK = [
    ("A is better.\nMy final verdict is: A>B", "A>B"),
    ("Reasoning...\nFinal verdict: B>>A.", "B>>A"),
    ("Reasoning...\n**Verdict:** A=B", "A=B"),
    ("설명...\n최종 판정: B>A", "B>A"),
    ("설명...\n판정: [A>B]", "A>B"),
]

PAIRWISE_BAD = [
    ("", "empty output"),
    ("   \n ", "empty output"),
    ("I think A>B because it is shorter.", "no verdict marker"),
    ("A>B", "no verdict marker"),  # a bare label with no verdict phrase is not taken
    ("My final verdict is: [[A>B]]\nOn second thought: [[B>A]]", "conflicting verdicts"),
    ("Verdict: A>B\nmore text after the verdict line", "no verdict marker"),
    ("[[A>C]]", "no verdict marker"),
    ("[[Assistant A]]", "no verdict marker"),
    ("The final verdict is A is better", "no verdict marker"),
    ("Final verdict: A>B or B>A", "no verdict marker"),
    ("최종 판정: 어시스턴트 A", "no verdict marker"),
    ("답변 A가 더 좋습니다.", "no verdict marker"),
    ("[[A>B]] [[A>>B]]", "conflicting verdicts"),  # strong and weak are different verdicts
    ("[A>B]", "no verdict marker"),  # single brackets mid-text, not a verdict line
]


@pytest.mark.parametrize(("text", "verdict"), PAIRWISE_OK)
def test_marked_verdicts_are_read(text: str, verdict: str) -> None:
    parsed = parse_pairwise(text)
    assert parsed.ok
    assert parsed.verdict == verdict
    assert not parsed.fallback


@pytest.mark.parametrize(("text", "verdict"), PAIRWISE_FALLBACK)
def test_a_last_line_verdict_is_read_by_the_fallback(text: str, verdict: str) -> None:
    parsed = parse_pairwise(text)
    assert parsed.verdict == verdict
    assert parsed.fallback


@pytest.mark.parametrize(("text", "reason"), PAIRWISE_BAD)
def test_malformed_verdicts_are_unparseable_with_a_reason(text: str, reason: str) -> None:
    parsed = parse_pairwise(text)
    assert not parsed.ok
    assert parsed.verdict == ""
    assert reason in parsed.reason


GRADES_OK = [
    ("The answer is correct and well explained.\nRating: [[8]]", 8.0, False),
    ("Rating: [[10]]", 10.0, False),
    ("Mostly wrong. Rating: [[2]]", 2.0, False),
    ("Rating: [[7.5]]", 7.5, False),
    ("Rating: [[ 6 / 10 ]]", 6.0, False),
    ("정확하고 친절한 답변입니다.\n평점: [[9]]", 9.0, False),
    ("Rating: [[4]] ... as said, [[4]]", 4.0, False),
    ("Some reasoning.\nRating: 7", 7.0, True),
    ("Some reasoning.\nScore: 5/10", 5.0, True),
    ("설명...\n평점: 8/10", 8.0, True),
    ("설명...\n점수: 6점", 6.0, True),
]

GRADES_BAD = [
    ("", "empty output"),
    ("Rating: [[11]]", "outside 1–10"),
    ("Rating: [[0]]", "outside 1–10"),
    ("Rating: [[3]] no wait [[4]]", "conflicting grades"),
    ("I would give it a seven.", "no grade marker"),
    ("Rating: 7\nbut there is more text", "no grade marker"),
    ("[[A>B]]", "no grade marker"),
    ("평점: 아주 좋음", "no grade marker"),
]


@pytest.mark.parametrize(("text", "grade", "fallback"), GRADES_OK)
def test_grades_are_read(text: str, grade: float, fallback: bool) -> None:
    parsed = parse_grade(text)
    assert parsed.ok
    assert parsed.grade == grade
    assert parsed.fallback is fallback


@pytest.mark.parametrize(("text", "reason"), GRADES_BAD)
def test_malformed_grades_are_unparseable_with_a_reason(text: str, reason: str) -> None:
    parsed = parse_grade(text)
    assert not parsed.ok
    assert parsed.grade is None
    assert reason in parsed.reason


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_default_prompts_ask_for_what_the_parser_reads(language: str) -> None:
    import re

    from arena.judging import prompts

    pairwise = prompts.default_system("pairwise", language)
    # Every label the prompt offers is read as itself, and its example last line parses.
    for label in ("A>>B", "A>B", "A=B", "B>A", "B>>A"):
        assert f"[[{label}]]" in pairwise
        assert parse_pairwise(f"…\n[[{label}]]").verdict == label
    example = re.findall(r'"([^"]+)"', pairwise)[-1]
    assert parse_pairwise("Some reasoning.\n" + example).verdict == "A>B"
    single = prompts.default_system("single", language)
    example = re.findall(r'"([^"]+)"', single)[-1]
    assert parse_grade("Some reasoning.\n" + example).grade == 5.0
    for mode, answers in (("pairwise", 2), ("single", 1)):
        template = prompts.default_template(mode, language)
        assert prompts.template_errors(template, mode) == []
        text = prompts.render(
            template,
            language=language,
            question="QUESTION-TEXT",
            reference="REFERENCE-TEXT",
            answers=tuple(prompts.Conversation(f"ANSWER-{k}") for k in range(answers)),
        )
        for part in ["QUESTION-TEXT", "REFERENCE-TEXT"] + [f"ANSWER-{k}" for k in range(answers)]:
            assert part in text
        assert "{" not in text
