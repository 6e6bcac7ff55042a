"""The one door out: every e-mail, push and webhook the system sends goes through here.

Callers use ``notifications.services.queue_email``, ``queue_push`` and ``publish_event``; each
channel lives in its own module and is re-exported here.
"""

from notifications.services.email import queue_email
from notifications.services.push import queue_push, register_device
from notifications.services.webhooks import publish_event, rotate_endpoint_secret

__all__ = ["publish_event", "queue_email", "queue_push", "register_device", "rotate_endpoint_secret"]
