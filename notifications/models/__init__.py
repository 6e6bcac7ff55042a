"""The notifications app's models, one module per channel (e-mail, push, webhooks)."""
