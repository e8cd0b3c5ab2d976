"""One command's work on one case: load its workflow instances, run them until they wait,
apply the effects their scripts queued, save them and rebuild the derived rows.

Everything happens inside the caller's database transaction; nothing here commits.
"""
from __future__ import annotations

import contextvars
import copy
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any, Callable

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from . import applicant_links
from . import threshold as threshold_rules
from .clock import Clock
from .config import Settings
from .errors import CaseReviewError
from .letters import long_date, render, variables_used
from .models import Action, Agency, Case, CaseAgency, HumanTask, OutboxMessage, Timer, WorkflowInstance
from .sandbox import RestrictedEnvironment, SandboxedScriptEngine, ScriptLimitExceeded
from .versions import CompiledVersion
from .workdays import add_working_days, months_before, to_date

# Task data of the script or expression running right now: side-effect helpers read it.
_current_data: contextvars.ContextVar[dict] = contextvars.ContextVar("casereview_task_data")

STATUSES = ("open", "closed", "withdrawn")
ROLES = ("coordinator", "partner", "chair", "reviewer", "applicant", "victim")

# Guard against SpiffWorkflow's silent depth limit (spiffworkflow.md §10): fail loudly well before it.
MAX_TREE_DEPTH = 800


class _CaseEnvironment(RestrictedEnvironment):
    """The sandbox, remembering which task data a helper call belongs to."""

    def evaluate(self, expression, context, external_context=None):
        token = _current_data.set(context)
        try:
            return super().evaluate(expression, context, external_context)
        finally:
            _current_data.reset(token)

    def execute(self, script, context, external_context=None):
        token = _current_data.set(context)
        try:
            return super().execute(script, context, external_context)
        finally:
            _current_data.reset(token)


# The most of each effect one command may queue. A case's real work is a few letters, an action
# plan and a process per action; a script that loops past these is a mistake, refused before it
# fills the outbox or the database.
EFFECT_LIMITS = {"letter": 100, "action": 500, "process": 500}


@dataclass
class Effects:
    """What scripts asked for during a command, applied in the same transaction."""

    stage: str | None = None
    letters: list[dict] = field(default_factory=list)
    threshold: dict | None = None
    actions: list[dict] = field(default_factory=list)
    starts: list[tuple[str, dict]] = field(default_factory=list)
    close: str | None = None
    queued: dict[str, int] = field(default_factory=dict)  # per command, never reset by applying

    def count(self, kind: str) -> None:
        self.queued[kind] = self.queued.get(kind, 0) + 1
        if self.queued[kind] > EFFECT_LIMITS[kind]:
            raise ScriptLimitExceeded(
                f"one step may queue at most {EFFECT_LIMITS[kind]} of '{kind}' (a loop that runs too often?)",
                construct="effect limit")


def _snapshot(data: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in data.items() if not callable(v) and not k.startswith("_")}


def _iso_midnight(day: date) -> str:
    return datetime.combine(day, time.min, timezone.utc).isoformat()


