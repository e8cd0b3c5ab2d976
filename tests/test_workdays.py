"""Working days in England and Wales, ISO date parsing and month arithmetic."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from engine.workdays import (
    add_working_days,
    bank_holidays,
    is_working_day,
    months_before,
    to_date,
    working_days_between,
)


# --- holidays --------------------------------------------------------------------------

def test_christmas_2026_and_boxing_day_substitute():
    # 25 Dec 2026 is a Friday, Boxing Day a Saturday: Monday 28 Dec is the substitute day.
    assert date(2026, 12, 25).weekday() == 4
    assert not is_working_day(date(2026, 12, 25))
    assert not is_working_day(date(2026, 12, 26))
    assert not is_working_day(date(2026, 12, 28))
    assert is_working_day(date(2026, 12, 24))
    assert is_working_day(date(2026, 12, 29))
    assert date(2026, 12, 28) in bank_holidays(2026)


def test_add_working_days_over_christmas_2026():
    assert add_working_days(date(2026, 12, 24), 1) == date(2026, 12, 29)
    assert add_working_days("2026-12-24", 2) == date(2026, 12, 30)
    assert add_working_days(date(2026, 12, 29), -1) == date(2026, 12, 24)
    # 1 Jan 2027 (Friday) is a bank holiday too.
    assert add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 4)


def test_easter_2027():
    # Easter Sunday is 28 March 2027: Good Friday 26 March, Easter Monday 29 March.
    assert not is_working_day(date(2027, 3, 26))
    assert not is_working_day(date(2027, 3, 29))
    assert is_working_day(date(2027, 3, 25))
    assert add_working_days(date(2027, 3, 25), 1) == date(2027, 3, 30)
    assert working_days_between(date(2027, 3, 25), date(2027, 3, 30)) == 1


def test_weekend():
    saturday, sunday, monday = date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)
    assert not is_working_day(saturday) and not is_working_day(sunday)
    assert is_working_day(monday)
    assert add_working_days(date(2026, 3, 6), 1) == monday  # Friday + 1
    assert add_working_days(saturday, 1) == monday
    assert add_working_days(date(2026, 3, 2), 15) == date(2026, 3, 23)  # three whole weeks


def test_zero_days():
    assert add_working_days(date(2026, 3, 4), 0) == date(2026, 3, 4)      # working day: itself
    assert add_working_days(date(2026, 3, 7), 0) == date(2026, 3, 9)      # Saturday: next Monday
    assert add_working_days(date(2026, 12, 25), 0) == date(2026, 12, 29)  # Christmas: after the holidays


def test_negative_n():
    assert add_working_days(date(2026, 3, 9), -1) == date(2026, 3, 6)   # Monday - 1: Friday
    assert add_working_days(date(2026, 3, 8), -1) == date(2026, 3, 6)   # Sunday - 1: Friday
    assert add_working_days(date(2026, 3, 20), -5) == date(2026, 3, 13)
    assert add_working_days(date(2027, 3, 30), -1) == date(2027, 3, 25)  # across Easter


def test_working_days_between():
    assert working_days_between(date(2026, 3, 2), date(2026, 3, 2)) == 0
    assert working_days_between(date(2026, 3, 6), date(2026, 3, 9)) == 1   # Fri -> Mon
    assert working_days_between(date(2026, 3, 9), date(2026, 3, 6)) == -1
    assert working_days_between("2026-12-24", "2026-12-29") == 1
    # 2026: 260 weekdays after Thursday 1 January, minus 7 bank holidays on weekdays.
    assert working_days_between(date(2026, 1, 1), date(2026, 12, 31)) == 253
    # Backwards, the days passed over are counted: from Sunday, Friday is 1 day back.
    assert working_days_between(date(2026, 3, 8), date(2026, 3, 6)) == -1
    assert working_days_between(date(2026, 3, 6), date(2026, 3, 8)) == 0


@pytest.mark.parametrize("n", [-30, -7, -1, 1, 2, 5, 11, 40, 300])
def test_between_inverts_add(n):
    for start in (date(2026, 12, 20), date(2027, 3, 27), date(2026, 5, 1)):
        assert working_days_between(start, add_working_days(start, n)) == n


def test_absurd_arguments():
    with pytest.raises(ValueError):
        add_working_days(date(2026, 1, 1), 1_000_000)
    with pytest.raises(ValueError):
        add_working_days(date(2026, 1, 1), 1.5)
    with pytest.raises(ValueError):
        working_days_between(date(1, 1, 1), date(9999, 1, 1))


# --- dates -----------------------------------------------------------------------------

def test_to_date():
    assert to_date(date(2026, 3, 2)) == date(2026, 3, 2)
    assert to_date("2026-03-02") == date(2026, 3, 2)
    assert to_date(" 2026-03-02 ") == date(2026, 3, 2)
    assert to_date(datetime(2026, 3, 2, 23, 59)) == date(2026, 3, 2)
    assert type(to_date(datetime(2026, 3, 2, 23, 59))) is date


@pytest.mark.parametrize("bad", ["2026-02-30", "02/03/2026", "20260302", "2026-03-02T10:00", "", None, 20260302])
def test_to_date_rejects(bad):
    with pytest.raises(ValueError) as info:
        to_date(bad)
    assert "date" in str(info.value)


def test_months_before_month_end_clamping():
    assert months_before(date(2024, 8, 31), 6) == date(2024, 2, 29)   # leap year
    assert months_before(date(2023, 8, 31), 6) == date(2023, 2, 28)
    assert months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert months_before(date(2026, 5, 31), 1) == date(2026, 4, 30)
    assert months_before(date(2028, 2, 29), 12) == date(2027, 2, 28)
    assert months_before(date(2026, 3, 15), 6) == date(2025, 9, 15)   # across a year
    assert months_before(date(2026, 3, 15), 0) == date(2026, 3, 15)
    assert months_before("2026-01-31", -1) == date(2026, 2, 28)       # negative: forward
    assert months_before(date(2026, 1, 10), 24) == date(2024, 1, 10)
