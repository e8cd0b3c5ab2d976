"""The engine's commands: every change to a case goes through here, one transaction each.

A command locks the case row (FOR UPDATE on PostgreSQL; SQLite serialises writers with
BEGIN IMMEDIATE), works on the case's workflow instances through a CaseRun, bumps the case's
lock_version as an optimistic check, writes one audit record and commits. Any exception
rolls everything back, so a failed command leaves the case exactly as it was.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterator

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from . import audit, documents, forms, policy, schema
from .clock import Clock, SystemClock, clock_in_use
from .config import Settings
from .db import is_postgres, make_engine, make_sessionmaker
from .errors import CaseReviewError, Conflict, InvalidData, NotFound, NotInitialised, TaskNotReady
from .applicant_links import LinkSettings
from .models import Case, CaseAgency, HumanTask, Timer, User, WorkflowInstance
from .runtime import CaseRun, evaluate_threshold_inputs
from .sandbox import check_data_keys
from .threshold import incident_problems, parse_check_request
from .workdays import warm_bank_holidays
from .versions import BUNDLE, MAIN_PROCESS, THRESHOLD_PROCESS, CompiledVersion, compiled, latest_version, publish, shipped_files

APPLICATION_FORM = "application.json"
ALWAYS_INVOLVED = ("police", "council")


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user's email, 'applicant', 'victim' (only through the consent link in a
    letter to the victim) or 'system' (timers)."""

    name: str
    user: User | None = None

    @property
    def is_applicant(self) -> bool:
        return self.name == "applicant"

    @property
    def is_victim(self) -> bool:
        return self.name == "victim"


SYSTEM = Actor("system")
APPLICANT = Actor("applicant")
VICTIM = Actor("victim")


