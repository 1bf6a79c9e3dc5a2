"""Fingerprint stripping on the test corpus: what is found before and after, and what else moved.

Run from the repository root: ``python -m benchmarks.fingerprints``.

Per family (one corpus file each) it prints
- artifacts: template changes reported when stripping the raw text (special tokens, role
  headers, stop sequences, hallucinated turns, echoed prompts, template whitespace) and, after,
  those reported when stripping the shown text again (target 0);
- tokens left: known special-token strings still in the shown text outside code, found by an
  independent scan (HTML-like ``<s>``/``</s>`` kept on purpose in prose are counted apart);
- identity: self-identification mentions detected in the raw text and in the shown text
  (target 0 after, for answers under the redact policy; ``exclude`` answers keep theirs and
  are counted as flagged);
- identity recall per language and the false-flag rate: over the corpus cases marked
  ``"self": true`` (a self-identification, counted found when the exclude policy flags it) and
  ``"self": false`` (a neutral mention, counted a false flag when it is flagged), by ``lang``;
- reasoning traces: ``reasoning_trace`` changes (``<think>`` traces, gpt-oss non-final
  channels) and the cases that had one, and ``<think>``/``</think>`` tags still in the shown
  text outside code (target 0), printed as one line after the table;
- chars changed outside artifacts: the edit size between the shown text and the hand-written
  expected text (target 0), i.e. every character that moved beyond the intended removals.
"""

from __future__ import annotations

import difflib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models_backend.fingerprints import KNOWN_SPECIAL_TOKENS, strip_answer

CORPUS_DIR = Path(__file__).resolve().parents[1] / "tests" / "models_backend" / "fingerprint_corpus"
TEMPLATE_KINDS = frozenset(
    {
        "special_token",
        "role_header",
        "stop_sequence",
        "hallucinated_turn",
        "prompt_echo",
        "reasoning_trace",
    }
)
THINK_TAG_RE = re.compile(r"</?think>")
HTML_LIKE = frozenset({"<s>", "</s>"})
CODE_RE = re.compile(r"^[ \t>]*(`{3,}|~{3,}).*?(?:^[ \t>]*\1[ \t]*$|\Z)|(`+).+?\2", re.M | re.S)
TOKENS = sorted(
    {t for ts in KNOWN_SPECIAL_TOKENS.values() for t in ts if not t.endswith(":")},
    key=len,
    reverse=True,
)
TOKEN_RE = re.compile("|".join(re.escape(t) for t in TOKENS))


@dataclass
class Row:
    family: str
    cases: int = 0
    artifacts_before: int = 0
    artifacts_after: int = 0
    tokens_left: int = 0
    html_kept: int = 0
    identity_before: int = 0
    identity_after: int = 0
    flagged: int = 0
    chars_changed: int = 0
    traces_removed: int = 0
    trace_cases: int = 0
    think_left: int = 0
    mismatches: list[str] = field(default_factory=list)
    # lang -> [self cases, flagged self cases, neutral cases, flagged neutral cases]
    by_lang: dict[str, list[int]] = field(default_factory=dict)


def _template_changes(report: dict[str, object]) -> int:
    changes = report["changes"]
    assert isinstance(changes, list)
    return sum(1 for c in changes if c["kind"] in TEMPLATE_KINDS)


def _mentions(report: dict[str, object], *, in_code: bool = True) -> int:
    mentions = report["identity_mentions"]
    assert isinstance(mentions, list)
    # Identity in code is flagged, never redacted, so it is still there after.
    return sum(1 for m in mentions if in_code or not m.get("code"))


def _edit_size(a: str, b: str) -> int:
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal")


