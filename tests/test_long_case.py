"""One case driven far past SpiffWorkflow's silent depth limit, through the public commands.

SpiffWorkflow stops finding tasks once a workflow's task tree is 1,000 deep: the READY task
is no longer returned and `is_completed()` says True (spiffworkflow.md §10). A single
workflow looping over "update the action" would hit that after about 333 updates. The engine
avoids it by design: a case is a set of small instances and every progress update continues
the action in a fresh `action_delivery` instance (docs/architecture.md). These tests drive
one case well past that many steps, mostly progress updates, with extensions, reminders,
overdue chases and a reconvened panel, then check that every instance's tree stayed small
and that the case still works: the remaining tasks are found and completed, the follow-up
timer fires, and the case closes with a closure letter.

The 1,000-step test runs on SQLite only: it is ~1,100 serial commands (30-40 s on the
2-core CI machine), the property it checks (tree size) lives in the stored workflow JSON and
does not depend on the database, and running it twice would double the suite's slowest test.
The shorter test runs the same scenario on SQLite and PostgreSQL.
"""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from SpiffWorkflow.util.task import TaskState

from engine.models import Case, HumanTask, Timer, WorkflowInstance
from engine.queries import case_view
from engine.scenarios import Walker, application
from engine.service import CaseReview

AGENCIES = ["fire", "police", "council", "housing"]  # fire first: its action is due first
FIRST_ACTIONS = 8
MORE_ACTIONS = 4
# Far below SpiffWorkflow's limit of 1,000 and the engine's own guard (runtime.MAX_TREE_DEPTH).
MAX_DEPTH = 100
MAX_TASKS = 200


class LongCase:
    """Drives one case through the public commands and counts what it completed."""

    def __init__(self, service: CaseReview, clock):
        self.service = service
        self.clock = clock
        self.reference = ""
        self.completed = 0
        self.actors: dict = {}
        self.kinds: dict[str, int] = {}

    @property
    def walker(self) -> Walker:
        return Walker(self.service, self.reference)

    def today(self) -> date:
        return self.clock.now().date()

    def ready(self, name: str | None = None) -> list[HumanTask]:
        return self.walker.ready(name)

    def complete(self, task: HumanTask, data: dict, kind: str) -> None:
        key = (task.role, task.agency)
        if key not in self.actors:
            self.actors[key] = self.walker.actor_for(task)
        self.service.complete(task.id, self.actors[key], data)
        self.completed += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def complete_all(self, name: str, data: dict) -> None:
        tasks = self.ready(name)
        assert tasks, f"no ready {name!r}; ready: {sorted(t.name for t in self.ready())}"
        for task in tasks:
            self.complete(task, data, name)

    def next_day(self) -> int:
        self.clock.set(self.clock.now() + timedelta(days=1))
        return self.service.fire_due_timers()

    def open_and_hold_panel(self) -> None:
        app = application(self.today(), reported_to="housing")
        self.reference = self.service.apply(app)["reference"]
        self.complete_all("provide_incident_history", {"incidents": [], "actions_taken": "Warning letter sent."})
        self.complete_all("verify_incidents", {"verified_incidents": app["incidents"], "verification_notes": "Checked."})
        self.complete_all("confirm_threshold", {"decision": "confirm"})
        self.panel(FIRST_ACTIONS, follow_up_working_days=10)

    def panel(self, actions: int, follow_up_working_days: int) -> None:
        today = self.today()
        self.complete_all("schedule_panel", {"panel_date": (today + timedelta(days=14)).isoformat(),
                                             "chair_name": "Pat Chair", "chair_email": "chair@demo.test",
                                             "panel_agencies": AGENCIES})
        self.complete_all("case_summary", {"summary": "What we hold.", "incidents_held": 3,
                                           "actions_taken": "Visits and a warning letter."})
        self.complete_all("impact_statement", {"statement": "I want it to stop.", "wishes_to_attend": True})
        plan = [{"description": f"Action {i + 1}", "agency": AGENCIES[i % len(AGENCIES)], "owner": f"Officer {i + 1}",
                 "due": (today + timedelta(days=10 + 5 * i)).isoformat()} for i in range(actions)]
        self.complete_all("panel_outcome", {"attendees": ["Police", "Council", "Pat Chair"], "findings": "Findings.",
                                            "recommendations": ["Joint visits"], "actions": plan,
                                            "follow_up_working_days": follow_up_working_days})

    def day_of_updates(self) -> None:
        """A day passes (timers fire); overdue actions are chased; each action gets an update:
        progress while its due date is more than 3 days away, else a request for more time.
        The fire service always forgets: its actions are reminded, go overdue and are chased
        before it asks for more time, a week late."""
        self.next_day()
        for task in self.ready("chase_action"):
            self.complete(task, {"note": "Spoke to the officer; more time agreed."}, "chase_action")
        today = self.today()
        for task in self.ready("deliver_action"):
            if task.due >= today + timedelta(days=3):
                self.complete(task, {"status": "in_progress", "progress_note": f"{today}: on track."}, "progress")
            elif task.agency == "fire" and task.due >= today - timedelta(days=7):
                continue
            else:
                self.complete(task, {"status": "extension_requested", "progress_note": "Needs more time.",
                                     "new_due": (today + timedelta(days=30)).isoformat()}, "extension")


