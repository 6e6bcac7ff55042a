"""Admin for the notifications app, one module per channel."""

from notifications.admin import email, push, webhooks  # noqa: F401  (registers the ModelAdmins)
