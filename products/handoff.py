"""Hand new or changed product text to the translations app, one set-based call per page.

The sync engine calls ``request_product_translations`` once per written page with the products
whose title or description was created or changed; every (product, field, other enabled locale)
becomes one request of a single ``translations.services.request_translations`` call, so the
hand-off costs a constant number of SQL round trips per page (issue 13: O(pages), not
O(products)). The translations app decides what is new, unchanged (no-op) or changed (a new
draft that keeps the published text) and enqueues its jobs through the outbox: they are pushed
when the page's transaction commits, and not at all if it rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from broxiva.models import Tenant
from translations.services import TranslationRequest, request_translations


def request_product_translations(*, tenant: Tenant, changes: Iterable[tuple[Any, list[str]]]) -> int:
    """Ask for every (product, changed text field, other enabled locale) at once; return how many.

    ``changes`` pairs a saved product (with its id) with the names of its title/description
    fields that were created or changed. Empty (or blank) text is not sent.
    """
    targets = [locale for locale in tenant.locales if locale != tenant.default_locale]
    if not targets:
        return 0
    requests = [
        TranslationRequest(
            tenant_id=tenant.id,
            content_type=f"product_{name}",
            entity_id=str(product.pk),
            field_name=name,
            source_locale=tenant.default_locale,
            target_locale=target,
            source_text=text,
        )
        for product, names in changes
        for name in names
        if (text := getattr(product, name)) and text.strip()
        for target in targets
    ]
    if not requests:
        return 0
    request_translations(requests)
    return len(requests)
