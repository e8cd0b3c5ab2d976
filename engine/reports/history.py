"""The process history of a cohort of cases, for the event log export: the audit rows of the
engine's commands on the cases received in a period, oldest first within each case, streamed
(process.py reads a slimmer copy of the same rows for its analysis).

A command's row (engine/service.py `_commit_run`) always carries the stage before and after;
rows that record a read (`case_viewed`) or an administrative change without a stage (a task
reassigned) are not steps of the process and are left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditEvent, Case
from .facts import READ_EVENTS, TASK_COMPLETED
from .periods import Period

#: Rows fetched per round trip: a year of a large area's history is hundreds of thousands.
BATCH = 5_000


@dataclass(frozen=True)
class ProcessEvent:
    case_id: int
    reference: str
    case_status: str
    at: datetime  # aware, UTC
    actor: str
    event: str
    stage_before: str | None
    stage_after: str | None
    task: str | None  # the user task's BPMN id, for a completed task
    title: str | None  # its title
    timers: tuple[str, ...]  # the timers a timer_fired row fired

    @property
    def activity(self) -> str:
        """The step's name in words, as an event log names it."""
        if self.event == TASK_COMPLETED:
            return self.title or self.task or "Task completed"
        if self.timers:
            return "Timer: " + ", ".join(self.timers)
        return self.event.replace("_", " ").capitalize()


def cohort_history(db: Session, period: Period) -> Iterator[ProcessEvent]:
    """Every process event of the cases received in the period, by case then in order."""
    query = (select(AuditEvent.case_id, Case.reference, Case.status, AuditEvent.at, AuditEvent.actor, AuditEvent.event,
                    AuditEvent.stage_before, AuditEvent.stage_after, AuditEvent.detail["task"].as_string(),
                    AuditEvent.detail["title"].as_string(), AuditEvent.detail["timers"])
             .join(Case, Case.id == AuditEvent.case_id)
             .where(Case.received_on >= period.start, Case.received_on <= period.end,
                    AuditEvent.event.not_in(READ_EVENTS), AuditEvent.stage_after.is_not(None))
             .order_by(Case.reference, AuditEvent.at, AuditEvent.id)
             .execution_options(yield_per=BATCH))
    for row in db.execute(query):
        timers = row[10] if isinstance(row[10], list) else ()
        yield ProcessEvent(case_id=row[0], reference=row[1], case_status=row[2], at=_aware(row[3]), actor=row[4],
                           event=row[5], stage_before=row[6], stage_after=row[7], task=row[8], title=row[9],
                           timers=tuple(str(name) for name in timers))


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
