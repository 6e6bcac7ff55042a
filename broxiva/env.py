"""Typed readers for environment variables.

Every external setting goes through one of these so that a bad value stops start-up with an
error naming the variable, instead of surfacing later as a confusing failure in a worker.
Secrets may also be given as ``<NAME>_FILE`` (a path whose content is the value), which is how
container orchestrators mount them.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# Plain ASCII numbers only: int() and float() also take "1_000", non-ASCII digits ("١٢"), and
# float() takes "nan", "inf" and "infinity", which pass every minimum/maximum comparison.
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    file_path = os.environ.get(f"{name}_FILE")
    if value is not None and file_path:
        raise ImproperlyConfigured(f"Set either {name} or {name}_FILE, not both.")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE={file_path!r} cannot be read: {exc.strerror}"
            ) from None
    return value


def env_str(name: str, default: str = "", *, choices: tuple[str, ...] | None = None) -> str:
    value = _raw(name)
    value = default if value is None else value.strip()
    if choices is not None and value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")
    return value


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = _raw(name)
    if raw is None or raw.strip() == "":
        return default
    if not _INT.fullmatch(raw.strip()):
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.")
    value = int(raw.strip())
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}.")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """Return a finite float: ``nan``, ``inf`` and overflowing values (``1e999``) are refused."""
    raw = _raw(name)
    if raw is None or raw.strip() == "":
        return default
    if not _FLOAT.fullmatch(raw.strip()):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.")
    value = float(raw.strip())
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a finite number.")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}.")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no, on/off).")


def env_json(name: str, default: object) -> object:
    raw = _raw(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        # parse_constant: JSON has no NaN/Infinity, but Python's json.loads accepts them.
        return json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None


def _no_constant(token: str) -> object:
    raise ValueError(f"{token} is not a JSON number")


def env_list(name: str, default: list[str] | tuple[str, ...] = ()) -> list[str]:
    raw = _raw(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]
