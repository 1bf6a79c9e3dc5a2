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
    "th": {"style"},
    "td": {"style"},
    "ol": {"start"},
}
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


@functools.cache
def _parser() -> MarkdownIt:
    return MarkdownIt(
        "commonmark", {"html": False, "linkify": False, "highlight": _highlight}
    ).enable(["table", "strikethrough"])


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
        filter_style_properties={"text-align"},
    )
    return mark_safe(clean)  # noqa: S308  (nh3 output: sanitised against the allow-list)