class CaseReview:
    """Facade used by the CLI, the web app and the tests."""

    def __init__(self, settings: Settings, clock: Clock | None = None):
        self.settings = settings
        self.clock = clock or SystemClock()
        self.engine = make_engine(settings.database_url)
        self.sessions = make_sessionmaker(self.engine)
        warm_bank_holidays(self.clock.now().year)

    # ----- set-up -----------------------------------------------------------------------
    def init(self) -> dict:
        schema.upgrade(self.engine)
        with self.sessions.begin() as db:
            version, created = publish(db, shipped_files(), note="Shipped process", by="system",
                                       now=self.clock.now())
            if created:
                audit.record(db, at=self.clock.now(), actor="system", event="process_published",
                             detail={"version": version.number, "sha256": version.sha256})
            return {"version": version.number, "published": created}

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        with clock_in_use(self.clock), self.sessions.begin() as db:
            yield db

    def now(self) -> datetime:
        return self.clock.now()

    # ----- helpers ----------------------------------------------------------------------
    def _lock_case(self, db: Session, case_id: int) -> Case:
        query = select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
        if is_postgres(db):
            query = query.with_for_update()
        return db.scalars(query).one()

    def _case_by_reference(self, db: Session, reference: str) -> Case:
        case = db.scalar(select(Case).where(Case.reference == reference))
        if case is None:
            raise NotFound(f"there is no case {reference}")
        return self._lock_case(db, case.id)

    def _run(self, db: Session, case: Case) -> CaseRun:
        return CaseRun(db, case, compiled(db, case.process_version_id), self.clock,
                       coordinator_email=self.settings.coordinator_email,
                       time_limit=self.settings.script_time_limit,
                       link_settings=LinkSettings.of(self.settings), service_details=self.settings.service)

    def _commit_run(self, db: Session, run: CaseRun, actor: Actor, event: str, stage_before: str,
                    detail: dict) -> None:
        run.finish()
        case = run.case
        bumped = db.execute(update(Case).where(Case.id == case.id, Case.lock_version == case.lock_version)
                            .values(lock_version=case.lock_version + 1, updated_at=self.clock.now(),
                                    stage=case.stage, status=case.status))
        if bumped.rowcount != 1:
            raise Conflict(f"case {case.reference} was changed by someone else; try again")
        audit.record(db, at=self.clock.now(), actor=actor.name, event=event, case_id=case.id,
                     stage_before=stage_before, stage_after=case.stage, detail={**detail, "effects": run.history})

    def version_for_new_case(self, db: Session) -> CompiledVersion:
        row = latest_version(db, BUNDLE)
        if row is None:
            raise NotInitialised("no process has been published: run `casereview init` first")
        return compiled(db, row.id)

    # ----- commands ---------------------------------------------------------------------
    def apply(self, application: Any, actor: Actor = APPLICANT) -> dict:
        """Start a case from an application (the public form, the phone or `casereview apply`)."""
        with self.transaction() as db:
            version = self.version_for_new_case(db)
            application = self._check_application(version, application)
            received_on = date.fromisoformat(application.get("received_on") or self.clock.now().date().isoformat())
            applicant, victim = application["applicant"], application["victim"]
            third_party = applicant["relationship_to_victim"] != "self"
            agencies = list(ALWAYS_INVOLVED)
            for incident in application["incidents"]:
                code = incident.get("reported_to")
                if code and code != "other" and code not in agencies:
                    agencies.append(code)
            now = self.clock.now()
            fields = dict(process_version_id=version.id, status="open", stage="application",
                          route="third_party" if third_party else "victim",
                          applicant_name=applicant["name"], applicant_email=applicant.get("email"),
                          victim_name=victim.get("name") or (applicant["name"] if not third_party else None),
                          postcode=(victim.get("postcode") or applicant.get("postcode") or "").upper() or None,
                          agencies=agencies, received_on=received_on, lock_version=0, created_at=now, updated_at=now,
                          application=application)
            case = self._insert_with_next_reference(db, received_on, fields)
            db.add_all(CaseAgency(case_id=case.id, agency=code) for code in agencies)
            run = self._run(db, case)
            data = {**application, "reference": case.reference, "received_on": received_on.isoformat(),
                    "third_party": third_party, "agencies": agencies}
            run.start_instance(MAIN_PROCESS, data)
            self._commit_run(db, run, actor, "application_received", "application",
                             {"route": case.route, "received_on": received_on.isoformat()})
            return {"reference": case.reference}

    def _check_application(self, version: CompiledVersion, application: Any) -> dict:
        forms.validate(version.form_validator(APPLICATION_FORM), application, "The application")
        received = application.get("received_on")
        on = date.fromisoformat(received) if received else self.clock.now().date()
        problems = incident_problems(application["incidents"], on)
        if on > self.clock.now().date():
            problems.append({"field": "received_on", "message": "received_on cannot be in the future"})
        if problems:
            raise InvalidData(problems, "The application is not valid")
        return application

    def _insert_with_next_reference(self, db: Session, received_on: date, fields: dict) -> Case:
        """Insert the case under the next free reference. Two applications arriving together
        may pick the same number: the unique index refuses the second, which takes the next."""
        for _attempt in range(50):
            case = Case(reference=self._next_reference(db, received_on), **fields)
            try:
                with db.begin_nested():
                    db.add(case)
                    db.flush()
                return case
            except IntegrityError:
                continue
        raise Conflict("could not give the application a reference; please try again")

    def _next_reference(self, db: Session, received_on: date) -> str:
        prefix = f"ASB-{received_on.year}-"
        last = db.scalar(select(func.max(Case.reference)).where(Case.reference.like(prefix + "%")))
        number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
        return f"{prefix}{number:05d}"

    def complete(self, task_id: str, actor: Actor, data: Any) -> dict:
        """Validate `data` against the task's form and complete it."""
        with self.transaction() as db:
            found = db.get(HumanTask, task_id)
            if found is None:
                raise TaskNotReady(f"task {task_id} is not ready: it has been completed or does not exist")
            case = self._lock_case(db, found.case_id)
            task_row = db.get(HumanTask, task_id, populate_existing=True)
            if task_row is None:
                raise TaskNotReady(f"task {task_id} is no longer ready: someone else has just completed it")
            if case.status != "open":
                raise TaskNotReady(f"case {case.reference} is {case.status}")
            policy.require_may_complete(actor, task_row)
            run = self._run(db, case)
            if not isinstance(data, dict):
                raise InvalidData([{"field": "(form)", "message": "must be a JSON object"}])
            forms.validate(run.version.form_validator(task_row.form), data)
            key_problems = check_data_keys(data, run.script_engine.environment.reserved_names)
            if key_problems:
                raise InvalidData([{"field": "(form)", "message": m} for m in key_problems])
            # documents named by the form must be this case's own (the applicant's, for the applicant)
            document_problems = documents.reference_problems(
                db, case.id, run.version.forms[task_row.form], data,
                allowed=(lambda d: d.uploaded_by == documents.APPLICANT) if actor.is_applicant
                else (lambda d: False) if actor.is_victim else None)
            if document_problems:
                raise InvalidData(document_problems)
            instance = db.get(WorkflowInstance, task_row.instance_id)
            workflow = run.load(instance)
            task = workflow.get_task_from_id(_uuid(task_id))
            if task is None or task.state != TaskState.READY:
                raise TaskNotReady(f"task {task_id} is no longer ready")
            stage_before = case.stage
            task.data.update(data)
            task.run()
            instance.steps += 1
            run.settle(instance)
            self._commit_run(db, run, actor, "task_completed", stage_before,
                             {"task": task_row.name, "title": task_row.title, "task_id": task_id,
                              "role": task_row.role, "agency": task_row.agency,
                              # how many entries each list answer had (for figures); never the answers
                              "counts": {key: len(value) for key, value in data.items() if isinstance(value, list)}})
            return {"completed": task_id, "case": case.reference, "stage": case.stage, "status": case.status}

    def send_message(self, reference: str, name: str, payload: dict, actor: Actor) -> dict:
        with self.transaction() as db:
            case = self._case_by_reference(db, reference)
            if case.status != "open":
                raise Conflict(f"case {reference} is {case.status}")
            stage_before = case.stage
            run = self._run(db, case)
            outcome = run.send_message(name, payload)
            # audit rows are kept for ever: reasons typed by people stay in the case, not in the audit trail
            self._commit_run(db, run, actor, name, stage_before, {"message": name, **audit.summarise(payload)})
            return {"case": reference, "message": name, "outcome": outcome, "stage": case.stage, "status": case.status}

    def withdraw(self, reference: str, actor: Actor = APPLICANT, reason: str = "") -> dict:
        return self.send_message(reference, "withdrawal_requested",
                                 {"withdrawal_reason": reason or "Withdrawn by the applicant"}, actor)

    def escalate(self, reference: str, reason: str, actor: Actor = APPLICANT) -> dict:
        reason = (reason or "").strip()
        if not reason:
            raise InvalidData([{"field": "reason", "message": "say why you are asking for an escalation"}])
        with self.sessions() as db:
            case = db.scalar(select(Case).where(Case.reference == reference))
            if case is None:
                raise NotFound(f"there is no case {reference}")
            if case.decided_on is None:
                raise Conflict(f"case {reference} has no threshold decision yet; an escalation can be asked for after it")
        return self.send_message(reference, "escalation_requested",
                                 {"escalation_reason": reason,
                                  "escalation_requested_on": self.clock.now().date().isoformat()}, actor)

    def fire_due_timers(self, limit: int = 1000) -> int:
        """Fire every timer due by the clock; each case in its own transaction. With several
        workers, each claims a case with FOR UPDATE SKIP LOCKED, so a timer fires once."""
        fired, seen = 0, set()
        while len(seen) < limit:
            with self.transaction() as db:
                query = (select(Case.id).join(Timer, Timer.case_id == Case.id)
                         .where(Timer.due_at <= self.clock.now(), Case.status == "open")
                         .order_by(Timer.due_at).limit(1))
                if seen:
                    query = query.where(Case.id.not_in(seen))
                if is_postgres(db):
                    query = query.with_for_update(of=Case, skip_locked=True)
                case_id = db.scalar(query)
                if case_id is None:
                    return fired
                seen.add(case_id)
                case = self._lock_case(db, case_id)
                stage_before = case.stage
                run = self._run(db, case)
                names = run.fire_timers()
                if names:
                    fired += len(names)
                    self._commit_run(db, run, SYSTEM, "timer_fired", stage_before, {"timers": names})
        return fired

    # ----- reads ------------------------------------------------------------------------
    def threshold_check(self, payload: Any) -> dict:
        """Run the published threshold_check process (the workflow's own code path) on a request."""
        application_date, incidents = parse_check_request(payload)
        with clock_in_use(self.clock), self.sessions() as db:
            version = self.version_for_new_case(db)
            spec, subprocess_specs = version.specs[THRESHOLD_PROCESS]
            scratch = Case(id=0, reference="THRESHOLD-CHECK", stage="threshold_check", status="open")
            run = CaseRun(db, scratch, version, self.clock, coordinator_email=self.settings.coordinator_email,
                          service_details=self.settings.service)
            workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=run.script_engine)
            data = {"application_date": application_date.isoformat(), "threshold_incidents": incidents}
            for task in workflow.get_tasks(state=TaskState.READY):
                task.data.update(data)
            workflow.do_engine_steps()
            if not workflow.is_completed():
                raise CaseReviewError("the threshold_check process did not finish")
            result = workflow.last_task.data.get("threshold") or workflow.data.get("threshold")
            counts = evaluate_threshold_inputs(version, run.script_engine, data)
        return {"met": bool(result["met"]), "reasons": list(result["reasons"]), **counts}


def _uuid(value: str):
    from uuid import UUID

    try:
        return UUID(value)
    except ValueError:
        raise TaskNotReady(f"task {value} does not exist") from None
