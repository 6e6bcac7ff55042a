"""The provider SDKs, imported on first use rather than at start-up.

``anthropic`` and ``openai`` (with pydantic models for every API type, httpx and aiohttp) take
about 4 s and 100 MB to import. Every web and worker process imports this app's services at
start-up, but only a process that actually calls a provider needs them; the pseudo-locale
provider (the embedded default) never does.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for a module; the first attribute read imports it (once: Python caches modules)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.module(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
