"""Reporting periods: a range of whole days, both ends included, and the financial year.

A day is the engine's day: the UTC date, as `received_on`, `decided_on` and every `today()` of
the engine are written. An instant (an audit row's `at`) belongs to the UTC date it falls on.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from ..errors import InvalidData
from ..workdays import to_date

#: Longer ranges are refused: a typo (2205 for 2025), not a report anyone needs.
MAX_YEARS = 10
FINANCIAL_YEAR_STARTS = (4, 1)  # 1 April


def day_in_words(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError("a period cannot end before it starts")

    @property
    def words(self) -> str:
        """'1 April 2025 to 31 March 2026', or '31 March 2026' for one day."""
        if self.start == self.end:
            return day_in_words(self.start)
        return f"{day_in_words(self.start)} to {day_in_words(self.end)}"

    @property
    def financial_year(self) -> str | None:
        """'2025 to 2026' when the period is exactly one financial year."""
        first = financial_year_containing(self.start)
        return f"{first.start.year} to {first.end.year}" if first == self else None

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start of the first day, start of the day after the last day) in UTC."""
        return (datetime.combine(self.start, time.min, timezone.utc),
                datetime.combine(self.end + timedelta(days=1), time.min, timezone.utc))

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def months(self) -> list[date]:
        """The first day of each calendar month the period touches, in order."""
        first, months = self.start.replace(day=1), []
        while first <= self.end:
            months.append(first)
            first = (first + timedelta(days=32)).replace(day=1)
        return months

    def query(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def financial_year_containing(day: date) -> Period:
    month, first_day = FINANCIAL_YEAR_STARTS
    start_year = day.year if (day.month, day.day) >= (month, first_day) else day.year - 1
    start = date(start_year, month, first_day)
    return Period(start, date(start_year + 1, month, first_day) - timedelta(days=1))


def last_complete_financial_year(today: date) -> Period:
    """The latest financial year (1 April to 31 March) that ended before `today`."""
    current = financial_year_containing(today)
    return financial_year_containing(current.start - timedelta(days=1))


def financial_year_to_date(today: date) -> Period:
    """The financial year `today` falls in, from 1 April up to and including `today`."""
    return Period(financial_year_containing(today).start, today)


def last_twelve_months(today: date) -> Period:
    """The current calendar month and the eleven before it, up to `today`."""
    index = today.year * 12 + today.month - 1 - 11
    return Period(date(index // 12, index % 12 + 1, 1), today)


def parse_period(start: str | None, end: str | None, default: Period) -> Period:
    """A period from two ISO dates typed by a person (`from`, `to`), or `default` when both are
    blank. Problems are raised as InvalidData naming the field, fit to show."""
    start, end = (start or "").strip(), (end or "").strip()
    if not start and not end:
        return default
    problems, days = [], {}
    for field, text, example in (("from", start, "2025-04-01"), ("to", end, "2026-03-31")):
        if not text:
            problems.append({"field": field, "message": f"Enter the {_field_words(field)} as well, or leave both "
                                                        "dates empty for the last financial year"})
            continue
        try:
            days[field] = to_date(text)
        except ValueError:
            problems.append({"field": field, "message": f"Enter the {_field_words(field)} as a real date written "
                                                        f"YYYY-MM-DD, for example {example}"})
    if not problems and days["to"] < days["from"]:
        problems.append({"field": "to", "message": "The end date must be the same as or after the start date"})
    if not problems and (days["to"] - days["from"]).days > MAX_YEARS * 366:
        problems.append({"field": "to", "message": f"Choose a period of {MAX_YEARS} years or less"})
    if problems:
        raise InvalidData(problems, "The reporting period is not valid")
    return Period(days["from"], days["to"])


def _field_words(field: str) -> str:
    return "start date" if field == "from" else "end date"
