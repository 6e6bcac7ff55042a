from __future__ import annotations

from django.apps import AppConfig


class BroxivaConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "broxiva"
    verbose_name = "Broxiva platform"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from broxiva import checks  # noqa: F401  (registers system checks)
        from broxiva.dashboard import ensure_operators_group

        post_migrate.connect(ensure_operators_group, sender=self, dispatch_uid="broxiva-operators-group")
