"""Services of the translations app: the lifecycle state machine, the job's work, batches.

``request_translation`` is the interface other apps call (products: titles and descriptions).
"""

from __future__ import annotations

from translations.errors import InvalidTransition, NeedsReview
from translations.services.batch import batch_poll, translate_catalog
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
    "allowed_actions",
    "approve",
    "batch_poll",
    "edit",
    "publish",
    "reject",
    "request_translation",
    "retranslate",
    "translate_catalog",
    "translation_run",
]
