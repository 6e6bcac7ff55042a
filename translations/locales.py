"""BCP 47 locale tags (``pt-BR``, ``zh-Hant-TW``): checked with langcodes, kept as given."""

from __future__ import annotations

import langcodes

from translations.errors import InvalidLocale


def check_locale(value: object) -> str:
    """Return the tag in its standard casing (``pt-br`` → ``pt-BR``) or raise ``InvalidLocale``."""
    if not isinstance(value, str) or not value.strip() or len(value) > 35:
        raise InvalidLocale(f"{value!r} is not a BCP 47 locale tag such as en, fr or pt-BR")
    text = value.strip().replace("_", "-")
    try:
        tag = langcodes.standardize_tag(text, macro=False)
        parsed = langcodes.Language.get(tag)
    except (ValueError, LookupError):
        raise InvalidLocale(f"{value!r} is not a BCP 47 locale tag such as en, fr or pt-BR") from None
    if not parsed.language or not parsed.is_valid():
        raise InvalidLocale(f"{value!r} is not a BCP 47 locale tag such as en, fr or pt-BR")
    return tag


def language(tag: str) -> str:
    """Return the language subtag (``pt`` for ``pt-BR``)."""
    return langcodes.Language.get(tag).language or tag.split("-")[0].lower()


def script(tag: str) -> str:
    """Return the script the locale is written in (``Latn``, ``Cyrl``, ``Jpan``...), inferred if absent."""
    return langcodes.Language.get(tag).maximize().script or "Latn"
