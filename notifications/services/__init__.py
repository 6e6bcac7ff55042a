"""The one door out: every e-mail, push and webhook the system sends goes through here.

Callers use ``notifications.services.queue_email``, ``queue_push`` and ``publish_event``; each
channel lives in its own module and is re-exported here.
"""

from notifications.services.webhooks import publish_event, rotate_endpoint_secret

__all__ = ["publish_event", "rotate_endpoint_secret"]
