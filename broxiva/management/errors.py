"""What the operator commands print when a dependency is down: one line, not a traceback."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.management.base import CommandError
from redis.exceptions import RedisError


def redis_required(handle: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a Redis failure in ``handle`` into a ``CommandError``: one line on stderr, exit 1."""

    @wraps(handle)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from broxiva.health import redis_error_message

        try:
            return handle(*args, **kwargs)
        except RedisError as exc:
            raise CommandError(redis_error_message(exc)) from None

    return wrapper
