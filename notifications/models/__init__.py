"""The notifications app's models, one module per channel (e-mail, push, webhooks)."""

from notifications.models.email import OutboundEmail, SendStatus
from notifications.models.push import Device, PushDelivery
from notifications.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage

__all__ = [
    "Device", "OutboundEmail", "PushDelivery", "SendStatus",
    "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint", "WebhookMessage",
]