def _bench_family(path: Path) -> Row:
    family: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    row = Row(path.stem)
    for case in family["cases"]:
        options: dict[str, Any] = {
            "special_tokens": case.get("special_tokens", family.get("special_tokens", [])),
            "stop": case.get("stop", family.get("stop", [])),
            "identity_terms": case.get("identity_terms", family.get("identity_terms", [])),
        }
        policy = case.get("policy", "redact")
        result = strip_answer(case["raw"], policy=policy, **options)
        again = strip_answer(result.shown, policy="exclude", **options)
        before = strip_answer(case["raw"], policy="exclude", **options)
        prose = CODE_RE.sub("", result.shown)
        left = TOKEN_RE.findall(prose)

        row.cases += 1
        row.artifacts_before += _template_changes(result.report)
        row.artifacts_after += _template_changes(again.report)
        row.tokens_left += sum(1 for t in left if t not in HTML_LIKE)
        row.html_kept += sum(1 for t in left if t in HTML_LIKE)
        traces = result.counts.get("reasoning_trace", 0)
        row.traces_removed += traces
        row.trace_cases += int(traces > 0)
        row.think_left += len(THINK_TAG_RE.findall(prose))
        row.identity_before += _mentions(before.report)
        if policy == "exclude":
            row.flagged += int(result.flagged)
        else:
            row.identity_after += _mentions(again.report, in_code=False)
        if "self" in case:
            counts = row.by_lang.setdefault(case.get("lang", "en"), [0, 0, 0, 0])
            slot = 0 if case["self"] else 2
            counts[slot] += 1
            counts[slot + 1] += int(before.flagged)
        changed = _edit_size(result.shown, case["expected"])
        row.chars_changed += changed
        if changed:
            row.mismatches.append(case["note"])
    return row


def main() -> None:
    started = time.perf_counter()
    rows = [_bench_family(p) for p in sorted(CORPUS_DIR.glob("*.json"))]
    elapsed = time.perf_counter() - started
    total = Row("TOTAL")
    for row in rows:
        for name in (
            "cases",
            "artifacts_before",
            "artifacts_after",
            "tokens_left",
            "html_kept",
            "identity_before",
            "identity_after",
            "flagged",
            "chars_changed",
            "traces_removed",
            "trace_cases",
            "think_left",
        ):
            setattr(total, name, getattr(total, name) + getattr(row, name))
        total.mismatches += [f"{row.family}: {m}" for m in row.mismatches]
        for lang, counts in row.by_lang.items():
            sums = total.by_lang.setdefault(lang, [0, 0, 0, 0])
            for i, n in enumerate(counts):
                sums[i] += n

    header = (
        f"{'family':<15}{'cases':>6}{'artifacts':>11}{'after':>7}{'tokens':>8}{'<s>':>5}"
        f"{'identity':>10}{'after':>7}{'flagged':>9}{'chars changed':>15}"
    )
    sub = (
        f"{'':<15}{'':>6}{'before':>11}{'':>7}{'left':>8}{'kept':>5}{'before':>10}{'':>7}"
        f"{'(exclude)':>9}{'outside artif.':>15}"
    )
    print("Fingerprint stripping on tests/models_backend/fingerprint_corpus")
    print(header)
    print(sub)
    print("-" * len(header))
    for row in [*rows, total]:
        if row is total:
            print("-" * len(header))
        print(
            f"{row.family:<15}{row.cases:>6}{row.artifacts_before:>11}{row.artifacts_after:>7}"
            f"{row.tokens_left:>8}{row.html_kept:>5}{row.identity_before:>10}"
            f"{row.identity_after:>7}{row.flagged:>9}{row.chars_changed:>15}"
        )
    print()
    print(
        f"{total.cases} cases in {elapsed * 1000:.0f} ms "
        f"({elapsed / max(total.cases, 1) * 1000:.2f} ms per case, 3 strips each)"
    )
    print(
        "targets: artifacts after = 0, tokens left = 0, identity after = 0, "
        "chars changed outside artifacts = 0"
    )
    print(
        f"reasoning traces removed: {total.traces_removed} in {total.trace_cases} cases; "
        f"<think> tags left outside code: {total.think_left} (target 0)"
    )
    _print_identity(total.by_lang)
    if total.mismatches:
        print("cases whose shown text differs from the expected text:")
        for note in total.mismatches:
            print(f"  - {note}")


def _print_identity(by_lang: dict[str, list[int]]) -> None:
    if not by_lang:
        return
    print()
    print("identity recall per language (self-identification cases flagged under exclude):")
    for lang, (selves, found, _, _) in sorted(by_lang.items()):
        if selves:
            print(f"  recall {lang}: {found}/{selves} = {found / selves:.1%}")
    selves = sum(c[0] for c in by_lang.values())
    found = sum(c[1] for c in by_lang.values())
    neutral = sum(c[2] for c in by_lang.values())
    false = sum(c[3] for c in by_lang.values())
    print(f"  recall all: {found}/{max(selves, 1)} = {found / max(selves, 1):.1%} (target >= 98%)")
    print(
        f"false flags on neutral mentions: {false}/{neutral} = {false / max(neutral, 1):.1%} "
        "(target 0)"
    )


if __name__ == "__main__":
    main()