class CaseRun:
    """The unit of work of one command on one (locked) case."""

    def __init__(self, db: Session, case: Case, version: CompiledVersion, clock: Clock, *,
                 coordinator_email: str, time_limit: float = 1.0, link_settings=None,
                 service_details: dict | None = None):
        self.db = db
        self.link_settings = link_settings  # base URL and lifetime of applicants' links (None: from the environment)
        self.service_details = service_details  # `service` in letters: Settings.service (None: from the environment)
        self.case = case
        self.version = version
        self.clock = clock
        self.coordinator_email = coordinator_email
        self.effects = Effects()
        self.history: list[dict] = []
        self._loaded: dict[int, tuple[WorkflowInstance, BpmnWorkflow]] = {}
        self._created: set[int] = set()  # instances started by this command have no derived rows yet
        self.script_engine = self._make_script_engine(time_limit)

    # ----- script helpers ---------------------------------------------------------------
    def _make_script_engine(self, time_limit: float):
        return SandboxedScriptEngine(environment=_CaseEnvironment(self.script_functions(), time_limit=time_limit))

    def today(self) -> date:
        return self.clock.now().date()

    def script_functions(self) -> dict[str, Callable]:
        effects = self.effects

        def working_days_from_now(n):
            now = self.clock.now()
            return datetime.combine(add_working_days(now.date(), int(n)), now.time(), timezone.utc).isoformat()

        def send_letter(template, to="applicant"):
            effects.count("letter")
            effects.letters.append({"template": str(template), "to": str(to), "data": _snapshot(_current_data.get())})

        def notify_agency(code, template):
            send_letter(template, to=str(code))

        def record_action(action):
            effects.count("action")
            effects.actions.append(dict(action))

        def start_process(process_id, data):
            effects.count("process")
            effects.starts.append((str(process_id), _snapshot(dict(data))))

        def close_case(status):
            if status not in ("closed", "withdrawn"):
                raise CaseReviewError(f"close_case: unknown status {status!r}")
            effects.close = status

        def set_stage(name):
            effects.stage = str(name)

        def record_threshold(result):
            effects.threshold = {"result": dict(result), "data": _snapshot(_current_data.get())}

        return {
            "add_working_days": add_working_days,
            "working_days_from_now": working_days_from_now,
            "at_start_of": lambda d: _iso_midnight(to_date(d)),
            "date_of": to_date,
            "today": self.today,
            "months_before": lambda d, n: months_before(to_date(d), int(n)),
            "occasions_within": threshold_rules.occasions_within,
            "reported_within": threshold_rules.reported_within,
            "hate_within": threshold_rules.hate_within,
            "set_stage": set_stage,
            "send_letter": send_letter,
            "notify_agency": notify_agency,
            "record_threshold": record_threshold,
            "record_action": record_action,
            "start_process": start_process,
            "new_id": lambda: uuid.uuid4().hex[:12],
            "close_case": close_case,
        }

    # ----- instances --------------------------------------------------------------------
    def instances(self, status: str | None = "running") -> list[WorkflowInstance]:
        query = select(WorkflowInstance).where(WorkflowInstance.case_id == self.case.id).order_by(WorkflowInstance.id)
        if status:
            query = query.where(WorkflowInstance.status == status)
        return list(self.db.scalars(query))

    def loaded_workflows(self) -> list[BpmnWorkflow]:
        return [workflow for _row, workflow in self._loaded.values()]

    def load(self, row: WorkflowInstance) -> BpmnWorkflow:
        if row.id not in self._loaded:
            self._loaded[row.id] = (row, self.version.serializer.loads(row.state, self.script_engine))
        return self._loaded[row.id][1]

    def start_instance(self, process_id: str, data: dict, message: str | None = None) -> WorkflowInstance:
        if process_id not in self.version.specs:
            raise CaseReviewError(f"no process {process_id!r} in version {self.version.number}")
        spec, subprocess_specs = self.version.specs[process_id]
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=self.script_engine)
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(copy.deepcopy(data))
        now = self.clock.now()
        row = WorkflowInstance(case_id=self.case.id, process_id=process_id, status="running", state="",
                               steps=0, created_at=now, updated_at=now)
        self.db.add(row)
        self.db.flush()
        self._loaded[row.id] = (row, workflow)
        self._created.add(row.id)
        self.history.append({"event": "process_started", "process": process_id})
        if message:  # a message start event waits for its message even in a new instance
            workflow.do_engine_steps()
            workflow.send_event(BpmnEvent(MessageEventDefinition(message), payload=copy.deepcopy(data)))
        self.settle(row)
        return row

    def settle(self, row: WorkflowInstance) -> None:
        """Run the instance until it waits, then apply effects (which may start instances)."""
        workflow = self.load(row)
        workflow.do_engine_steps()
        self._apply_effects()
        self._save(row, workflow)
        while self.effects.starts:
            process_id, data = self.effects.starts.pop(0)
            self.start_instance(process_id, data)

    def send_message(self, name: str, payload: dict) -> str:
        """Deliver a message to the instances waiting for it, or start the process it starts.
        Returns 'delivered' or 'started'."""
        delivered = False
        for row in self.instances():
            workflow = self.load(row)
            if any(event.name == name for event in workflow.waiting_events()):
                workflow.send_event(BpmnEvent(MessageEventDefinition(name), payload=payload))
                self.settle(row)
                delivered = True
        if delivered:
            return "delivered"
        process_id = self.version.message_starts.get(name)
        if process_id is None:
            raise CaseReviewError(f"nothing in case {self.case.reference} is waiting for {name!r}")
        self.start_instance(process_id, {"reference": self.case.reference, **payload}, message=name)
        return "started"

    def fire_timers(self) -> list[str]:
        """Fire every timer of the case that is due by the clock; names of those fired."""
        now = self.clock.now()
        due = {row.instance_id for row in self.db.scalars(
            select(Timer).where(Timer.case_id == self.case.id, Timer.due_at <= now))}
        fired: list[str] = []
        for row in self.instances():
            if row.id not in due:
                continue
            workflow = self.load(row)
            before = self._waiting_timers(workflow)
            workflow.refresh_timers()
            workflow.do_engine_steps()
            after = self._waiting_timers(workflow)
            fired.extend(name for key, (name, _at) in before.items() if key not in after and _at <= now)
            self._apply_effects()
            self._save(row, workflow)
            while self.effects.starts:
                process_id, data = self.effects.starts.pop(0)
                self.start_instance(process_id, data)
        return fired

    def finish(self) -> None:
        """After the command's steps: a closed case stops every instance still running."""
        if self.case.status != "open":
            for row in self.instances():
                workflow = self.load(row)
                workflow.cancel()
                row.status = "cancelled"
                self._save(row, workflow)
                self.history.append({"event": "process_cancelled", "process": row.process_id})

    # ----- effects ----------------------------------------------------------------------
    def _apply_effects(self) -> None:
        effects, now = self.effects, self.clock.now()
        if effects.stage:
            self.case.stage = effects.stage
            effects.stage = None
        for letter in effects.letters:
            self._write_letter(letter["template"], letter["to"], letter["data"])
        effects.letters.clear()
        if effects.threshold:
            self._record_threshold(**effects.threshold)
            effects.threshold = None
        for item in effects.actions:
            self._record_action(item, now)
        effects.actions.clear()
        if effects.close and self.case.status == "open":
            self.case.status = effects.close
            self.case.stage = effects.close
            self.case.closed_at = now
            self.history.append({"event": f"case_{effects.close}"})
        effects.close = None

    def _recipient(self, to: str, data: dict) -> tuple[str, str]:
        """(recipient role, address) of a letter. A person's letter goes by post when they asked
        for post and gave an address, else to their email, else by post. The victim's letters
        go to the victim's own details (the applicant's only when they are the same person);
        a victim with neither email nor address gets nothing written to the applicant: the
        letter goes to the coordinator, to pass on by phone."""
        if to in ("applicant", "victim"):
            applicant = data.get("applicant") or {}
            if to == "applicant" or self.case.route == "victim":
                return to, self._personal_address(applicant, self.case.applicant_email)
            victim = data.get("victim") or {}
            if not (victim.get("email") or victim.get("address")):
                return "coordinator", self.coordinator_email
            return to, self._personal_address(victim, None)
        if to == "coordinator":
            return "coordinator", self.coordinator_email
        agency = self.db.scalar(select(Agency).where(Agency.code == to))
        if agency is None:
            return f"agency:{to}", f"{to}@agency.invalid"
        return f"agency:{to}", agency.email or f"{to}@agency.invalid"

    @staticmethod
    def _personal_address(person: dict, email_on_file: str | None) -> str:
        by_post = f"post:{person.get('address') or 'address not given'}"
        if person.get("preferred_contact") == "post" and person.get("address"):
            return by_post  # they asked for letters on paper
        return person.get("email") or email_on_file or by_post

    def involve(self, agency: str) -> None:
        """An agency asked to act on the case may see it from then on."""
        if agency and agency not in (self.case.agencies or []):
            self.case.agencies = [*(self.case.agencies or []), agency]  # a new list: JSON change tracking
            self.db.add(CaseAgency(case_id=self.case.id, agency=agency))

    def _write_letter(self, template: str, to: str, data: dict) -> None:
        context = {**data, "case": {"reference": self.case.reference, "stage": self.case.stage},
                   "service": self.service_details or Settings.from_env().service}
        role, address = self._recipient(to, data)
        context.update(applicant_links.links_for_letter(self, template, role, address))  # only ever in the letter
        if "reply_by" in variables_used(self.version.letters.get(template, "")):
            due = waiting_deadline(self)
            context["reply_by"] = long_date(due) if due else ""
        letter = render(self.version.letters, template, context)
        self.db.add(OutboxMessage(case_id=self.case.id, template=template, recipient=address, recipient_role=role,
                                  subject=letter.subject, body=letter.body, created_at=self.clock.now(), attempts=0))
        self.history.append({"event": "letter", "template": template, "to": role})

    def _record_threshold(self, result: dict, data: dict) -> None:
        counts = {}
        if "threshold_incidents" in data and "application_date" in data:
            counts = threshold_details(self.version, data, self.script_engine)
        self.case.threshold = {**result, **counts}
        decided = result.get("decided_on")
        self.case.decided_on = to_date(decided) if decided else self.today()
        self.history.append({"event": "threshold_decided", "met": bool(result.get("met")),
                             "overridden": bool(result.get("overridden"))})

    def _record_action(self, item: dict, now: datetime) -> None:
        if not item.get("id"):
            raise CaseReviewError("record_action needs an action id")
        row = self.db.get(Action, str(item["id"]))
        if row is None:
            row = Action(id=str(item["id"]), case_id=self.case.id, description="", agency="", status="open",
                         updated_at=now)
            self.db.add(row)
        row.description = str(item.get("description", row.description))
        row.agency = str(item.get("agency", row.agency))
        row.owner = item.get("owner", row.owner)
        row.due = to_date(item["due"]) if item.get("due") else row.due
        row.status = str(item.get("status", row.status))
        self.involve(row.agency)
        row.last_note = item.get("last_note", item.get("note", row.last_note))
        row.updated_at = now

    # ----- persistence and derived rows -------------------------------------------------
    def _save(self, row: WorkflowInstance, workflow: BpmnWorkflow) -> None:
        depth = _tree_depth(workflow)
        if depth > MAX_TREE_DEPTH:
            raise CaseReviewError(
                f"{row.process_id} in case {self.case.reference} has grown to {depth} steps; "
                "model repeating work as new instances (start_process) instead of loops")
        row.state = self.version.serializer.dumps(workflow)
        if row.status == "running" and workflow.is_completed():
            row.status = "completed"
        row.updated_at = self.clock.now()
        self._sync_tasks(row, workflow)
        self._sync_timers(row, workflow)

    def _sync_tasks(self, row: WorkflowInstance, workflow: BpmnWorkflow) -> None:
        if row.status != "running":
            if row.id not in self._created:
                self.db.execute(delete(HumanTask).where(HumanTask.instance_id == row.id))
            return
        ready = {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.manual}
        existing = {} if row.id in self._created else {
            t.id: t for t in self.db.scalars(select(HumanTask).where(HumanTask.instance_id == row.id))}
        for task_id, stale in existing.items():
            if task_id not in ready:
                self.db.delete(stale)
        for task_id, task in ready.items():
            if task_id not in existing:
                self.db.add(self.describe_task(row, task))
        self.db.flush()

    def describe_task(self, row: WorkflowInstance, task) -> HumanTask:
        spec = task.task_spec
        properties = spec.extensions.get("properties", {})
        role = spec.lane
        if role not in ROLES:
            raise CaseReviewError(f"user task {spec.bpmn_id} is in lane {role!r}, not one of {', '.join(ROLES)}")
        agency = None
        if role == "partner":
            agency = str(self.script_engine.evaluate(task, properties["agency"]))
            self.involve(agency)
        due = None
        if properties.get("dueDate"):
            due = to_date(self.script_engine.evaluate(task, properties["dueDate"]))
        return HumanTask(id=str(task.id), case_id=self.case.id, instance_id=row.id, name=spec.bpmn_id,
                         title=spec.bpmn_name or spec.bpmn_id, role=role, agency=agency,
                         form=properties["formJsonSchemaFilename"], due=due, created_at=self.clock.now())

    def _waiting_timers(self, workflow: BpmnWorkflow) -> dict[str, tuple[str, datetime]]:
        timers = {}
        for task in workflow.get_tasks(state=TaskState.WAITING):
            event = getattr(task.task_spec, "event_definition", None)
            if isinstance(event, TimerEventDefinition):
                due = _timer_due(task)
                if due is not None:
                    timers[str(task.id)] = (task.task_spec.bpmn_id or task.task_spec.name, due)
        return timers

    def _sync_timers(self, row: WorkflowInstance, workflow: BpmnWorkflow) -> None:
        if row.id not in self._created:
            self.db.execute(delete(Timer).where(Timer.instance_id == row.id))
        if row.status != "running":
            return
        rows = [{"case_id": self.case.id, "instance_id": row.id, "name": name, "due_at": due}
                for name, due in self._waiting_timers(workflow).values()]
        if rows:
            self.db.execute(insert(Timer), rows)


