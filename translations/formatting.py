"""Formatting kept intact: mask it before the model sees the text, verify and restore after.

HTML tags, markdown (code spans, link targets, emphasis markers) and placeholders (``{name}``,
``{{ var }}``, ``%s``, ``%(name)s``) are replaced by opaque tokens ``⟦1⟧``, ``⟦2⟧``… that models
copy through untouched. Afterwards every token must come back exactly once; the restored text's
tags are compared with the source's by a real HTML parser (same tags, same nesting), and HTML
goes through ``nh3`` (ammonia) allowing exactly the source's tags and their attributes, so a
``<script>`` or an ``onclick`` the model invented never survives. Nothing is repaired silently:
each difference becomes a flag in words and the row needs review.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

import nh3

TOKEN = re.compile(r"⟦(\d+)⟧")

_HTML_TAG = r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"
_HTML_COMMENT = r"<!--.*?-->"
_CODE_SPAN = r"`[^`\n]+`"
_LINK_TARGET = r"\]\([^)\s]+(?:\s+\"[^\"]*\")?\)"  # the "](url)" half of [text](url)
_LINK_OPEN = r"\[(?=[^\[\]\n]*\]\()"  # the "[" that opens such a link
_PLACEHOLDER = (
    r"\{\{[^{}]*\}\}"  # {{ var }} (Jinja/Django/Liquid)
    r"|\{\%[^{}]*\%\}"  # {% tag %}
    r"|\{[A-Za-z_][A-Za-z0-9_.]*\}|\{\d+\}"  # {name}, {0}
    r"|%\([A-Za-z_][A-Za-z0-9_]*\)[sdif]|%[sdif]"  # %(name)s, %s
)
_EMPHASIS = r"\*\*|__|~~|(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])"
# A literal ⟦ or ⟧ in shop text would be read as one of our tokens: it becomes a piece of its own.
_OUR_BRACKETS = r"[⟦⟧]"
_MASKABLE = re.compile(
    "|".join(
        f"(?:{p})"
        for p in (
            _HTML_COMMENT,
            _HTML_TAG,
            _CODE_SPAN,
            _LINK_TARGET,
            _LINK_OPEN,
            _PLACEHOLDER,
            _EMPHASIS,
            _OUR_BRACKETS,
        )
    ),
    re.DOTALL,
)
_PLACEHOLDER_ONLY = re.compile(f"^(?:{_PLACEHOLDER})$")
_LOOKS_LIKE_HTML = re.compile(r"<\s*/?\s*[A-Za-z!]")


@dataclass
class Masked:
    """A segment with its formatting replaced by tokens; ``pieces[n-1]`` is what ``⟦n⟧`` stands for."""

    text: str
    pieces: list[str] = field(default_factory=list)


def mask(text: str) -> Masked:
    """Replace every tag, markdown marker and placeholder of ``text`` by a token."""
    pieces: list[str] = []

    def token(match: re.Match[str]) -> str:
        pieces.append(match.group(0))
        return f"⟦{len(pieces)}⟧"

    return Masked(text=_MASKABLE.sub(token, text), pieces=pieces)


@dataclass
class Restored:
    text: str
    flags: list[str] = field(default_factory=list)
    format_mismatch: bool = False


def _describe(pieces: list[str]) -> str:
    shown = [p if len(p) <= 40 else p[:37] + "..." for p in pieces]
    return ", ".join(shown)


def restore(masked: Masked, translated: str) -> Restored:
    """Put the formatting back into a translated segment and say what did not come back once."""
    flags: list[str] = []
    counts = Counter(int(n) for n in TOKEN.findall(translated))
    known = range(1, len(masked.pieces) + 1)
    missing = [masked.pieces[n - 1] for n in known if counts[n] == 0]
    doubled = [masked.pieces[n - 1] for n in known if counts[n] > 1]
    invented = sorted(n for n in counts if n not in known)
    if missing:
        flags.append(f"formatting missing from the translation: {_describe(missing)}")
    if doubled:
        flags.append(f"formatting repeated in the translation: {_describe(doubled)}")
    if invented:
        flags.append(f"the translation holds {len(invented)} unknown formatting marker(s)")

    def piece(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return masked.pieces[n - 1] if 1 <= n <= len(masked.pieces) else ""

    return Restored(text=TOKEN.sub(piece, translated), flags=flags, format_mismatch=bool(flags))


# --- Verification on the restored text ----------------------------------------------------------

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


class _TagTree(HTMLParser):
    """Collect each element as (its ancestors' names, its name) and each attribute per tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.elements: Counter[tuple[str, ...]] = Counter()
        self.attributes: dict[str, set[str]] = {}
        self.unbalanced = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements[(*self.stack, tag)] += 1
        self.attributes.setdefault(tag, set()).update(name for name, _ in attrs)
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements[(*self.stack, tag)] += 1
        self.attributes.setdefault(tag, set()).update(name for name, _ in attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if tag in self.stack:
            while self.stack:
                top = self.stack.pop()
                if top == tag:
                    break
                self.unbalanced += 1
        else:
            self.unbalanced += 1


def tag_tree(text: str) -> _TagTree:
    parser = _TagTree()
    parser.feed(text)
    parser.close()
    parser.unbalanced += len(parser.stack)
    return parser


def has_html(text: str) -> bool:
    return bool(_LOOKS_LIKE_HTML.search(text))


def placeholders(text: str) -> Counter[str]:
    return Counter(m.group(0) for m in _MASKABLE.finditer(text) if _PLACEHOLDER_ONLY.match(m.group(0)))


def compare(source: str, result: str) -> list[str]:
    """Return flags for tags (with nesting) and placeholders that differ between source and result."""
    flags: list[str] = []
    if has_html(source) or has_html(result):
        src, out = tag_tree(source), tag_tree(result)
        if src.elements != out.elements:
            missing = src.elements - out.elements
            extra = out.elements - src.elements
            names_missing = sorted({path[-1] for path in missing})
            names_extra = sorted({path[-1] for path in extra})
            if names_missing and not names_extra:
                flags.append(f"HTML tags missing: {', '.join(f'<{n}>' for n in names_missing)}")
            elif names_extra and not names_missing:
                flags.append(f"HTML tags added: {', '.join(f'<{n}>' for n in names_extra)}")
            else:
                flags.append("HTML tag nesting differs from the source")
        if out.unbalanced > src.unbalanced:
            flags.append("HTML tags are not closed as in the source")
    src_ph, out_ph = placeholders(source), placeholders(result)
    if src_ph != out_ph:
        missing = sorted((src_ph - out_ph).elements())
        extra = sorted((out_ph - src_ph).elements())
        if missing:
            flags.append(f"placeholders missing: {', '.join(missing)}")
        if extra:
            flags.append(f"placeholders added: {', '.join(extra)}")
    return flags


_NEVER_TAGS = frozenset(
    {
        "script",
        "style",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "base",
        "link",
        "meta",
        "template",
        "noscript",
    }
)


def sanitize(source: str, result: str) -> tuple[str, list[str]]:
    """Clean ``result`` with nh3 allowing only the source's tags and attributes; say what was removed.

    Plain-text content (no markup in source or result) is returned as is: nh3 would escape a
    literal ``&`` into ``&amp;``.
    """
    if not has_html(source) and not has_html(result):
        return result, []
    allowed = tag_tree(source)
    # Even a source's own script-carrying tags and event handlers are never allowed back.
    tags = set(allowed.attributes) - _NEVER_TAGS
    attributes = {
        tag: {n for n in names if not n.startswith("on")} for tag, names in allowed.attributes.items() if tag in tags
    }
    # The source's own link attributes are kept as they are (no rel added).
    cleaned = nh3.clean(result, tags=tags, attributes=attributes, link_rel=None, strip_comments=True)
    flags: list[str] = []
    if cleaned != result:
        before, after = tag_tree(result), tag_tree(cleaned)
        names_before = Counter(path[-1] for path in before.elements.elements())
        names_after = Counter(path[-1] for path in after.elements.elements())
        gone = sorted(names_before - names_after)
        lost_attrs = sorted(
            {
                a
                for tag, names in before.attributes.items()
                if tag in tags
                for a in names - after.attributes.get(tag, set())
            }
        )
        if gone:
            flags.append(f"HTML the source does not have was removed: {', '.join(f'<{t}>' for t in gone)}")
        if lost_attrs:
            flags.append(f"HTML attributes the source does not have were removed: {', '.join(lost_attrs)}")
    return cleaned, flags
