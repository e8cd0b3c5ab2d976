"""Read models for the CLI, the web app and the API: built from the derived tables only."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import policy
from .errors import NotFound
from .models import Action, AuditEvent, Case, HumanTask, OutboxMessage
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
    case = db.scalar(select(Case).where(Case.reference == reference))
    if case is None:
        raise NotFound(f"there is no case {reference}")
    actions = db.scalars(select(Action).where(Action.case_id == case.id).order_by(Action.due, Action.id))
    history = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id))
    letters = db.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id).order_by(OutboxMessage.id))
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
            {"template": m.template, "to": m.recipient_role, "subject": m.subject,
             "created_at": m.created_at.isoformat(), "sent": m.sent_at is not None}
            for m in letters
        ],
        "history": [
            {"at": e.at.isoformat(), "actor": e.actor, "event": e.event, "stage_before": e.stage_before,
             "stage_after": e.stage_after, **{k: v for k, v in (e.detail or {}).items() if k not in ("at", "actor", "event")}}
            for e in history
        ],
    }
