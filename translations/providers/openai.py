"""OpenAI's Chat Completions (and Batch API) through the official ``openai`` SDK.

``OPENAI_BASE_URL`` may point at any OpenAI-compatible server (a local model). The answer is
requested as JSON (``response_format={"type": "json_object"}``); ``finish_reason == "length"``
means it was cut off (a transient bad answer). SDK retries are off (``max_retries=0``).
"""

from __future__ import annotations

import functools
import io
import json
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

openai = LazyModule("openai")  # imported on first use (see _lazy)


@functools.lru_cache(maxsize=8)
def _client(api_key: str, base_url: str, timeout: float) -> Any:
    """One SDK client (and its connection pool) per configuration and process; SDK retries off."""
    return openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)


class OpenAIProvider(Provider):
    name = "openai"
    rpm_setting = "OPENAI_RPM"

    def configured(self) -> bool:
        return bool(settings.OPENAI_API_KEY)

    def model_name(self) -> str:
        return settings.OPENAI_MODEL

    def client(self) -> Any:
        return _client(settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.TRANSLATION_HTTP_TIMEOUT)

    def params(
        self, request: Request, *, max_tokens: int, system: str = SYSTEM_PROMPT, user: str | None = None
    ) -> dict[str, Any]:
        return {
            "model": self.model_name(),
            "max_tokens": max_tokens,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user if user is not None else request.user_message()},
            ],
        }

    def _create(self, **params: Any) -> Any:
        try:
            return self.client().chat.completions.create(**params)
        except openai.OpenAIError as exc:
            raise _errors.from_sdk(self.name, exc, openai, settings.OPENAI_API_KEY) from None

    def _text(self, completion: Any) -> str:
        choices = getattr(completion, "choices", None) or []
        if not choices:
            raise ProviderError(self.name, "the answer has no choices", kind=BAD_ANSWER)
        if choices[0].finish_reason == "length":
            raise ProviderError(self.name, "the answer was cut off (finish_reason length)", kind=BAD_ANSWER)
        return choices[0].message.content or ""

    def translate(self, request: Request, *, max_tokens: int) -> Result:
        return self.result(self._create(**self.params(request, max_tokens=max_tokens)), len(request.segments))

    def result(self, completion: Any, count: int) -> Result:
        usage = getattr(completion, "usage", None)
        return Result(
            translations=parse_translations(self.name, self._text(completion), count),
            provider=self.name,
            model=getattr(completion, "model", "") or self.model_name(),
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )

    def judge(self, request: Request, translations: list[str]) -> list[int]:
        user = judge_message(request.source_locale, request.target_locale, list(request.segments), translations)
        completion = self._create(**self.params(request, max_tokens=1024, system=JUDGE_PROMPT, user=user))
        return parse_scores(self.name, self._text(completion), len(translations))

    # --- Batch API ------------------------------------------------------------------------------

    def batch_submit(self, requests: dict[str, tuple[Request, int]]) -> tuple[str, str]:
        """Upload the JSONL of requests (purpose=batch) and create the batch; return (batch id, file id)."""
        lines = [
            json.dumps(
                {
                    "custom_id": custom_id,
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": self.params(req, max_tokens=max_tokens),
                },
                ensure_ascii=False,
            )
            for custom_id, (req, max_tokens) in requests.items()
        ]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            client = self.client()
            uploaded = client.files.create(file=("translations.jsonl", io.BytesIO(data)), purpose="batch")
            batch = client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        except openai.OpenAIError as exc:
            raise _errors.from_sdk(self.name, exc, openai, settings.OPENAI_API_KEY) from None
        return batch.id, uploaded.id

    def batch_results(self, batch_id: str, input_file_id: str = "") -> dict[str, Any] | None:
        """Return {custom_id: completion or ProviderError} once the batch is over, else None."""
        try:
            client = self.client()
            batch = client.batches.retrieve(batch_id)
            if batch.status in ("validating", "in_progress", "finalizing", "cancelling"):
                return None
            results: dict[str, Any] = {}
            for file_id in (batch.output_file_id, batch.error_file_id):
                if not file_id:
                    continue
                for line in client.files.content(file_id).text.splitlines():
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    custom_id = str(item.get("custom_id", ""))
                    response = item.get("response") or {}
                    if response.get("status_code") == 200 and isinstance(response.get("body"), dict):
                        results[custom_id] = openai.types.chat.ChatCompletion.model_validate(response["body"])
                    else:
                        error = item.get("error") or (response.get("body") or {}).get("error") or {}
                        code = _errors.scrub(
                            str(error.get("code") or error.get("type") or "failed"), settings.OPENAI_API_KEY
                        )
                        results[custom_id] = ProviderError(self.name, f"batch item failed ({code})", kind=BAD_ANSWER)
            return results
        except openai.OpenAIError as exc:
            raise _errors.from_sdk(self.name, exc, openai, settings.OPENAI_API_KEY) from None
        except ValueError:  # a line that is not JSON, or a body that is not a chat completion
            raise ProviderError(
                self.name, "the batch output is not JSONL of chat completions", kind=BAD_ANSWER
            ) from None
