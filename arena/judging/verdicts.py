"""Reading a judge's verdict out of its text: strict on the markers, one documented fallback.

Pairwise verdicts are the five labels arena-hard-auto uses, ``A>>B``, ``A>B``, ``A=B``, ``B>A``
and ``B>>A``; single-answer grades are numbers from 1 to 10, MT-Bench style. The rules:

1. **Markers.** A verdict is written in double brackets: ``[[A>B]]``, ``[[7]]``. Text is
   NFKC-normalised first (full-width ``［［Ａ＞Ｂ］］`` is the same marker), ``≫`` reads as ``>>``
   and spaces inside the brackets are ignored. Every marker in the text counts; if they agree
   (the judge repeated its verdict) that is the verdict, if they differ the text is
   *unparseable* ("conflicting verdicts"). ``A<B`` style labels are read as their mirror
   (``A<B`` is ``B>A``), since the meaning is unambiguous.
2. **Fallback**, only when no marker is present: the last non-empty line may state the verdict
   on its own after a verdict phrase, e.g. ``Final verdict: A>B``, ``Verdict: B>>A``,
   ``최종 판정: A=B``, ``Rating: 7``, ``평점: 7/10``, optionally in single brackets or bold. A
   label anywhere else in the prose ("A>B would be unfair") is never taken.
3. Anything else is *unparseable*, with a reason; the raw text is kept and the judgment is
   counted as unparsed, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

PAIRWISE_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
# A's score of each label (1 = A won, 0.5 = tie) and whether the verdict is strong.
LABEL_SCORE = {"A>>B": 1.0, "A>B": 1.0, "A=B": 0.5, "B>A": 0.0, "B>>A": 0.0}
STRONG = frozenset({"A>>B", "B>>A"})
MIRROR = {"A>>B": "B>>A", "A>B": "B>A", "A=B": "A=B", "B>A": "A>B", "B>>A": "A>>B"}

_LABEL = r"(?:A\s*(?:>\s*>|>|=\s*=?|<\s*<|<)\s*B|B\s*(?:>\s*>|>|=\s*=?|<\s*<|<)\s*A)"
_MARKER = re.compile(r"\[\[\s*(" + _LABEL + r")\s*\]\]", re.IGNORECASE)
_GRADE_MARKER = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*(?:/\s*10\s*)?\]\]")
_PHRASE = (
    r"(?:(?:my\s+)?final\s+verdict(?:\s+is)?|verdict|judg(?:e)?ment|"
    r"최종\s*판정(?:은|:)?|판정(?:은)?|결론(?:은)?)"
)
_GRADE_PHRASE = r"(?:(?:final\s+)?(?:rating|score|grade)(?:\s+is)?|평점(?:은)?|점수(?:는)?)"
_FALLBACK = re.compile(
    r"^\W*" + _PHRASE + r"\s*[:：\-]?\s*[\*\[\(`]*\s*(" + _LABEL + r")\s*[\*\]\)`]*\s*[.。!]?\s*$",
    re.IGNORECASE,
)
_GRADE_FALLBACK = re.compile(
    r"^\W*"
    + _GRADE_PHRASE
    + r"\s*[:：\-]?\s*[\*\[\(`]*\s*(\d+(?:\.\d+)?)\s*(?:/\s*10|점)?\s*[\*\]\)`]*\s*[.。!]?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Parsed:
    """A verdict label (pairwise) or grade (single), or the reason there is none."""

    verdict: str = ""
    grade: float | None = None
    reason: str = ""
    fallback: bool = False

    @property
    def ok(self) -> bool:
        return not self.reason


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("≫", ">>").replace("≪", "<<")


def _label(raw: str) -> str:
    """The canonical label of a matched label text: spaces removed, ``==`` read as ``=``, and
    ``<`` turned round (``A<B`` is ``B>A``, ``B<<A`` is ``A>>B``)."""
    compact = re.sub(r"\s+", "", raw).upper().replace("==", "=")
    left, op, right = compact[0], compact[1:-1], compact[-1]
    if "<" in op:
        left, op, right = right, op.replace("<", ">"), left
    return "A=B" if op == "=" else f"{left}{op}{right}"


def parse_pairwise(text: str) -> Parsed:
    """The five-level verdict of a pairwise judgment (see the module's rules)."""
    if not text.strip():
        return Parsed(reason="empty output")
    normal = _normalise(text)
    found = {_label(m.group(1)) for m in _MARKER.finditer(normal)}
    found &= set(PAIRWISE_LABELS)
    if len(found) == 1:
        return Parsed(verdict=found.pop())
    if len(found) > 1:
        return Parsed(reason="conflicting verdicts: " + ", ".join(sorted(found)))
    lines = [line.strip() for line in normal.splitlines() if line.strip()]
    match = _FALLBACK.match(lines[-1]) if lines else None
    if match:
        label = _label(match.group(1))
        if label in LABEL_SCORE:
            return Parsed(verdict=label, fallback=True)
    return Parsed(reason="no verdict marker such as [[A>B]]")


def parse_grade(text: str) -> Parsed:
    """The 1–10 grade of a single-answer judgment (see the module's rules)."""
    if not text.strip():
        return Parsed(reason="empty output")
    normal = _normalise(text)
    values = {float(m.group(1)) for m in _GRADE_MARKER.finditer(normal)}
    fallback = False
    if not values:
        lines = [line.strip() for line in normal.splitlines() if line.strip()]
        match = _GRADE_FALLBACK.match(lines[-1]) if lines else None
        if match is None:
            return Parsed(reason="no grade marker such as [[7]]")
        values, fallback = {float(match.group(1))}, True
    if len(values) > 1:
        return Parsed(reason="conflicting grades: " + ", ".join(f"{v:g}" for v in sorted(values)))
    grade = values.pop()
    if not 1.0 <= grade <= 10.0:
        return Parsed(reason=f"grade {grade:g} is outside 1–10")
    return Parsed(grade=grade, fallback=fallback)
