"""``manage.py translate_catalog TENANT LOCALE [LOCALE ...] [--content-type T ...] [--poll]``.

Translates a tenant's whole catalogue into the given locales (``services.translate_catalog``):
a provider batch above ``TRANSLATION_BATCH_MIN`` waiting segments, ordinary jobs otherwise.
``--poll`` checks submitted batches now instead of waiting for the periodic entry.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from broxiva.models import Tenant
from translations import services
from translations.errors import TranslationError


class Command(BaseCommand):
    help = "Translate a tenant's catalogue into locales (batch API for large backlogs), or poll submitted batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", nargs="?", help="the tenant's slug")
        parser.add_argument("locales", nargs="*", help="target locales (BCP 47: de, pt-BR)")
        parser.add_argument("--content-type", action="append", dest="content_types")
        parser.add_argument("--poll", action="store_true", help="check submitted batches and store their results")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["poll"]:
            report = services.batch_poll()
            self.stdout.write(
                f"batches checked {report['checked']}, ended {report['ended']}, rows translated "
                f"{report['translated']}, retried singly {report['retried']}"
            )
            return
        if not options["tenant"] or not options["locales"]:
            raise CommandError("give a tenant slug and at least one target locale (or --poll)")
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {options['tenant']!r}")
        try:
            result = services.translate_catalog(
                tenant_id=tenant.pk, target_locales=options["locales"], content_types=options["content_types"]
            )
        except (TranslationError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        how = f"batch #{result['batch']} submitted" if result["batch"] else f"{result['jobs']} job(s) enqueued"
        self.stdout.write(
            f"{tenant.slug}: {result['created']} row(s) created, {result['waiting']} waiting, "
            f"{result['reused']} reused from memory; {how}"
        )
