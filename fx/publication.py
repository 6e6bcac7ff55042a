"""When a source publishes rates, and so until when a rate of it may be served.

The ECB publishes its reference rates once per TARGET working day, around 16:00 CET, stamped
with that day's date (``as_of`` = the date at 00:00 UTC). Nothing comes on weekends and on the
TARGET holidays: 1 January, Good Friday, Easter Monday, 1 May, 25 and 26 December. Before
Easter, Thursday's rates are the newest there are until Tuesday afternoon, 110 h after their
``as_of``; a fixed age limit long enough for that would also serve, in an ordinary week, a
rate that has missed three publications.

So "too old" counts missed publications, not only hours. A rate is **stale** when it is older
than ``FX_MAX_AGE_HOURS`` *and* it has missed a publication: for a source with a publication
calendar (the ECB), the whole day (UTC) on which its next publication was due is over. A
Friday rate is served until Tuesday 00:00 UTC (Monday's publication missed), exactly the 96 h
of the default; a Thursday rate before Good Friday until Wednesday 00:00 UTC (144 h); one of
24 December 2026 until Tuesday 29 December. Sources publishing around the clock (OXR, Fixer)
have no calendar here: ``FX_MAX_AGE_HOURS`` alone applies to them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from dateutil.easter import easter  # Western (Gregorian) Easter, as the TARGET calendar uses

# Providers that publish once per TARGET working day, stamping rates with that day's date.
TARGET_PUBLISHERS = frozenset({"ecb"})

# The longest the calendar keeps a rate usable: from Thursday before Good Friday (or 24 December
# on a Wednesday) to the end of the next Tuesday (Monday), 6 days. Reads that look in Postgres
# for the rates still usable search back at least this far.
LONGEST_USABLE = timedelta(days=7)

_FIXED_HOLIDAYS = frozenset({(1, 1), (5, 1), (12, 25), (12, 26)})


def is_target_day(day: date) -> bool:
    """Return True if TARGET (and so the ECB's reference rates) works on ``day``."""
    if day.weekday() >= 5 or (day.month, day.day) in _FIXED_HOLIDAYS:
        return False
    sunday = easter(day.year)
    return day not in (sunday - timedelta(days=2), sunday + timedelta(days=1))


def next_target_day(day: date) -> date:
    """Return the first TARGET working day after ``day``."""
    day += timedelta(days=1)
    while not is_target_day(day):
        day += timedelta(days=1)
    return day


@lru_cache(maxsize=4096)
def usable_until(as_of: float, provider: str, max_age_hours: float) -> float:
    """Return the epoch second after which a rate of ``provider`` stated at ``as_of`` is stale.

    A rate derived from two (a cross rate) lasts as long as the shorter-lived of its legs.
    """
    by_age = as_of + max_age_hours * 3600
    if provider not in TARGET_PUBLISHERS:
        return by_age
    due = next_target_day(datetime.fromtimestamp(as_of, tz=UTC).date())
    missed = datetime.combine(due + timedelta(days=1), time(), tzinfo=UTC).timestamp()
    return max(by_age, missed)


def search_since(moment: datetime, max_age_hours: float) -> datetime:
    """Return how far back a rate can be and still be usable at ``moment``."""
    return moment - max(timedelta(hours=max_age_hours), LONGEST_USABLE)
