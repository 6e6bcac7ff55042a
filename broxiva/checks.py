"""System checks that catch a misconfigured deployment at start-up (``manage.py check``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_queue_databases(app_configs, **kwargs):
    from redis.connection import parse_url

    errors = []
    main = parse_url(settings.REDIS_URL)
    queue = parse_url(settings.REDIS_QUEUE_URL)
    if settings.REDIS_SENTINELS:
        # Both URLs name the same Sentinel master (REDIS_URL cannot be set with Sentinel): only
        # the database numbers can differ.
        same_server = True
    else:
        same_server = (main.get("host"), main.get("port"), main.get("path")) == (
            queue.get("host"), queue.get("port"), queue.get("path")
        )
    if same_server and int(main.get("db", 0)) == int(queue.get("db", 0)):
        errors.append(
            Error(
                "REDIS_DB and REDIS_QUEUE_DB are the same database.",
                hint="Keep queues and caches in separate Redis databases: flushing a cache must never drop a job.",
                id="broxiva.E001",
            )
        )
    return errors


@register()
def check_schedules(app_configs, **kwargs):
    from broxiva.queues import EnqueueError
    from broxiva.schedules import collect

    try:
        collect()
    except (ValueError, EnqueueError) as exc:
        return [Error(f"invalid periodic entry: {exc}", id="broxiva.E002")]
    return []


@register()
def check_queue_prefix(app_configs, **kwargs):
    import re

    # The prefix ends up in RQ job ids (the periodic templates') and in lock key parts, which take
    # letters, digits, '-' and '_' only.
    if settings.QUEUE_PREFIX and not re.fullmatch(r"[A-Za-z0-9_-]+", settings.QUEUE_PREFIX):
        return [
            Error(
                f"QUEUE_PREFIX={settings.QUEUE_PREFIX!r} may only hold letters, digits, '-' and '_'.",
                hint="Deployments sharing a Redis DB each get their own queues and schedule under their prefix.",
                id="broxiva.E003",
            )
        ]
    return []
