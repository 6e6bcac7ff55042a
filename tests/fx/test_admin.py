"""The read-only snapshot admin: filters, the latest rate per pair, confirming held rates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from fx.models import ExchangeRate
from fx.services.cache import read_rates

pytestmark = pytest.mark.django_db

URL = "/admin/fx/exchangerate/"


def snapshot(quote: str, rate: str, day: int, **extra) -> ExchangeRate:
    return ExchangeRate.objects.create(base_currency="EUR", quote_currency=quote, rate=Decimal(rate), provider="ecb",
                                       as_of=datetime(2024, 5, day, tzinfo=UTC), fetched_at=timezone.now(), **extra)


class ExchangeRateAdminTests:
    def test_it_lists_filters_and_shows_the_latest_rate_per_pair(self, admin_client):
        snapshot("USD", "1.0801", 16)
        latest = snapshot("USD", "1.0866", 17)
        snapshot("USD", "1.5123", 18, status=ExchangeRate.Status.HELD)
        snapshot("JPY", "169.20", 17)
        page = admin_client.get(URL)
        assert page.status_code == 200
        assert "1.0801" in page.text and "By provider" in page.text and "By base currency" in page.text
        page = admin_client.get(URL, {"latest": "published"})
        assert list(page.context["cl"].queryset.values_list("quote_currency", "rate")) == [
            ("JPY", Decimal("169.20")), ("USD", latest.rate)]
        page = admin_client.get(URL, {"quote_currency": "JPY"})
        assert page.context["cl"].result_count == 1

    def test_it_is_read_only(self, admin_client):
        row = snapshot("USD", "1.0866", 17)
        assert admin_client.get(f"{URL}add/").status_code == 403
        assert admin_client.post(f"{URL}{row.pk}/delete/", {"post": "yes"}).status_code == 403
        admin_client.post(f"{URL}{row.pk}/change/", {"rate": "2"})
        row.refresh_from_db()
        assert row.rate == Decimal("1.0866")

    def test_staff_confirm_a_held_rate(self, admin_client):
        snapshot("TRY", "35.0065", 16)
        held = snapshot("TRY", "49.0091", 17, status=ExchangeRate.Status.HELD)
        page = admin_client.post(URL, {"action": "confirm_held", "_selected_action": [held.pk]}, follow=True)
        assert "1 held rate(s) confirmed" in page.text
        held.refresh_from_db()
        assert held.status == ExchangeRate.Status.PUBLISHED
        assert read_rates(["EUR"])["EUR"]["TRY"].rate == Decimal("49.0091")
