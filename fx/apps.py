from __future__ import annotations

from django.apps import AppConfig


class FxConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fx"
    verbose_name = "FX rates"

    def ready(self) -> None:
        from fx import checks  # noqa: F401 -- registers the system checks
