"""The engine's only source of "now".

SpiffWorkflow reads the wall clock inside its timer module (spiffworkflow.md §4), so the
engine installs a datetime subclass there whose now() asks the clock of the running command.
"""
from __future__ import annotations

import contextlib
import contextvars
from datetime import date, datetime, timezone
from typing import Iterator, Protocol

from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock tests (and `casereview wake --at`) move by hand."""

    def __init__(self, at: datetime):
        self.at = as_utc(at)

    def now(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = as_utc(at)


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def parse_instant(text: str) -> datetime:
    """ISO 8601 date or datetime → aware UTC datetime (a bare date means its midnight UTC)."""
    text = text.strip().replace("Z", "+00:00")
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), timezone.utc)
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or time: {text!r}") from None


_active: contextvars.ContextVar[Clock] = contextvars.ContextVar("casereview_clock", default=SystemClock())


class _ClockedDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # noqa: D401 - mirrors datetime.now
        current = _active.get().now()
        return current.astimezone(tz) if tz else current.replace(tzinfo=None)


spiff_timer.datetime = _ClockedDatetime


@contextlib.contextmanager
def clock_in_use(clock: Clock) -> Iterator[None]:
    token = _active.set(clock)
    try:
        yield
    finally:
        _active.reset(token)
