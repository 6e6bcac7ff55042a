"""The TARGET calendar and how long a rate stays usable (pure functions: no database, no Redis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from fx.publication import is_target_day, next_target_day, search_since, usable_until


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()


class TargetCalendarTests:
    @pytest.mark.parametrize("day", [
        date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 1), date(2026, 12, 25),
        date(2026, 12, 26), date(2025, 4, 18), date(2025, 4, 21), date(2027, 3, 26), date(2027, 3, 29),
        date(2026, 4, 4), date(2026, 4, 5),
    ])
    def test_it_knows_the_days_the_ecb_does_not_publish(self, day):
        assert not is_target_day(day)

    @pytest.mark.parametrize("day", [
        date(2026, 4, 2), date(2026, 4, 7), date(2026, 12, 24), date(2026, 12, 28), date(2026, 12, 31),
        date(2027, 12, 27),  # 26 December on a Sunday has no substitute day
    ])
    def test_it_knows_the_days_it_does(self, day):
        assert is_target_day(day)

    def test_it_finds_the_next_publication_day(self):
        assert next_target_day(date(2026, 4, 2)) == date(2026, 4, 7)  # Easter
        assert next_target_day(date(2026, 12, 24)) == date(2026, 12, 28)
        assert next_target_day(date(2025, 12, 31)) == date(2026, 1, 2)
        assert next_target_day(date(2026, 4, 7)) == date(2026, 4, 8)


class UsableUntilTests:
    def test_an_ecb_rate_lasts_until_the_day_its_successor_was_due_is_over(self):
        # Thursday before Easter: the next publication is Tuesday's.
        assert usable_until(at(2026, 4, 2), "ecb", 96) == at(2026, 4, 8)
        # 24 December 2026, a Thursday: the next publication is Monday 28th's.
        assert usable_until(at(2026, 12, 24), "ecb", 96) == at(2026, 12, 29)

    def test_an_ordinary_week_keeps_the_hours_limit(self):
        # A Friday rate: Monday's publication is missed at Tuesday 00:00, exactly 96 h.
        assert usable_until(at(2026, 3, 27), "ecb", 96) == at(2026, 3, 31)
        # A Monday rate: the calendar would end it Wednesday 00:00; the hours limit is longer.
        assert usable_until(at(2026, 3, 23), "ecb", 96) == at(2026, 3, 27)
        assert usable_until(at(2026, 3, 23), "ecb", 24) == at(2026, 3, 25)

    def test_a_source_without_a_calendar_has_the_hours_limit_only(self):
        assert usable_until(at(2026, 4, 2), "openexchangerates", 96) == at(2026, 4, 6)
        assert usable_until(at(2026, 4, 2), "fixer", 96) == at(2026, 4, 6)

    def test_reads_search_back_as_far_as_a_rate_can_be_usable(self):
        moment = datetime(2026, 4, 7, 23, tzinfo=UTC)
        assert search_since(moment, 96) == moment - timedelta(days=7)
        assert search_since(moment, 240) == moment - timedelta(hours=240)
        assert search_since(moment, 96) < datetime(2026, 4, 2, tzinfo=UTC)
