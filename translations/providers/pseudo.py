"""The pseudo-locale provider: no key needed, clearly not a translation.

With no LLM key configured the embedded default still runs end to end: text comes back
accented, bracketed and about a third longer (``[Ŕéð ċöţţöñ šĥîŕţ ~~~]``), so untranslated
strings and layouts that break on longer text stand out. Its rows are flagged for review.
"""

from __future__ import annotations

from translations.formatting import TOKEN
from translations.providers.base import Provider, Request, Result, estimate_tokens

_ACCENTS = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "àƀċðéƒĝĥîĵķļɱñöþǫŕšţûṽŵẋýžÀƁĊÐÉƑĜĤÎĴĶĻṀÑÖÞǪŔŠŢÛṼŴẊÝŽ",
)
FLAG = "pseudo-locale text: no translation provider is configured, this is not a translation"


def pseudo(text: str) -> str:
    parts = TOKEN.split(text)
    # split() with a group alternates text and token numbers: accent only the text.
    out = "".join(part.translate(_ACCENTS) if i % 2 == 0 else f"⟦{part}⟧" for i, part in enumerate(parts))
    if not out.strip():
        return out
    return f"[{out} {'~' * max(1, len(text) // 3)}]"


class PseudoProvider(Provider):
    name = "pseudo"

    def configured(self) -> bool:
        return True

    def model_name(self) -> str:
        return "pseudo-locale"

    def translate(self, request: Request, *, max_tokens: int) -> Result:
        out = [pseudo(s) for s in request.segments]
        return Result(
            translations=out,
            provider=self.name,
            model=self.model_name(),
            input_tokens=sum(estimate_tokens(s) for s in request.segments),
            output_tokens=sum(estimate_tokens(s) for s in out),
        )

    def judge(self, request: Request, translations: list[str]) -> list[int]:
        return [0 for _ in translations]
