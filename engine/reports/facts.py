"""What the reports read, and the names in the shipped diagrams they rely on.

Reports never load a workflow: they read the rows the engine writes in the same transaction as
the workflow state (engine/runtime.py, engine/service.py):

- `case_review.received_on` (the application), `decided_on` and `threshold["met"]` (the
  confirmed threshold decision, after any override), `route`, `status`;
- `audit_event`: one row per command, with `event`, `at`, `actor`, `stage_before`/`stage_after`
  and, for a completed task, `detail["task"]` (the user task's BPMN id) and `detail["effects"]`
  (letters written, processes started);
- `action` rows (the panel's action plan) and `outbox` letters.

If a process owner renames one of the tasks below in a new version, the figures that use it must
follow; tests/test_reports.py drives the shipped diagrams, so it notices.
"""
from __future__ import annotations

from sqlalchemy import and_, literal

from ..models import AuditEvent
from .sql import completed_task

# Events
TASK_COMPLETED = "task_completed"
TIMER_FIRED = "timer_fired"
ESCALATION_REQUESTED = "escalation_requested"
#: Rows that record a read, not a step of the case: left out of the process history.
READ_EVENTS = ("case_viewed",)

# User tasks (BPMN ids in processes/case_review.bpmn and escalation.bpmn)
PANEL_OUTCOME_TASK = "panel_outcome"
DECIDE_ESCALATION_TASK = "decide_escalation"
DECIDE_ESCALATION_ROLE = "reviewer"  # its lane in escalation.bpmn

# Letters (processes/letters/*.txt)
OUTCOME_LETTER = "outcome"
ESCALATION_NOT_UPHELD_LETTER = "escalation_not_upheld"

# Stages a case ends in (engine/runtime.py STATUSES: close_case sets the stage to the status)
FINAL_STAGES = ("closed", "withdrawn")

#: Local targets in working days (the defaults shipped in the diagrams, ../shared/docs/domain.md):
#: threshold decision within 15 of receipt, panel within 20 of the decision, outcome letter
#: within 5 of the panel.
TARGET_DECISION = 15
TARGET_PANEL = 20
TARGET_OUTCOME_LETTER = 5


def task_is(name: str, row=AuditEvent):
    """SQL condition: the audit row (`row`, an alias of AuditEvent if given) records the completion
    of user task `name`. The event is written into the SQL rather than bound, so the planner can
    see that the partial index of completed tasks applies."""
    return and_(row.event == literal(TASK_COMPLETED, literal_execute=True), completed_task(row.detail) == name)