def _timer_due(task) -> datetime | None:
    value = task.internal_data.get("event_value")
    if value is None:
        return None
    if isinstance(value, dict):  # cycle timers keep {cycles, next, duration}
        value = value.get("next")
    if isinstance(value, datetime):
        due = value
    else:
        due = TimerEventDefinition.get_datetime(str(value))
    return due.astimezone(timezone.utc) if due.tzinfo else due.replace(tzinfo=timezone.utc)


def waiting_deadline(run: CaseRun, lane: str | None = None) -> datetime | None:
    """When the work now waiting times out: the earliest cancelling timer attached to a ready
    user task (of `lane`, if given) in the instances this command has loaded. A letter written
    as a task starts gets that task's deadline, whatever the diagram's timer says."""
    dues = []
    for workflow in run.loaded_workflows():
        for task in workflow.get_tasks(state=TaskState.READY):
            if not task.task_spec.manual or (lane is not None and task.task_spec.lane != lane):
                continue
            for sibling in task.parent.children if task.parent else []:
                spec = sibling.task_spec
                if (sibling is not task and sibling.state == TaskState.WAITING
                        and getattr(spec, "cancel_activity", False)
                        and isinstance(getattr(spec, "event_definition", None), TimerEventDefinition)):
                    due = _timer_due(sibling)
                    if due is not None:
                        dues.append(due)
    return min(dues) if dues else None


