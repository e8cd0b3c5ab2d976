"""The dry run: a candidate bundle drives the demo applications to an end in a throw-away
in-memory SQLite database, through the same commands users use (CaseReview.apply,
complete, fire_due_timers).

A scripted walker answers every ready task with minimal valid data generated from its form
and moves the injected clock to the next timer when nothing is ready. Each journey must
close or withdraw its case within a bounded number of steps; one that stops with nothing
ready and no timer, fails in a script, or runs out of steps is reported with the elements it
was waiting at.
"""
from __future__ import annotations

import tempfile
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import SADeprecationWarning
from SpiffWorkflow.util.task import TaskState

from .. import schema, versions
from ..clock import FixedClock
from ..config import Settings
from ..errors import CaseReviewError, InvalidData
from ..models import Case, HumanTask, Timer, User, WorkflowInstance
from ..scenarios import application
from ..service import APPLICANT, VICTIM, Actor, CaseReview
from .formdata import CannotAnswer, answer, schema_at
from .problems import Problem

MAX_STEPS = 150
TIMER_SLACK = timedelta(minutes=1)
# Dates in answers (a panel date, an action's due date) lie ahead, so the tasks before them run.
ANSWER_DATES_AHEAD = timedelta(days=14)
RULE = "dry-run"


@dataclass(frozen=True)
class Journey:
    """One demo application and how the walker behaves: `prompt` answers every task before
    any timer fires; `late` lets every pending timer fire first (deadlines, reminders)."""

    label: str
    application: dict = field(default_factory=dict)
    mode: str = "prompt"
    fill_lists: bool = False
    verify_as_applied: bool = True  # the coordinator verifies the incidents the application lists


JOURNEYS = (
    Journey("victim applies; everyone answers"),
    Journey("third party applies; everyone answers", {"third_party": True}),
    Journey("one hate incident; everyone answers", {"hate": True, "incidents": 1}),
    Journey("threshold not met", {"incidents": 1}),
    Journey("third party; nobody answers before the deadlines", {"third_party": True}, mode="late"),
    Journey("third party, victim without email; everyone answers",
            {"third_party": True, "victim_contact": {"phone": "01632 960111", "address": "2 Low Road, Exampleton"}}),
    Journey("third party, victim without email; nobody answers", {"third_party": True,
            "victim_contact": {"phone": "01632 960111"}}, mode="late"),
    Journey("victim; every deadline passes first, one action agreed", {}, mode="late", fill_lists=True),
)


@dataclass
class Outcome:
    journey: str
    reference: str | None
    status: str
    steps: int
    completed: list[str]
    timers: list[str]


def dry_run(files: dict[str, str], *, start: datetime | None = None, journeys=JOURNEYS,
            process_files: dict[str, str] | None = None) -> tuple[list[Problem], list[Outcome]]:
    """Run every journey on the bundle; (problems, what each journey did).

    The bundle must compile. `process_files` maps process id → BPMN file, to name the file in
    problems. Nothing outside the throw-away database is touched.
    """
    start = start or datetime.combine(datetime.now(timezone.utc).date(), time(9), timezone.utc)
    url = f"sqlite:///file:dryrun_{uuid.uuid4().hex}?mode=memory&cache=shared&uri=true"
    clock = FixedClock(start)
    settings = Settings(database_url=url, outbox_dir=Path(tempfile.gettempdir()) / "casereview-dry-run")
    with warnings.catch_warnings():
        # SQLAlchemy picks a one-connection-per-thread pool for a named in-memory database, which
        # is what a dry run (one thread) wants; it warns that the default will change.
        warnings.simplefilter("ignore", SADeprecationWarning)
        service = CaseReview(settings, clock)
    problems: list[Problem] = []
    outcomes: list[Outcome] = []
    try:
        schema.upgrade(service.engine)  # the real migrations: the same tables and triggers as production
        with service.transaction() as db:
            versions.publish(db, files, note="dry run", by="dry-run", now=clock.now())
        compiled = versions.compile_cached(versions.bundle_sha256(files), files)
        for journey in journeys:
            clock.set(start)
            walker = _Walker(service, clock, journey, compiled.forms, process_files or {})
            outcomes.append(walker.walk())
            problems.extend(walker.problems)
    finally:
        service.engine.dispose()
        versions.forget_database(str(service.engine.url))
    return problems, outcomes


