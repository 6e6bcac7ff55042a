"""Admin for the notifications app, one module per channel."""
