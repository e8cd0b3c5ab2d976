"""Moving open cases from one process version to another.

Cases keep the version they started on (case.process_version_id) until someone moves them.
A saved workflow names each task's spec; SpiffWorkflow finds the spec by that name when it
loads the state, so a case can move when

* every running instance's process (and called process) exists in the new version;
* every task the instance has reached (done, ready, waiting) has a spec of the same name
  there, of the same kind for tasks still open, and each ready user task's form exists.

Tasks not reached yet (predicted: FUTURE, LIKELY, MAYBE) are dropped from the saved state
and predicted again from the new version's diagram, so inserted or re-routed steps ahead of
the case are followed. Waiting timers keep the due time they were given when reached (a
changed timer expression applies to timers reached after the move). Ready tasks are
described again from the new version (title, form, role, agency, due date), keeping who
claimed them.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from SpiffWorkflow.util.task import TaskState

from .. import audit, versions
from ..db import is_postgres
from ..errors import Conflict
from ..models import Case, HumanTask, WorkflowInstance
from ..runtime import CaseRun
from ..versions import CompiledVersion
from .publishing import get_version

LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED
PREDICTED = TaskState.FUTURE | TaskState.PREDICTED_MASK
STATE_NAMES = {TaskState.READY: "ready", TaskState.WAITING: "waiting", TaskState.STARTED: "in progress",
               TaskState.COMPLETED: "done", TaskState.CANCELLED: "cancelled", TaskState.ERROR: "failed"}


def migration_plan(db: Session, from_version: int, to_version: int, *, bundle: str = versions.BUNDLE,
                   references: list[str] | None = None) -> list[dict[str, Any]]:
    """For each open case on `from_version`: can it move to `to_version`, and if not, why.

    Each item: {"reference", "movable", "reasons": [...], "waiting_at": [bpmn ids]}.
    """
    old_row, new_row = get_version(db, from_version, bundle), get_version(db, to_version, bundle)
    old, new = versions.compiled(db, old_row.id), versions.compiled(db, new_row.id)
    query = select(Case).where(Case.process_version_id == old_row.id, Case.status == "open").order_by(Case.reference)
    if references is not None:
        query = query.where(Case.reference.in_(references))
    return [assess(db, case, old, new) for case in db.scalars(query)]


def assess(db: Session, case: Case, old: CompiledVersion, new: CompiledVersion) -> dict[str, Any]:
    reasons: list[str] = []
    waiting: list[str] = []
    for row in _running(db, case.id):
        reasons.extend(_instance_reasons(row, old, new, waiting))
    return {"reference": case.reference, "movable": not reasons, "reasons": list(dict.fromkeys(reasons)),
            "waiting_at": list(dict.fromkeys(waiting))}


def _running(db: Session, case_id: int) -> list[WorkflowInstance]:
    return list(db.scalars(select(WorkflowInstance).where(WorkflowInstance.case_id == case_id,
                                                          WorkflowInstance.status == "running")
                           .order_by(WorkflowInstance.id)))


def _workflow_parts(state: dict, process_id: str, version: CompiledVersion):
    """(label, serialized workflow, that workflow's spec in `version` or None) for the instance
    and each called process inside it."""
    spec, subprocess_specs = version.specs.get(process_id, (None, {}))
    yield process_id, state, spec
    for sub in state.get("subprocesses", {}).values():
        name = sub.get("spec") if isinstance(sub.get("spec"), str) else (sub.get("spec") or {}).get("name")
        yield name, sub, subprocess_specs.get(name) if spec is not None else None


def _instance_reasons(row: WorkflowInstance, old: CompiledVersion, new: CompiledVersion,
                      waiting: list[str]) -> list[str]:
    if row.process_id not in new.specs:
        return [f"version {new.number} has no process {row.process_id!r}"]
    reasons = []
    old_parts = {label: spec for label, _s, spec in _workflow_parts(json.loads(row.state), row.process_id, old)}
    for label, part, new_spec in _workflow_parts(json.loads(row.state), row.process_id, new):
        if new_spec is None:
            reasons.append(f"version {new.number} has no process {label!r}, which the case is running")
            continue
        old_spec = old_parts.get(label)
        for task in _kept_tasks(part).values():
            name, state = task["task_spec"], task["state"]
            old_task_spec = old_spec.task_specs.get(name) if old_spec is not None else None
            bpmn_id = getattr(old_task_spec, "bpmn_id", None) or name
            live = bool(state & LIVE)
            if live and getattr(old_task_spec, "bpmn_id", None):
                waiting.append(bpmn_id)
            new_task_spec = new_spec.task_specs.get(name)
            if new_task_spec is None:
                if live:
                    reasons.append(f"{bpmn_id} ({STATE_NAMES.get(state, 'open')}) is not in version {new.number}")
                elif getattr(old_task_spec, "bpmn_id", None):
                    reasons.append(f"the case has been through {bpmn_id}, which version {new.number} does not have")
                else:
                    reasons.append(f"the case's {label} process has a step {name!r} "
                                   f"that version {new.number} does not have")
                continue
            if live and old_task_spec is not None and type(old_task_spec) is not type(new_task_spec):
                reasons.append(f"{bpmn_id} is a {type(old_task_spec).__name__} in version {old.number} "
                               f"and a {type(new_task_spec).__name__} in version {new.number}")
            if live and getattr(new_task_spec, "manual", False):
                form = new_task_spec.extensions.get("properties", {}).get("formJsonSchemaFilename")
                if form not in new.forms:
                    reasons.append(f"{bpmn_id}: its form {form!r} is not in version {new.number}")
    return reasons


def _kept_tasks(part: dict) -> dict[str, dict]:
    """The serialized tasks that survive a move: all but predicted ones that lead to nothing
    live (those are predicted again from the new diagram)."""
    tasks = part.get("tasks", {})
    drop: set[str] = set()

    def prunable(task_id: str) -> bool:
        task = tasks[task_id]
        return bool(task["state"] & PREDICTED) and not task.get("triggered") \
            and all(prunable(child) for child in task.get("children", []))

    def under_open_task(task: dict) -> bool:  # only those are predicted again
        parent = tasks.get(task.get("parent") or "")
        return parent is not None and bool(parent["state"] & (LIVE | PREDICTED))

    for task_id, task in tasks.items():
        if task_id not in drop and under_open_task(task) and prunable(task_id):
            stack = [task_id]
            while stack:
                current = stack.pop()
                drop.add(current)
                stack.extend(tasks[current].get("children", []))
    return {task_id: task for task_id, task in tasks.items() if task_id not in drop}


def _pruned_state(text: str) -> tuple[str, dict[str, int]]:
    """The saved state without its predicted tasks, and for each open task that lost predicted
    children, the state those children had (MAYBE after a boundary event, FUTURE after a task)."""
    state = json.loads(text)
    lost: dict[str, int] = {}
    for part in [state, *state.get("subprocesses", {}).values()]:
        tasks = part.get("tasks", {})
        kept = _kept_tasks(part)
        for task_id, task in kept.items():
            dropped = [c for c in task.get("children", []) if c not in kept]
            if dropped:
                lost[task_id] = tasks[dropped[0]]["state"]
            task["children"] = [c for c in task.get("children", []) if c in kept]
        part["tasks"] = kept
    return json.dumps(state), lost


def _predict_again(workflow, lost: dict[str, int]) -> None:
    """Predict again, from the new version's specs, what each open task's dropped children were."""
    for part in [workflow, *workflow.subprocesses.values()]:
        for task in list(part.tasks.values()):
            child_state = lost.get(str(task.id))
            if child_state is None or not task.has_state(LIVE):
                continue
            if child_state == TaskState.FUTURE:
                task.task_spec._predict_hook(task)  # what the spec itself does for a task that will run
            else:
                task._sync_children(task.task_spec.outputs, child_state)  # e.g. MAYBE after a boundary event
            for child in task.children:
                if child.has_state(PREDICTED):
                    child.task_spec._predict(child, mask=PREDICTED)


def migrate_cases(service, references: list[str], to_version: int, *, by: str,
                  bundle: str = versions.BUNDLE) -> dict[str, Any]:
    """Move each movable case to `to_version` in one transaction; refuse the others with reasons.

    Returns {"version", "moved": [references], "refused": [{"reference", "reasons"}]}. Every
    move is audited (event `case_migrated`). If anything fails, nothing moves.
    """
    moved: list[str] = []
    refused: list[dict[str, Any]] = []
    with service.transaction() as db:
        new_row = get_version(db, to_version, bundle)
        new = versions.compiled(db, new_row.id)
        for reference in dict.fromkeys(references):
            case = _locked_case(db, reference)
            if case is None:
                refused.append({"reference": reference, "reasons": [f"there is no case {reference}"]})
                continue
            if case.status != "open":
                refused.append({"reference": reference, "reasons": [f"the case is {case.status}"]})
                continue
            if case.process_version_id == new_row.id:
                refused.append({"reference": reference, "reasons": [f"the case is already on version {to_version}"]})
                continue
            old = versions.compiled(db, case.process_version_id)
            verdict = assess(db, case, old, new)
            if not verdict["movable"]:
                refused.append({"reference": reference, "reasons": verdict["reasons"]})
                continue
            _move(db, service, case, new)
            bumped = db.execute(update(Case).where(Case.id == case.id, Case.lock_version == case.lock_version)
                                .values(process_version_id=new_row.id, lock_version=case.lock_version + 1,
                                        updated_at=service.now(), agencies=case.agencies))
            if bumped.rowcount != 1:
                raise Conflict(f"case {reference} was changed by someone else; try again")
            audit.record(db, at=service.now(), actor=by, event="case_migrated", case_id=case.id,
                         stage_before=case.stage, stage_after=case.stage,
                         detail={"bundle": bundle, "from_version": old.number, "to_version": new.number,
                                 "waiting_at": verdict["waiting_at"]})
            moved.append(reference)
    return {"version": to_version, "moved": moved, "refused": refused}


def _locked_case(db: Session, reference: str) -> Case | None:
    query = select(Case).where(Case.reference == reference).execution_options(populate_existing=True)
    if is_postgres(db):
        query = query.with_for_update()
    return db.scalars(query).first()


def _move(db: Session, service, case: Case, new: CompiledVersion) -> None:
    run = CaseRun(db, case, new, service.clock, coordinator_email=service.settings.coordinator_email,
                  service_details=service.settings.service)
    for row in _running(db, case.id):
        pruned, lost = _pruned_state(row.state)
        workflow = new.serializer.loads(pruned, run.script_engine)
        _predict_again(workflow, lost)
        row.state = new.serializer.dumps(workflow)
        row.updated_at = service.now()
        # Ready tasks are described again from the new diagram; who claimed them and since when stays.
        kept = {t.id: (t.assignee, t.created_at) for t in db.scalars(select(HumanTask)
                                                                     .where(HumanTask.instance_id == row.id))}
        db.execute(delete(HumanTask).where(HumanTask.instance_id == row.id))
        for task in workflow.get_tasks(state=TaskState.READY):
            if task.task_spec.manual:
                described = run.describe_task(row, task)
                described.assignee, created = kept.get(described.id, (None, described.created_at))
                described.created_at = created
                db.add(described)
        db.flush()
