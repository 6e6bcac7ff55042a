"""The notifications app's models, one module per channel (e-mail, push, webhooks)."""

from notifications.models.email import OutboundEmail, SendStatus
from notifications.models.push import Device, PushDelivery

__all__ = ["Device", "OutboundEmail", "PushDelivery", "SendStatus"]
