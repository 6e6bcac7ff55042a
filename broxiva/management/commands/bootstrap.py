"""Prepare a local installation: a staff account and a demo tenant (the quick start runs this)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from broxiva.models import Tenant


class Command(BaseCommand):
    help = "Create the local admin account (credentials printed and kept in var/admin-password) and a demo tenant."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        secret_file = Path(settings.VAR_DIR) / f"{username}-password"
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username, f"{username}@localhost", password)
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            secret_file.touch(mode=0o600)
            secret_file.write_text(password + "\n")
            self.stdout.write(f"created admin account {username!r}")
        if secret_file.exists():
            self.stdout.write(f"admin login: {username} / {secret_file.read_text().strip()}  (kept in {secret_file})")
        else:
            self.stdout.write(f"admin account {username!r} exists; reset it with: manage.py changepassword {username}")

        tenant, created = Tenant.objects.get_or_create(
            slug="demo",
            defaults={
                "name": "Demo Shop",
                "default_locale": "en",
                "enabled_locales": ["en", "fr", "de"],
                "default_currency": "USD",
                "enabled_currencies": ["USD", "EUR", "GBP"],
                "contact_email": "demo@localhost",
            },
        )
        self.stdout.write(f"{'created' if created else 'found'} demo tenant {tenant.slug!r}")