class _Walker:
    def __init__(self, service: CaseReview, clock: FixedClock, journey: Journey, forms: dict[str, dict],
                 process_files: dict[str, str]):
        self.service = service
        self.forms = forms
        self.clock = clock
        self.journey = journey
        self.process_files = process_files
        self.problems: list[Problem] = []
        self.completed: list[str] = []
        self.timers: list[str] = []
        self.app = application(clock.now().date(), **journey.application)

    def problem(self, process: str | None, element: str | None, message: str) -> None:
        self.problems.append(Problem(self.process_files.get(process or "", None), element, RULE,
                                     f"{self.journey.label}: {message}"))

    def walk(self) -> Outcome:
        try:
            reference = self.service.apply(self.app)["reference"]
        except InvalidData as exc:
            self.problems.append(Problem("forms/application.json", None, RULE,
                                         f"{self.journey.label}: the demo application is refused: {exc.message}"))
            return Outcome(self.journey.label, None, "not started", 0, [], [])
        except Exception as exc:  # noqa: BLE001 - a validator reports every failure
            self._failed(None, exc)
            return Outcome(self.journey.label, None, "failed", 0, [], [])
        status, steps = "open", 0
        for steps in range(1, MAX_STEPS + 1):
            status = self._status(reference)
            if status != "open":
                break
            try:
                if not self._step(reference):
                    self._stuck(reference)
                    break
            except Exception as exc:  # noqa: BLE001 - a validator reports every failure
                self._failed(reference, exc)
                status = "failed"
                break
        else:
            self._stuck(reference, f"did not reach an end within {MAX_STEPS} steps")
        return Outcome(self.journey.label, reference, status, steps, self.completed, self.timers)

    def _status(self, reference: str) -> str:
        with self.service.sessions() as db:
            return db.scalar(select(Case.status).where(Case.reference == reference))

    def _step(self, reference: str) -> bool:
        """Do one thing; False when nothing can move the case on."""
        with self.service.sessions() as db:
            case_id = db.scalar(select(Case.id).where(Case.reference == reference))
            task = db.scalars(select(HumanTask).where(HumanTask.case_id == case_id)
                              .order_by(HumanTask.created_at, HumanTask.id).limit(1)).first()
            next_timer = db.scalar(select(func.min(Timer.due_at)).where(Timer.case_id == case_id))
            if task is not None:
                db.expunge(task)
        if next_timer is not None and (task is None or self.journey.mode == "late"):
            if next_timer >= self.clock.now():
                self.clock.set(next_timer + TIMER_SLACK)  # a timer fires once its moment has passed
            with self.service.sessions() as db:
                names = list(db.scalars(select(Timer.name).where(Timer.case_id == case_id,
                                                                 Timer.due_at <= self.clock.now())))
            self.timers.extend(names)
            self.service.fire_due_timers()
            return True
        if task is None:
            return False
        self._complete(task)
        return True

    def _complete(self, task: HumanTask) -> None:
        schema = self.forms[task.form]
        given = {}
        if self.journey.verify_as_applied and "verified_incidents" in (schema.get("properties") or {}):
            item = schema_at(schema, ["verified_incidents", 0])
            allowed = set(item.get("properties") or {})
            given["verified_incidents"] = [{k: v for k, v in i.items() if k in allowed} for i in self.app["incidents"]]
        try:
            data = answer(schema, on=self.clock.now().date() + ANSWER_DATES_AHEAD, fill_lists=self.journey.fill_lists, given=given)
        except CannotAnswer as exc:
            raise CaseReviewError(f"cannot make valid answers for {task.form} ({task.name}): {exc}") from None
        self.service.complete(task.id, _actor_for(task), data)
        self.completed.append(task.name)

    def _waiting(self, reference: str) -> list[tuple[str, str]]:
        """(process id, bpmn id) of every task the case's running instances wait at."""
        found = []
        with self.service.sessions() as db:
            case = db.scalar(select(Case).where(Case.reference == reference))
            version = versions.compiled(db, case.process_version_id)
            rows = db.scalars(select(WorkflowInstance).where(WorkflowInstance.case_id == case.id,
                                                             WorkflowInstance.status == "running"))
            for row in rows:
                workflow = version.serializer.loads(row.state, None)
                for item in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED):
                    spec = item.task_spec
                    if getattr(spec, "bpmn_id", None):
                        found.append((row.process_id, spec.bpmn_id))
        return found

    def _stuck(self, reference: str, why: str = "the case cannot reach an end: nothing is ready and no timer is set") -> None:
        waiting = self._waiting(reference)
        if not waiting:
            self.problem(None, None, why)
        for process, element in dict.fromkeys(waiting):
            self.problem(process, element, f"{why} (waiting at {element} in {process}; "
                                           f"done so far: {', '.join(self.completed) or 'nothing'})")

    def _failed(self, reference: str | None, exc: Exception) -> None:
        task_spec = getattr(getattr(exc, "task", None), "task_spec", None) or getattr(exc, "task_spec", None)
        element = getattr(task_spec, "bpmn_id", None)
        process = getattr(getattr(task_spec, "_wf_spec", None), "name", None)
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        self.problem(process, element, f"failed after {len(self.completed)} task(s): {message}")


def _actor_for(task: HumanTask) -> Actor:
    if task.role == "applicant":
        return APPLICANT
    if task.role == "victim":
        return VICTIM
    user = User(email=f"dry-run-{task.role}@example.org", name="Dry run", role=task.role, agency=task.agency,
                active=True)
    return Actor(user.email, user)

