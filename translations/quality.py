"""Quality checks every result goes through; flags are sentences a reviewer understands.

Checks: empty, identical to the source while the languages differ, a length ratio outside the
bounds for the language pair, output in the wrong script (from ``unicodedata`` names), and the
formatting flags of ``translations.formatting``. Any flag, or a judge score below
``TRANSLATION_QUALITY_THRESHOLD``, makes the row need review.
"""

from __future__ import annotations

import unicodedata

from django.conf import settings

from translations import formatting
from translations.locales import language, script

# The words unicodedata names start with, per ISO 15924 script of a locale.
_SCRIPT_WORDS: dict[str, set[str]] = {
    "Latn": {"LATIN"},
    "Cyrl": {"CYRILLIC"},
    "Grek": {"GREEK"},
    "Arab": {"ARABIC"},
    "Hebr": {"HEBREW"},
    "Deva": {"DEVANAGARI"},
    "Thai": {"THAI"},
    "Hans": {"CJK"},
    "Hant": {"CJK"},
    "Jpan": {"CJK", "HIRAGANA", "KATAKANA"},
    "Kore": {"HANGUL", "CJK"},
    "Beng": {"BENGALI"},
    "Geor": {"GEORGIAN"},
    "Armn": {"ARMENIAN"},
}
_SCRIPT_NAMES = {
    "Latn": "Latin",
    "Cyrl": "Cyrillic",
    "Grek": "Greek",
    "Arab": "Arabic",
    "Hebr": "Hebrew",
    "Deva": "Devanagari",
    "Thai": "Thai",
    "Hans": "Chinese",
    "Hant": "Chinese",
    "Jpan": "Japanese",
    "Kore": "Korean",
    "Beng": "Bengali",
    "Geor": "Georgian",
    "Armn": "Armenian",
}
_DENSE = {"Hans", "Hant", "Jpan", "Kore"}  # a character carries a word or a syllable


def visible_text(text: str) -> str:
    """Return the text a shopper reads: markup and placeholders removed."""
    return formatting.TOKEN.sub(" ", formatting.mask(text).text)


def length_bounds(source_locale: str, target_locale: str) -> tuple[float, float]:
    pair = f"{language(source_locale)}:{language(target_locale)}"
    custom = settings.TRANSLATION_LENGTH_RATIOS.get(pair)
    if custom:
        return float(custom[0]), float(custom[1])
    low, high = settings.TRANSLATION_LENGTH_RATIO
    src_dense, dst_dense = script(source_locale) in _DENSE, script(target_locale) in _DENSE
    if dst_dense and not src_dense:
        return low / 4, high / 2
    if src_dense and not dst_dense:
        return low * 2, high * 3
    return low, high


def _script_word(char: str) -> str | None:
    if not char.isalpha():
        return None
    try:
        return unicodedata.name(char).split(" ", 1)[0]
    except ValueError:
        return None


def script_flag(text: str, target_locale: str) -> str | None:
    expected = script(target_locale)
    words = _SCRIPT_WORDS.get(expected)
    if not words:
        return None
    letters = [w for w in (_script_word(c) for c in visible_text(text)) if w]
    if len(letters) < 4:
        return None
    share = sum(1 for w in letters if w in words) / len(letters)
    if share >= 0.5:
        return None
    found = max(set(letters), key=letters.count).capitalize()
    return (
        f"the translation is mostly in {found} script, expected {_SCRIPT_NAMES.get(expected, expected)} "
        f"for {target_locale}"
    )


def check(*, source: str, result: str, source_locale: str, target_locale: str) -> list[str]:
    """Return the quality flags of ``result`` (formatting comparison excluded: see ``formatting``)."""
    flags: list[str] = []
    shown = visible_text(result).strip()
    if not result.strip():
        return ["the translation is empty"]
    if language(source_locale) != language(target_locale) and " ".join(result.split()) == " ".join(source.split()):
        if any(c.isalpha() for c in visible_text(source)):
            flags.append("the translation is identical to the source text")
    src_len = len(" ".join(visible_text(source).split()))
    out_len = len(" ".join(shown.split()))
    if src_len >= 12:
        low, high = length_bounds(source_locale, target_locale)
        ratio = out_len / src_len
        if ratio < low:
            flags.append(f"the translation is much shorter than the source ({ratio:.0%} of its length)")
        elif ratio > high:
            flags.append(f"the translation is much longer than the source ({ratio:.0%} of its length)")
    wrong_script = script_flag(result, target_locale)
    if wrong_script:
        flags.append(wrong_script)
    return flags
