"""Anthropic's Messages API (and Message Batches) through the official ``anthropic`` SDK.

The SDK's own retries are off (``max_retries=0``): the queue's policy and our provider chain
decide what happens after a failure. The answer is the text of the reply; ``stop_reason ==
"max_tokens"`` means it was cut off (a transient bad answer).
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings

from translations.errors import BAD_ANSWER, ProviderError
from translations.providers import _errors
from translations.providers._lazy import LazyModule
from translations.providers.base import (
    JUDGE_PROMPT,
    SYSTEM_PROMPT,
    Provider,
    Request,
    Result,
    judge_message,
    parse_scores,
    parse_translations,
)

anthropic = LazyModule("anthropic")  # imported on first use (see _lazy)


@functools.lru_cache(maxsize=8)
def _client(api_key: str, base_url: str, timeout: float) -> Any:
    """One SDK client (and its connection pool) per configuration and process; SDK retries off."""
    return anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)


class AnthropicProvider(Provider):
    name = "anthropic"
    rpm_setting = "ANTHROPIC_RPM"

    def configured(self) -> bool:
        return bool(settings.ANTHROPIC_API_KEY)

    def model_name(self) -> str:
        return settings.ANTHROPIC_MODEL

    def client(self) -> Any:
        return _client(settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL, settings.TRANSLATION_HTTP_TIMEOUT)

    def params(self, request: Request, *, max_tokens: int) -> dict[str, Any]:
        return {
            "model": self.model_name(),
            "max_tokens": max_tokens,
            "system": SYSTEM_PROMPT,
            "messages": [{"role": "user", "content": request.user_message()}],
        }

    def _create(self, **params: Any) -> Any:
        try:
            return self.client().messages.create(**params)
        except anthropic.AnthropicError as exc:
            raise _errors.from_sdk(self.name, exc, anthropic, settings.ANTHROPIC_API_KEY) from None

    def translate(self, request: Request, *, max_tokens: int) -> Result:
        message = self._create(**self.params(request, max_tokens=max_tokens))
        return self.result(message, len(request.segments))

    def result(self, message: Any, count: int) -> Result:
        """Read one Messages API answer (a live call's or a batch item's)."""
        if getattr(message, "stop_reason", None) == "max_tokens":
            raise ProviderError(self.name, "the answer was cut off at max_tokens", kind=BAD_ANSWER)
        text = "".join(
            getattr(block, "text", "") for block in (message.content or []) if getattr(block, "type", "") == "text"
        )
        usage = getattr(message, "usage", None)
        return Result(
            translations=parse_translations(self.name, text, count),
            provider=self.name,
            model=getattr(message, "model", "") or self.model_name(),
            input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        )

    def judge(self, request: Request, translations: list[str]) -> list[int]:
        message = self._create(
            model=self.model_name(),
            max_tokens=1024,
            system=JUDGE_PROMPT,
            messages=[
                {
                    "role": "user",
                    "content": judge_message(
                        request.source_locale, request.target_locale, list(request.segments), translations
                    ),
                }
            ],
        )
        if message.stop_reason == "max_tokens":
            raise ProviderError(self.name, "the judge's answer was cut off", kind=BAD_ANSWER)
        text = "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text")
        return parse_scores(self.name, text, len(translations))

    # --- Message Batches ------------------------------------------------------------------------

    def batch_submit(self, requests: dict[str, tuple[Request, int]]) -> tuple[str, str]:
        """Submit one Message Batch; return (batch id, "")."""
        body = [
            {"custom_id": custom_id, "params": self.params(req, max_tokens=max_tokens)}
            for custom_id, (req, max_tokens) in requests.items()
        ]
        try:
            batch = self.client().messages.batches.create(requests=body)
        except anthropic.AnthropicError as exc:
            raise _errors.from_sdk(self.name, exc, anthropic, settings.ANTHROPIC_API_KEY) from None
        return batch.id, ""

    def batch_results(self, batch_id: str, input_file_id: str = "") -> dict[str, Any] | None:
        """Return {custom_id: message or ProviderError} once the batch has ended, else None."""
        try:
            client = self.client()
            batch = client.messages.batches.retrieve(batch_id)
            if batch.processing_status != "ended":
                return None
            results: dict[str, Any] = {}
            for item in client.messages.batches.results(batch_id):
                result = item.result
                if result.type == "succeeded":
                    results[item.custom_id] = result.message
                else:
                    detail = ""
                    if result.type == "errored":
                        detail = _errors.scrub(
                            str(getattr(result.error.error, "type", "") or ""), settings.ANTHROPIC_API_KEY
                        )
                    results[item.custom_id] = ProviderError(
                        self.name, f"batch item {result.type}" + (f" ({detail})" if detail else ""), kind=BAD_ANSWER
                    )
            return results
        except anthropic.AnthropicError as exc:
            raise _errors.from_sdk(self.name, exc, anthropic, settings.ANTHROPIC_API_KEY) from None