def _tree_depth(workflow: BpmnWorkflow) -> int:
    depth, task = 0, workflow.last_task
    while task is not None:
        depth += 1
        task = task.parent
    return depth


def counting_engine(time_limit: float = 1.0) -> SandboxedScriptEngine:
    """A sandboxed engine with the pure helpers only (no effects, no clock): enough to evaluate
    the threshold table's inputs outside a command, e.g. for the task page."""
    helpers = {
        "add_working_days": add_working_days,
        "date_of": to_date,
        "months_before": lambda d, n: months_before(to_date(d), int(n)),
        "occasions_within": threshold_rules.occasions_within,
        "reported_within": threshold_rules.reported_within,
        "hate_within": threshold_rules.hate_within,
    }
    return SandboxedScriptEngine(environment=RestrictedEnvironment(helpers, time_limit=time_limit))


def threshold_details(version: CompiledVersion, data: dict, script_engine=None) -> dict[str, Any]:
    """The table's counts for the task data's incidents, each incident counted or not, and the
    table's terms: what a decision keeps and what pages explain it with."""
    script_engine = script_engine or counting_engine()
    details = evaluate_threshold_inputs(version, script_engine, data)
    details["incidents"] = explain_incidents(version, script_engine, data)
    details["terms"] = threshold_rules.decision_terms(version)
    return details


def explain_incidents(version: CompiledVersion, script_engine, data: dict) -> list[dict[str, Any]]:
    """Which incidents counted and why: the table's own inputs evaluated on each incident alone,
    so the explanation follows whatever window the published table uses."""
    explained = []
    for incident in data["threshold_incidents"]:
        alone = evaluate_threshold_inputs(version, script_engine, {**data, "threshold_incidents": [incident]})
        explained.append({
            "occurred_on": incident.get("occurred_on"), "reported_on": incident.get("reported_on"),
            "reported_to": incident.get("reported_to"), "reference": incident.get("reference"),
            "counted": alone.get("occasions", 0) > 0,
            "recent": alone.get("reported_in_last_month", 0) > 0,
            "hate": alone.get("hate_incidents", 0) > 0,
        })
    return explained


def evaluate_threshold_inputs(version: CompiledVersion, script_engine, data: dict) -> dict[str, Any]:
    """The decision table's input values (its counts) for `data`, read from the table itself."""
    environment = script_engine.environment
    context = {"threshold_incidents": data["threshold_incidents"], "application_date": data["application_date"]}
    return {input_id: environment.evaluate(expression, dict(context)) for input_id, expression in version.threshold_inputs}
