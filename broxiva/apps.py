from __future__ import annotations

from django.apps import AppConfig


class BroxivaConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "broxiva"
    verbose_name = "Broxiva platform"

    def ready(self) -> None:
        from broxiva import checks  # noqa: F401  (registers system checks)
