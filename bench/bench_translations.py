"""Translations: the project's batching against one LLM call per segment, in the same run.

    REDIS_DB=4 REDIS_QUEUE_DB=5 /work/venv/bin/python bench/bench_translations.py [--segments 1000] [--delay 0.3]

A local server on loopback speaks the Anthropic Messages API (``tests/translations/llm_server.py``,
the suite's fake) and answers every call after ``--delay`` seconds (300 ms: a fast LLM). Both
contenders drive the real ``anthropic`` SDK through ``translations.providers.anthropic`` and
restore, verify and check every segment the same way; only the packing differs:

- **batched**: ``translations.services.translate.translate_texts`` — segments masked and packed
  into calls under ``TRANSLATION_MAX_INPUT_TOKENS`` / ``TRANSLATION_MAX_SEGMENTS_PER_CALL``;
- **baseline**: one ``AnthropicProvider.translate`` call per segment, in order.

Printed: calls made, wall time, and the ratios (target ≥ 10× fewer calls, ≥ 5× less time).
Nothing is written to a database; pacing is off (``ANTHROPIC_RPM=0``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DEBUG", "false")
os.environ["ANTHROPIC_RPM"] = "0"
os.environ["TRANSLATION_PROVIDERS"] = "anthropic"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broxiva.settings")


def segments(n: int) -> list[str]:
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(f"<p>Soft <b>organic cotton</b> shirt no. {i} for {{name}}, machine washable.</p>")
        else:
            out.append(f"Red cotton shirt model {i}, slim fit")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.3)
    args = parser.parse_args()

    from tests.translations.llm_server import LLMServer

    server = LLMServer(delay=args.delay)
    os.environ["ANTHROPIC_API_KEY"] = "bench-key"
    os.environ["ANTHROPIC_BASE_URL"] = server.url
    os.environ["ANTHROPIC_MODEL"] = "claude-bench"

    import django

    django.setup()
    from translations import formatting
    from translations.providers.anthropic import AnthropicProvider
    from translations.providers.base import Request
    from translations.services.translate import finish, translate_texts

    texts = segments(args.segments)
    provider = AnthropicProvider()

    start = time.perf_counter()
    batched = []
    for indices, outcomes in translate_texts(
        texts=texts, source_locale="en", target_locale="fr", content_type="product_description", chain=[provider]
    ):
        batched.extend(zip(indices, outcomes, strict=True))
    batched_time = time.perf_counter() - start
    batched_calls = len(server.calls("/v1/messages"))

    server.seen.clear()
    start = time.perf_counter()
    single = []
    for text in texts:
        masked = formatting.mask(text)
        result = provider.translate(Request("en", "fr", "product_description", (masked.text,)), max_tokens=512)
        single.append(finish(text, masked, result.translations[0], source_locale="en", target_locale="fr"))
    single_time = time.perf_counter() - start
    single_calls = len(server.calls("/v1/messages"))
    server.close()

    assert [o.text for _, o in sorted(batched, key=lambda p: p[0])] == [o.text for o in single], "results differ"
    print(f"{args.segments} segments to one locale, server answering after {args.delay * 1000:.0f} ms")
    print(f"{'contender':<28}{'calls':>8}{'wall time':>12}")
    print(f"{'batched (translate_texts)':<28}{batched_calls:>8}{batched_time:>11.2f}s")
    print(f"{'one call per segment':<28}{single_calls:>8}{single_time:>11.2f}s")
    print(f"ratio: {single_calls / batched_calls:.1f}x fewer calls, {single_time / batched_time:.1f}x less time")


if __name__ == "__main__":
    main()
