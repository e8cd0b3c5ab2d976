"""Working days in England and Wales, and calendar-month arithmetic.

A working day is a Monday to Friday that is not a bank holiday in England and Wales.  Bank
holidays come from the ``holidays`` package (``country_holidays("GB", subdiv="ENG")``),
including substitute days: when Boxing Day 2026 falls on a Saturday, Monday 28 December
is the holiday.  (The ``holidays`` package's ``ENG`` subdivision is the England list, which
is the same as the Wales list.)

These functions back the script helpers ``add_working_days``, ``date_of`` and
``months_before`` (docs/architecture.md), so they accept ISO strings as well as dates and
refuse absurd arguments rather than spinning for a long time inside a helper.
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import date, datetime, timedelta

import holidays

__all__ = [
    "is_working_day",
    "add_working_days",
    "working_days_between",
    "to_date",
    "months_before",
    "bank_holidays",
]

#: ``add_working_days`` refuses larger |n| (about 40 years): a typo, not a deadline.
MAX_WORKING_DAYS = 10_000
#: ``working_days_between`` refuses dates further apart than this many days (about 100 years).
MAX_SPAN_DAYS = 36_600

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def to_date(value: date | str) -> date:
    """``value`` as a ``date``: a date (a datetime gives its date part) or 'YYYY-MM-DD'."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _ISO_DATE.fullmatch(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{value!r} is not a valid date") from None
        raise ValueError(f"expected a date written as YYYY-MM-DD, got {value!r}")
    raise ValueError(f"expected a date or a 'YYYY-MM-DD' string, got {type(value).__name__} {value!r}")


@functools.lru_cache(maxsize=256)
def bank_holidays(year: int) -> frozenset[date]:
    """Bank holidays (including substitute days) in England and Wales in ``year``.

    Cached per year: ``holidays`` computes a year's list on first use, and deadlines are
    computed many times over the same few years.
    """
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year).keys())


def is_working_day(d: date | str) -> bool:
    """True for Monday to Friday outside bank holidays in England and Wales."""
    day = to_date(d)
    return day.weekday() < 5 and day not in bank_holidays(day.year)


def add_working_days(d: date | str, n: int) -> date:
    """The date ``n`` working days after ``d`` (before it when ``n`` is negative).

    ``d`` itself is never counted: with n=1 the result is the next working day after ``d``,
    with n=-1 the last working day before ``d``, whether or not ``d`` is a working day.
    With n=0 the result is ``d`` if it is a working day, otherwise the next working day
    (a deadline "by day 0" that falls on a holiday moves forward, never back).
    """
    day = to_date(d)
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"the number of working days must be a whole number, got {n!r}")
    if abs(n) > MAX_WORKING_DAYS:
        raise ValueError(f"{n} working days is more than the limit of {MAX_WORKING_DAYS:,}")
    if n == 0:
        while not is_working_day(day):
            day += timedelta(days=1)
        return day
    step = timedelta(days=1 if n > 0 else -1)
    remaining = abs(n)
    while remaining:
        day += step
        if is_working_day(day):
            remaining -= 1
    return day


def working_days_between(a: date | str, b: date | str) -> int:
    """Working days after ``a`` up to and including ``b``; negative when ``b`` is before ``a``.

    When ``b`` is before ``a`` the result is minus the working days from ``b`` (included) up
    to ``a`` (excluded): the days one passes over going back from ``a`` to ``b``, as
    :func:`add_working_days` counts them.  So ``working_days_between(d,
    add_working_days(d, n)) == n`` for every n != 0; for example, from a Sunday the Friday
    before is one working day back: ``working_days_between(sunday, friday) == -1``.
    """
    start, end = to_date(a), to_date(b)
    if end < start:
        # Working days in [end, start) == working days in (end - 1 day, start - 1 day].
        return -_working_days_after(end - timedelta(days=1), start - timedelta(days=1))
    return _working_days_after(start, end)


def _working_days_after(start: date, end: date) -> int:
    """Working days in (start, end], for start <= end."""
    if (end - start).days > MAX_SPAN_DAYS:
        raise ValueError(f"{start} and {end} are more than {MAX_SPAN_DAYS:,} days apart")
    # Weekdays counted in whole weeks plus the remainder, then minus the bank holidays in
    # that range that fall on weekdays.
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(1, rest + 1):
        if (start + timedelta(days=weeks * 7 + offset)).weekday() < 5:
            count += 1
    for year in range(start.year, end.year + 1):
        count -= sum(1 for h in bank_holidays(year) if start < h <= end and h.weekday() < 5)
    return count


def months_before(d: date | str, n: int) -> date:
    """The same day ``n`` calendar months earlier, clamped to the end of a shorter month.

    2024-08-31 minus 6 months is 2024-02-29; 2023-08-31 minus 6 months is 2023-02-28.
    A negative ``n`` counts months forward.
    """
    day = to_date(d)
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"the number of months must be a whole number, got {n!r}")
    index = day.year * 12 + (day.month - 1) - n  # months since year 0
    year, month0 = divmod(index, 12)
    if not date.min.year <= year <= date.max.year:
        raise ValueError(f"{day} minus {n} months is outside the calendar")
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last_day))


def warm_bank_holidays(year: int) -> None:
    """Load the years deadlines usually fall in, so the first command does not pay for it."""
    for each in range(year - 1, year + 3):
        bank_holidays(each)


# Loading the holiday tables the first time takes a noticeable fraction of a script's time budget
# (helpers' time counts toward it), so every process that can run scripts loads them on import.
warm_bank_holidays(date.today().year)
