"""The notifications app's models, one module per channel (e-mail, push, webhooks)."""

from notifications.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage

__all__ = ["WebhookAttempt", "WebhookDelivery", "WebhookEndpoint", "WebhookMessage"]
