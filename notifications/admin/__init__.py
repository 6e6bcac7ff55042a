"""Admin for the notifications app, one module per channel."""

from notifications.admin import webhooks  # noqa: F401  (registers the webhook models)
