"""Read models for the CLI, the web app and the API: built from the derived tables only."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, load_only

from . import policy
from .errors import NotFound
from .models import Action, AuditEvent, Case, CaseAgency, HumanTask, OutboxMessage
from .versions import compiled


def task_view(db: Session, task: HumanTask, reference: str) -> dict[str, Any]:
    case = db.get(Case, task.case_id)
    return {
        "id": task.id,
        "case": reference,
        "name": task.name,
        "title": task.title,
        "role": task.role,
        "agency": task.agency,
        "due": task.due.isoformat() if task.due else None,
        "schema": compiled(db, case.process_version_id).forms[task.form],
    }


def ready_tasks(db: Session, *, reference: str | None = None, actor=None) -> list[dict[str, Any]]:
    query = select(HumanTask, Case.reference).join(Case, Case.id == HumanTask.case_id).where(Case.status == "open")
    if reference:
        query = query.where(Case.reference == reference)
    if actor is not None and not actor.is_applicant:
        user = actor.user
        if user is None or not user.active:
            return []
        query = query.where(HumanTask.role == user.role)
        if user.role == "partner":
            query = query.where(HumanTask.agency == user.agency)
    elif actor is not None:
        query = query.where(HumanTask.role == "applicant")
    query = query.order_by(HumanTask.due.is_(None), HumanTask.due, Case.reference, HumanTask.created_at)
    rows = db.execute(query).all()
    return [task_view(db, task, ref) for task, ref in rows if actor is None or policy.may_complete(actor, task)]


def case_view(db: Session, reference: str) -> dict[str, Any]:
    """A case as staff and the CLI read it. The history leaves out `case_viewed` rows (one per page
    view, so they grow without end) and summarises them under "views" instead."""
    case = db.scalar(select(Case).where(Case.reference == reference))
    if case is None:
        raise NotFound(f"there is no case {reference}")
    actions = db.scalars(select(Action).where(Action.case_id == case.id).order_by(Action.due, Action.id))
    history = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id, AuditEvent.event != "case_viewed")
                         .order_by(AuditEvent.id))
    views, last_view = db.execute(select(func.count(), func.max(AuditEvent.at))
                                  .where(AuditEvent.case_id == case.id, AuditEvent.event == "case_viewed")).one()
    letters = db.scalars(select(OutboxMessage).options(load_only(
        OutboxMessage.id, OutboxMessage.template, OutboxMessage.recipient_role, OutboxMessage.subject,
        OutboxMessage.created_at, OutboxMessage.sent_at, OutboxMessage.failed_at, OutboxMessage.attempts,
        OutboxMessage.last_error)).where(OutboxMessage.case_id == case.id).order_by(OutboxMessage.id))
    return {
        "reference": case.reference,
        "status": case.status,
        "stage": case.stage,
        "route": case.route,
        "received_on": case.received_on.isoformat(),
        "decided_on": case.decided_on.isoformat() if case.decided_on else None,
        "agencies": case.agencies,
        "threshold": case.threshold,
        "actions": [
            {"id": a.id, "description": a.description, "agency": a.agency, "owner": a.owner,
             "due": a.due.isoformat() if a.due else None, "status": a.status, "last_note": a.last_note}
            for a in actions
        ],
        "letters": [
            {"id": m.id, "template": m.template, "to": m.recipient_role, "subject": m.subject,
             "created_at": m.created_at.isoformat(), "sent": m.sent_at is not None,
             "failed": m.failed_at is not None, "attempts": m.attempts, "last_error": m.last_error}
            for m in letters
        ],
        "history": [
            {"at": e.at.isoformat(), "actor": e.actor, "event": e.event, "stage_before": e.stage_before,
             "stage_after": e.stage_after, **{k: v for k, v in (e.detail or {}).items() if k not in ("at", "actor", "event")}}
            for e in history
        ],
        "views": {"count": views, "last_at": last_view.isoformat() if last_view else None},
    }


INBOX_SORTS = {"due": "due", "case": "case", "task": "task"}


COUNT_CAP = 1000  # the inbox counts up to this many tasks ("1,000+ tasks") ...
MAX_PAGES = 40  # ... and pages through at most this many pages; filters narrow a longer list


def inbox(db: Session, user, *, today, stage: str | None = None, agency: str | None = None,
          overdue: bool = False, sort: str = "due", page: int = 1, per_page: int = 25) -> dict[str, Any]:
    """The ready tasks one staff user may complete, filtered, sorted and paginated.

    Kept fast at a million task rows (docs/performance-pages.md): the count stops at COUNT_CAP + 1
    and reads human_task alone unless a filter needs the case (a closed case has no ready tasks);
    the due order breaks ties on case_id so the (role[, agency], due IS NULL, due, case_id, id)
    index delivers rows already sorted."""
    conditions = [HumanTask.role == user.role]
    case_conditions = []
    if user.role == "partner":
        conditions.append(HumanTask.agency == user.agency)
    elif agency:
        # Other roles' tasks carry no agency: the filter means "cases this agency is involved in".
        conditions.append(HumanTask.case_id.in_(select(CaseAgency.case_id).where(CaseAgency.agency == agency)))
    if overdue:
        conditions.append(HumanTask.due < today)
    if stage:
        case_conditions.append(Case.stage == stage)
    counted = select(HumanTask.id).where(*conditions)
    if case_conditions:
        counted = counted.join(Case, Case.id == HumanTask.case_id).where(Case.status == "open", *case_conditions)
    total = db.scalar(select(func.count()).select_from(counted.limit(COUNT_CAP + 1).subquery()))
    query = (select(HumanTask, Case.reference, Case.stage).join(Case, Case.id == HumanTask.case_id)
             .where(Case.status == "open", *conditions, *case_conditions))
    order = {
        "due": (HumanTask.due.is_(None), HumanTask.due, HumanTask.case_id, HumanTask.id),
        "case": (Case.reference, HumanTask.due, HumanTask.id),
        "task": (HumanTask.title, HumanTask.due, HumanTask.id),
    }[INBOX_SORTS.get(sort, "due")]
    pages = min(MAX_PAGES, max(1, -(-min(total, COUNT_CAP) // per_page)))
    page = min(max(1, page), pages)
    rows = db.execute(query.order_by(*order).offset((page - 1) * per_page).limit(per_page)).all()
    items = []
    for task, reference, case_stage in rows:
        items.append({
            "id": task.id, "case": reference, "stage": case_stage, "title": task.title, "name": task.name,
            "agency": task.agency, "due": task.due, "assignee": task.assignee,
            "overdue": bool(task.due and task.due < today),
            "due_soon": bool(task.due and today <= task.due and (task.due - today).days <= 3),
        })
    return {"items": items, "total": min(total, COUNT_CAP), "more": total > COUNT_CAP, "page": page,
            "pages": pages, "per_page": per_page}


CASE_SORTS = ("received", "reference", "due", "stage")
CASES_PER_PAGE = 25


def case_list(db: Session, user, *, today, text: str = "", status: str = "", stage: str = "", overdue: bool = False,
              agency: str | None = None, sort: str = "received", page: int = 1,
              per_page: int | None = None) -> dict[str, Any]:
    """The cases one staff user may see, filtered, sorted and paged, each with its next due date.

    Who sees what is `policy.may_view_case`, written here as SQL so paging stays right: a partner
    officer's cases are those on their agency's `case_agency` rows (an index lookup); every row is
    checked against the policy again before it is shown. The count stops at COUNT_CAP + 1, as the
    inbox's does, and paging stops at MAX_PAGES. No applicant's contact details are read."""
    from sqlalchemy import exists, or_

    per_page = per_page or CASES_PER_PAGE
    empty = {"items": [], "total": 0, "more": False, "page": 1, "pages": 1, "per_page": per_page}
    if user.role not in policy.CASE_WIDE_ROLES and user.role != "partner":
        return empty
    conditions = []
    if user.role == "partner":
        if not user.agency:
            return empty
        conditions.append(Case.id.in_(select(CaseAgency.case_id).where(CaseAgency.agency == user.agency)))
    if agency:
        conditions.append(Case.id.in_(select(CaseAgency.case_id).where(CaseAgency.agency == agency)))
    words = (text or "").strip()
    if words:
        pattern = f"%{words.lower()}%"
        compact = words.replace(" ", "").upper()
        searched = [func.lower(Case.reference).like(pattern), func.lower(Case.victim_name).like(pattern),
                    func.replace(Case.postcode, " ", "").like(f"%{compact}%")]
        if policy.sees_personal_details(user):  # partners never see who applied, so cannot search by it
            searched.append(func.lower(Case.applicant_name).like(pattern))
        conditions.append(or_(*searched))
    if status:
        conditions.append(Case.status == status)
    if stage:
        conditions.append(Case.stage == stage)
    if overdue:
        # Only open cases have ready tasks; the task's case_id index answers the rest.
        conditions += [Case.status == "open",
                       exists(select(HumanTask.id).where(HumanTask.case_id == Case.id, HumanTask.due < today))]
    total = db.scalar(select(func.count()).select_from(
        select(Case.id).where(*conditions).limit(COUNT_CAP + 1).subquery()))
    next_due = (select(func.min(HumanTask.due)).where(HumanTask.case_id == Case.id)
                .correlate(Case).scalar_subquery())
    order = {
        "received": (Case.received_on.desc(), Case.id.desc()),
        "reference": (Case.reference,),
        "due": (next_due.is_(None), next_due, Case.id),
        "stage": (Case.stage, Case.received_on.desc(), Case.id.desc()),
    }[sort if sort in CASE_SORTS else "received"]
    pages = min(MAX_PAGES, max(1, -(-min(total, COUNT_CAP) // per_page)))
    page = min(max(1, page), pages)
    rows = db.execute(select(Case.reference, Case.victim_name, Case.postcode, Case.status, Case.stage,
                             Case.received_on, Case.agencies, next_due.label("next_due"))
                      .where(*conditions).order_by(*order).offset((page - 1) * per_page).limit(per_page)).all()
    items = [{"reference": row.reference, "victim_name": row.victim_name, "postcode": row.postcode,
              "status": row.status, "stage": row.stage, "received_on": row.received_on, "next_due": row.next_due,
              "overdue": bool(row.status == "open" and row.next_due and row.next_due < today)}
             for row in rows if policy.may_view_case(user, row)]
    return {"items": items, "total": min(total, COUNT_CAP), "more": total > COUNT_CAP, "page": page,
            "pages": pages, "per_page": per_page}


def case_processes(db: Session, case: Case) -> list[dict[str, str]]:
    """The processes the case has run, in the order each first started (the application's own
    first): id, name (the diagram's process name) and the bundle file that draws it."""
    from .models import WorkflowInstance

    version = compiled(db, case.process_version_id)
    started = db.execute(select(WorkflowInstance.process_id, func.min(WorkflowInstance.id).label("first"))
                         .where(WorkflowInstance.case_id == case.id)
                         .group_by(WorkflowInstance.process_id).order_by("first")).all()
    found = []
    for process_id, _first in started:
        spec = version.specs.get(process_id, (None,))[0]
        if spec is not None and getattr(spec, "file", None):
            found.append({"id": process_id, "name": spec.description or process_id, "file": spec.file})
    return found


def diagram_state(db: Session, case: Case, process_id: str) -> dict[str, Any]:
    """One process of the case with the steps done and the steps waiting, over every instance of
    it (an action plan runs one action-delivery instance per action and update)."""
    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
    from SpiffWorkflow.util.task import TaskState

    from .models import WorkflowInstance

    version = compiled(db, case.process_version_id)
    rows = db.scalars(select(WorkflowInstance).where(WorkflowInstance.case_id == case.id,
                                                     WorkflowInstance.process_id == process_id))
    done, current = set(), set()
    for row in rows:
        workflow = version.serializer.loads(row.state, PythonScriptEngine())
        for task in workflow.get_tasks():
            bpmn_id = getattr(task.task_spec, "bpmn_id", None)
            if not bpmn_id:
                continue
            if task.state == TaskState.COMPLETED:
                done.add(bpmn_id)
            elif task.state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED):
                current.add(bpmn_id)
    return {"completed": sorted(done - current), "current": sorted(current)}
