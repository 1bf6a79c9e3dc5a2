"""Untrusted Markdown (model output, uploaded questions) to sanitised HTML.

markdown-it-py renders with raw HTML disabled (it is escaped, never passed through), Pygments
highlights fenced code, and nh3 (Ammonia) sanitises the result against an allow-list. Only
nh3's output is ever marked safe.
"""

from __future__ import annotations

import functools

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "a",
    "span",
    "div",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
    "ol": {"start"},
}
# Table alignment comes out as a class, not markdown-it's style="text-align:…": the
# Content-Security-Policy (style-src 'self') blocks style attributes. See _align_classes.
ALIGN_CLASSES = {"ta-left", "ta-center", "ta-right"}
ALLOWED_CLASSES = {"th": ALIGN_CLASSES, "td": ALIGN_CLASSES}
_FORMATTER = HtmlFormatter(nowrap=True, classprefix="hl-")
MAX_RENDER_CHARS = 200_000


def _highlight(code: str, lang: str, attrs: str) -> str:
    if not lang:
        return ""  # markdown-it escapes it as plain code
    try:
        lexer = get_lexer_by_name(lang.strip().split()[0], stripall=False)
    except ClassNotFound:
        return ""
    return str(highlight(code, lexer, _FORMATTER))


def _align_classes(state: StateCore) -> None:
    for token in state.tokens:
        if token.type in {"th_open", "td_open"}:
            style = token.attrs.pop("style", None)
            if isinstance(style, str) and style.startswith("text-align:"):
                token.attrSet("class", f"ta-{style.removeprefix('text-align:')}")


@functools.cache
def _parser() -> MarkdownIt:
    parser = MarkdownIt(
        "commonmark", {"html": False, "linkify": False, "highlight": _highlight}
    ).enable(["table", "strikethrough"])
    parser.core.ruler.push("align_classes", _align_classes)
    return parser


# Every evaluator who gets a question sees the same texts, so renders are kept per process:
# the output depends on the text alone. Long texts are rendered each time, which bounds the
# cache's memory (CACHED_TEXTS x CACHE_MAX_CHARS characters in, about twice that out).
CACHED_TEXTS = 4096
CACHE_MAX_CHARS = 8000


def render_markdown(text: str) -> SafeString:
    """Sanitised HTML for untrusted Markdown. Links get rel=noopener noreferrer nofollow."""
    if len(text) <= CACHE_MAX_CHARS:
        return _render_cached(text)
    return _render(text)


@functools.lru_cache(maxsize=CACHED_TEXTS)
def _render_cached(text: str) -> SafeString:
    return _render(text)


def _render(text: str) -> SafeString:
    html = _parser().render(text[:MAX_RENDER_CHARS])
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        allowed_classes=ALLOWED_CLASSES,
    )
    return mark_safe(clean)  # noqa: S308  (nh3 output: sanitised against the allow-list)
