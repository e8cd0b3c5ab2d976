"""Where the time goes: time spent in each stage and waiting for each step, for the cases received
in a period (a cohort, as process mining filters by case start), from their audit history.

- A **stage visit** runs from the command that moved the case into a stage to the command that
  moved it out. Visits still running on open cases are shown apart, as "waiting now".
- A **step's wait** runs from the moment the case last moved on to the completion of the task.
  The audit trail records completions, not the moment a task became ready, so "moved on" means the
  case's previous event, leaving out reminders (timers that did not change the stage) and the
  parallel copies of the same task (each agency's incident history, say, waits from the request,
  not from the agency that answered first).

Durations are in calendar days (the victim's time); the dashboard measures targets in working days.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditEvent, Case
from ..versions import compiled, latest_version
from .facts import FINAL_STAGES, READ_EVENTS, TASK_COMPLETED, TIMER_FIRED
from .measures import Spread
from .periods import Period
from .sql import completed_task

DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class StageTime:
    stage: str
    spread: Spread  # completed visits, days


@dataclass(frozen=True)
class StepTime:
    task: str
    title: str
    spread: Spread  # waits, days


@dataclass
class ProcessAnalytics:
    period: Period
    cases: int = 0
    events: int = 0
    stages: list[StageTime] = field(default_factory=list)
    steps: list[StepTime] = field(default_factory=list)
    waiting_now: list[StageTime] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """What the analysis needs of one audit row of a command (history.py has the full row)."""

    case_id: int
    case_status: str
    at: datetime
    event: str
    stage_before: str | None
    stage_after: str | None
    task: str | None


def cohort_steps(db: Session, period: Period) -> Iterable[Step]:
    """The commands on the cases received in the period, by case and in order: only the columns
    the analysis reads, fetched in one go (a server-side cursor would keep PostgreSQL from
    reading in parallel: four times slower on a year of 100,000 cases)."""
    rows = db.execute(select(AuditEvent.case_id, Case.status, AuditEvent.at, AuditEvent.event, AuditEvent.stage_before,
                             AuditEvent.stage_after, completed_task(AuditEvent.detail))
                      .join(Case, Case.id == AuditEvent.case_id)
                      .where(Case.received_on >= period.start, Case.received_on <= period.end,
                             AuditEvent.event.not_in(READ_EVENTS), AuditEvent.stage_after.is_not(None))
                      .order_by(AuditEvent.case_id, AuditEvent.at, AuditEvent.id))
    for row in rows:
        yield Step(*row)


def task_titles(db: Session) -> dict[str, str]:
    """User task titles (BPMN id -> name) from the latest published version."""
    row = latest_version(db)
    if row is None:
        return {}
    titles = {}
    for spec, subprocess_specs in compiled(db, row.id).specs.values():
        for top in (spec, *subprocess_specs.values()):
            for task_spec in top.task_specs.values():
                if getattr(task_spec, "manual", False) and getattr(task_spec, "bpmn_id", None):
                    titles[task_spec.bpmn_id] = task_spec.bpmn_name or task_spec.bpmn_id
    return titles


def process_analytics(db: Session, period: Period, now: datetime) -> ProcessAnalytics:
    return analyse(cohort_steps(db, period), period, now, task_titles(db))


def analyse(events: Iterable[Step], period: Period, now: datetime, titles: dict[str, str]) -> ProcessAnalytics:
    visits: dict[str, list[float]] = defaultdict(list)
    waiting: dict[str, list[float]] = defaultdict(list)
    waits: dict[str, list[float]] = defaultdict(list)
    result = ProcessAnalytics(period)
    case = _CaseWalk(None)
    for event in events:
        result.events += 1
        if event.case_id != case.case_id:
            case.finish(waiting, now)
            case = _CaseWalk(event.case_id)
            result.cases += 1
        case.step(_aware(event), visits, waits)
    case.finish(waiting, now)
    result.stages = _ranked((stage, Spread.of(days)) for stage, days in visits.items())
    result.waiting_now = _ranked((stage, Spread.of(days)) for stage, days in waiting.items())
    result.steps = [StepTime(task, titles.get(task) or task.replace("_", " ").capitalize(), spread)
                    for task, spread in _ranked_pairs((task, Spread.of(days)) for task, days in waits.items())]
    return result


def _aware(step: Step) -> Step:
    if step.at.tzinfo is not None:
        return step
    return Step(step.case_id, step.case_status, step.at.replace(tzinfo=timezone.utc), step.event,
                step.stage_before, step.stage_after, step.task)


class _CaseWalk:
    """One case's events in order: closes stage visits and measures waits as it goes."""

    def __init__(self, case_id: int | None):
        self.case_id = case_id
        self.status: str | None = None
        self.stage: str | None = None
        self.entered: datetime | None = None
        self.moved: datetime | None = None  # when the case last moved on
        self.moved_by: str | None = None  # the task whose completion that was, if any
        self.copies_from: datetime | None = None  # where the copies of moved_by started waiting

    def step(self, event: Step, visits, waits) -> None:
        self.status = event.case_status
        if event.stage_after != self.stage:
            if self.stage is not None and self.entered is not None and self.stage not in FINAL_STAGES:
                visits[self.stage].append(_days(self.entered, event.at))
            self.stage, self.entered = event.stage_after, event.at
        if event.event == TASK_COMPLETED and event.task:
            waited_from = self.copies_from if self.moved_by == event.task else self.moved
            if waited_from is not None:
                waits[event.task].append(_days(waited_from, event.at))
            self.moved, self.moved_by, self.copies_from = event.at, event.task, waited_from
        elif not (event.event == TIMER_FIRED and event.stage_before == event.stage_after):  # a reminder
            self.moved, self.moved_by, self.copies_from = event.at, None, None

    def finish(self, waiting, now: datetime) -> None:
        if self.case_id is None or self.stage is None or self.entered is None:
            return
        if self.status == "open" and self.stage not in FINAL_STAGES:
            waiting[self.stage].append(_days(self.entered, now))


def _days(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds() / DAY_SECONDS)


def _ranked_pairs(pairs):
    """Longest median wait first (the question the page answers: where do cases wait?)."""
    return sorted(pairs, key=lambda pair: (-(pair[1].median or 0.0), pair[0]))


def _ranked(pairs) -> list[StageTime]:
    return [StageTime(stage, spread) for stage, spread in _ranked_pairs(pairs)]