def instance_trees(service: CaseReview, reference: str) -> list[dict]:
    """Per workflow instance of the case: process, status, steps, task count, tree depth and
    completed tasks, read from the stored state."""
    with service.sessions() as db:
        case_id = db.scalar(select(Case.id).where(Case.reference == reference))
        rows = list(db.scalars(select(WorkflowInstance).where(WorkflowInstance.case_id == case_id)))
    trees = []
    for row in rows:
        tasks = json.loads(row.state)["tasks"]

        def depth(task_id):
            n = 0
            while task_id is not None:
                n += 1
                task_id = tasks[task_id].get("parent")
            return n

        trees.append({"process": row.process_id, "status": row.status, "steps": row.steps, "tasks": len(tasks),
                      "depth": max(depth(task_id) for task_id in tasks),
                      "completed": sum(1 for t in tasks.values() if t["state"] == TaskState.COMPLETED)})
    return trees


def drive(service: CaseReview, clock, min_steps: int) -> None:
    case = LongCase(service, clock)
    case.open_and_hold_panel()
    reconvened = False
    while case.completed < min_steps:
        if not reconvened and case.ready("follow_up"):
            case.complete_all("follow_up", {"outcome": "reconvene", "victim_feedback": "It has started again."})
            case.panel(MORE_ACTIONS, follow_up_working_days=130)
            reconvened = True
        case.day_of_updates()
    assert reconvened, "the first follow-up should have fired and reconvened the panel"

    # Past min_steps: the case's trees are all small, however many steps it has taken.
    trees = instance_trees(service, case.reference)
    steps = sum(t["steps"] for t in trees)
    assert steps == case.completed >= min_steps
    assert sum(t["completed"] for t in trees) > 3 * steps  # every task run, not just user tasks
    assert max(t["depth"] for t in trees) < MAX_DEPTH
    assert max(t["tasks"] for t in trees) < MAX_TASKS
    actions = [t for t in trees if t["process"] == "action_delivery"]
    assert len(actions) > case.kinds["progress"]  # each progress update continued in a fresh instance
    assert all(t["steps"] <= 2 and t["depth"] <= 12 for t in actions)
    main = next(t for t in trees if t["process"] == "case_review")
    assert main["status"] == "running" and main["depth"] < MAX_DEPTH

    # The remaining tasks are still found: one update per open action, and nothing else waits.
    with service.sessions() as db:
        open_actions = [a for a in case_view(db, case.reference)["actions"] if a["status"] != "completed"]
        timers = db.scalar(select(func.count()).select_from(Timer).join(Case, Case.id == Timer.case_id)
                           .where(Case.reference == case.reference))
    assert len(open_actions) == FIRST_ACTIONS + MORE_ACTIONS
    for task in case.ready("chase_action"):
        case.complete(task, {"note": "Agreed a date."}, "chase_action")
    remaining = case.ready("deliver_action")
    assert len(remaining) == len(open_actions)
    assert timers >= 1  # the follow-up, and reminders of the actions still to come

    # ... and completable: every action is completed, then the follow-up fires and closes the case.
    for task in remaining:
        case.complete(task, {"status": "completed", "progress_note": "Done."}, "completed")
    with service.sessions() as db:
        assert {a["status"] for a in case_view(db, case.reference)["actions"]} == {"completed"}
    assert not case.ready("follow_up")
    for _ in range(40):  # weeks
        clock.set(clock.now() + timedelta(days=7))
        service.fire_due_timers()
        if case.ready("follow_up"):
            break
    case.complete_all("follow_up", {"outcome": "close", "victim_feedback": "Much better now."})

    with service.sessions() as db:
        closed = case_view(db, case.reference)
        letters = [m["template"] for m in closed["letters"]]
        case_id = db.scalar(select(Case.id).where(Case.reference == case.reference))
        left = db.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.case_id == case_id))
        timers = db.scalar(select(func.count()).select_from(Timer).where(Timer.case_id == case_id))
        running = db.scalar(select(func.count()).select_from(WorkflowInstance)
                            .where(WorkflowInstance.case_id == case_id, WorkflowInstance.status == "running"))
    assert closed["status"] == "closed" and closed["stage"] == "closed"
    assert letters[-1] == "closure"
    assert "action_reminder" in letters and "action_overdue" in letters, case.kinds  # timers fired on the way
    assert case.kinds.get("chase_action", 0) >= 1 and case.kinds["extension"] >= 1
    assert (left, timers, running) == (0, 0, 0)
    assert max(t["depth"] for t in instance_trees(service, case.reference)) < MAX_DEPTH


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_case_past_a_thousand_steps(service, clock):
    drive(service, clock, min_steps=1000)


def test_long_case_on_every_database(service, clock):
    drive(service, clock, min_steps=200)
