"""Wire formats of the services notifications are sent through (push services)."""
