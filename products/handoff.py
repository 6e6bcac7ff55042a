"""Hand new or changed product text to the translations app.

``request_translation`` is the one door to ``translations.services.request_translation``: the
import is lazy so that this app runs (and its tests pass) where the translations app is absent
or older; tests replace this function to record the calls.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from broxiva.models import Tenant

logger = logging.getLogger(__name__)
_warned = False


def request_translation(**kwargs: Any) -> Any:
    """Call ``translations.services.request_translation(**kwargs)``; log and skip if it is not there."""
    global _warned
    try:
        from translations.services import request_translation as request
    except ImportError:
        if not _warned:  # once per process, not once per product
            logger.warning(
                "translations.services.request_translation is not available: product text is not "
                "handed off for translation"
            )
            _warned = True
        return None
    return request(**kwargs)


def request_product_translations(*, tenant: Tenant, changes: Iterable[tuple[Any, list[str]]]) -> int:
    """One request per (product, changed text field, other enabled locale); return how many.

    ``changes`` pairs a saved product (with its id) with the names of its title/description
    fields that were created or changed. Empty text is not sent.
    """
    targets = [locale for locale in tenant.locales if locale != tenant.default_locale]
    if not targets:
        return 0
    count = 0
    for product, names in changes:
        for name in names:
            text = getattr(product, name)
            if not text:
                continue
            for target in targets:
                request_translation(
                    tenant_id=tenant.id,
                    content_type=f"product_{name}",
                    entity_id=str(product.pk),
                    field_name=name,
                    source_locale=tenant.default_locale,
                    target_locale=target,
                    source_text=text,
                )
                count += 1
    return count
