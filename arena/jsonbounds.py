"""json.loads with a nesting-depth limit, checked without recursion before parsing.

CPython's json decoder recurses once per nesting level, so ``[`` repeated 100,000 times raises
RecursionError (a 500) instead of a decoding error. orjson would refuse such input itself, but
at a fixed depth of 1024 and as another compiled dependency; a regular-expression scan of the
brackets outside strings is a few lines, linear in the input and needs nothing new.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
# A string literal (escapes included; an unterminated one runs to the end), or one bracket
# outside strings. Possessive quantifiers: no backtracking, so the scan stays linear.
_TOKENS = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?|[\[\]{}]', re.DOTALL)


class JSONTooDeep(json.JSONDecodeError):
    """Raised before parsing; a JSONDecodeError, so code that reports malformed JSON reports
    this too, with its line."""


def check_depth(text: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise JSONTooDeep if arrays and objects nest more than ``max_depth`` levels in ``text``.
    Malformed text may pass or fail here; json.loads judges it afterwards."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                raise JSONTooDeep(f"nested more than {max_depth} levels deep", text, match.start())
        elif token in ("]", "}"):
            depth -= 1


def loads(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads of ``text`` after check_depth: JSONDecodeError for any bad input."""
    check_depth(text, max_depth=max_depth)
    return json.loads(text)
