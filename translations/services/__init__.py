"""Services of the translations app: the lifecycle state machine, the job's work, batches.

``request_translation`` is the interface other apps call; ``request_translations`` is its
set-based form (the product sync hands a page's titles and descriptions over in one call).
"""

from __future__ import annotations

from translations.errors import InvalidTransition, NeedsReview
from translations.services.batch import batch_poll, translate_catalog
from translations.services.bulk import RequestSummary, TranslationRequest, request_translations
from translations.services.lifecycle import (
    allowed_actions,
    approve,
    edit,
    publish,
    reject,
    request_translation,
    retranslate,
)
from translations.services.translate import translation_run

__all__ = [
    "InvalidTransition",
    "NeedsReview",
    "RequestSummary",
    "TranslationRequest",
    "allowed_actions",
    "approve",
    "batch_poll",
    "edit",
    "publish",
    "reject",
    "request_translation",
    "request_translations",
    "retranslate",
    "translate_catalog",
    "translation_run",
]
