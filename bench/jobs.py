"""Jobs the worker benchmark runs (importable by dotted path, as every job must be)."""

from __future__ import annotations

import time


def noop() -> None:
    return None


def wait(seconds: float) -> None:
    time.sleep(seconds)
