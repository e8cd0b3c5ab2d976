"""What the reports read, and how they find the diagram elements they rely on.

Reports never load a workflow: they read the rows the engine writes in the same transaction as
the workflow state (engine/runtime.py, engine/service.py):

- `case_review.received_on` (the application), `decided_on` and `threshold["met"]` (the
  confirmed threshold decision, after any override), `route`, `status`;
- `audit_event`: one row per command, with `event`, `at`, `actor`, `stage_before`/`stage_after`
  and, for a completed task, `detail["task"]` (the user task's BPMN id) and `detail["effects"]`
  (letters written, processes started);
- `action` rows (the panel's action plan) and `outbox` letters.

Which user task records a review, which letter is the outcome letter, and the local targets are
declared in the bundle (the `statutoryFact` property, engine/statutoryfacts.py). `published_facts`
gathers them over every published version, so a case done on an older version still counts after
a process owner renames the task in a newer one; the targets are those of the latest version.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, literal, select
from sqlalchemy.orm import Session

from ..models import AuditEvent, ProcessVersion
from ..statutoryfacts import FactElement
from ..versions import BUNDLE, compiled
from .sql import completed_task

# Events
TASK_COMPLETED = "task_completed"
TIMER_FIRED = "timer_fired"
ESCALATION_REQUESTED = "escalation_requested"
#: Rows that record a read, not a step of the case: left out of the process history.
READ_EVENTS = ("case_viewed",)

# Stages a case ends in (engine/runtime.py STATUSES: close_case sets the stage to the status)
FINAL_STAGES = ("closed", "withdrawn")


@dataclass(frozen=True)
class PublishedFacts:
    """The elements recording each fact, over every published version."""

    elements: tuple[FactElement, ...]  # of every version
    latest: tuple[FactElement, ...]  # of the latest version (its targets are the ones in force)

    def task_ids(self, fact: str) -> tuple[str, ...]:
        """BPMN ids of the user tasks that recorded `fact` in any version."""
        return tuple(sorted({e.element for e in self.elements if e.fact == fact and e.is_user_task}))

    def lanes(self, fact: str) -> tuple[str, ...]:
        return tuple(sorted({e.lane for e in self.elements if e.fact == fact and e.lane}))

    def letters(self, fact: str) -> tuple[str, ...]:
        """Templates of the letters the elements recording `fact` send, in any version."""
        return tuple(sorted({letter for e in self.elements if e.fact == fact for letter in e.letters}))

    def target(self, fact: str) -> int | None:
        """Working days: the due date of the latest version's element recording `fact`."""
        return next((e.target_days for e in self.latest if e.fact == fact and e.target_days is not None), None)


def published_facts(db: Session) -> PublishedFacts:
    """Each version is compiled once per process (engine/versions.py caches it by content hash), so
    this costs one small query once the versions are known."""
    rows = db.execute(select(ProcessVersion.id).where(ProcessVersion.bundle == BUNDLE)
                      .order_by(ProcessVersion.number)).scalars().all()
    per_version = [compiled(db, version_id).statutory_facts for version_id in rows]
    return PublishedFacts(elements=tuple(e for facts in per_version for e in facts),
                          latest=per_version[-1] if per_version else ())


def task_in(names: tuple[str, ...], row=AuditEvent):
    """SQL condition: the audit row (`row`, an alias of AuditEvent if given) records the completion
    of one of the user tasks `names`. The event is written into the SQL rather than bound, so the
    planner can see that the partial index of completed tasks applies."""
    return and_(row.event == literal(TASK_COMPLETED, literal_execute=True), completed_task(row.detail).in_(names))
