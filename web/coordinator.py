"""Coordinator tools: applications taken by phone, withdrawals and escalations on the applicant's
behalf, reassigning tasks, and overdue work across every agency."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from engine import audit
from engine.errors import CaseReviewError, InvalidData
from engine.models import Case, HumanTask, User
from engine.versions import latest_version, compiled

from .auth import roles_required
from .formrender import apply_form_action, error_summary, parse_submission, render_fields

blueprint = Blueprint("coordinator", __name__)


def _service():
    return current_app.extensions["casereview"]


def _application_schema() -> dict:
    with _service().sessions() as db:
        version = latest_version(db)
        return compiled(db, version.id).forms["application.json"]


def _render_application(schema, values, errors, status=200):
    choices = {"reported_to": [("police", "Police"), ("council", "Council"), ("housing", "Housing provider"),
                               ("other", "Someone else")]}
    return render_template("application_by_phone.html", title="Record an application",
                           fields=render_fields(schema, values, errors, choices=choices),
                           error_items=error_summary(errors, schema, choices=choices) if errors else None), status


PREFERRED_DETAIL = {"email": ("email", "email address"), "phone": ("phone", "phone number"),
                    "post": ("address", "postal address")}


def _preferred_detail_errors(data: dict, errors: list[dict]) -> list[dict]:
    """A contact detail missing because it is the applicant's (or the victim's) preferred way
    says so, rather than the general "enter an email address, a phone number or a postal address"."""
    for person in ("applicant", "victim"):
        details = data.get(person) if isinstance(data.get(person), dict) else {}
        detail, words = PREFERRED_DETAIL.get(details.get("preferred_contact"), (None, None))
        message = f"Enter the {person}’s {words}: it is their preferred way to be contacted"
        errors = [{**error, "message": message}
                  if detail and error.get("field") == f"{person}/{detail}" and error.get("message") == "is required"
                  else error for error in errors]
    return errors


@blueprint.route("/cases/new", methods=["GET", "POST"])
@roles_required("coordinator")
def record_application():
    schema = _application_schema()
    if request.method == "GET":
        return _render_application(schema, None, [])
    data, form_action = parse_submission(schema, request.form)
    if form_action:
        return _render_application(schema, apply_form_action(schema, data, form_action), [])
    try:
        result = _service().apply(data, current_user.actor)
    except InvalidData as error:
        return _render_application(schema, data, _preferred_detail_errors(data, error.errors), 422)
    flash(f"Application recorded as {result['reference']}. The acknowledgement letter is on its way.")
    return redirect(url_for("cases.case_page", reference=result["reference"]))


@blueprint.post("/cases/<reference>/withdraw")
@roles_required("coordinator")
def withdraw(reference: str):
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        flash("Say why the applicant is withdrawing: the case was not withdrawn.")
        return redirect(url_for("cases.case_page", reference=reference))
    try:
        _service().withdraw(reference, current_user.actor, reason=f"On the applicant's behalf: {reason}")
    except CaseReviewError as error:
        flash(f"The case was not withdrawn: {error.message}")
    else:
        flash(f"{reference} has been withdrawn.")
    return redirect(url_for("cases.case_page", reference=reference))


@blueprint.post("/cases/<reference>/escalate")
@roles_required("coordinator")
def escalate(reference: str):
    reason = (request.form.get("reason") or "").strip()
    try:
        _service().escalate(reference, reason, current_user.actor)
    except CaseReviewError as error:
        flash(f"The escalation was not recorded: {error.message}")
    else:
        flash(f"The escalation for {reference} has been sent to the reviewer.")
    return redirect(url_for("cases.case_page", reference=reference))


@blueprint.post("/tasks/<task_id>/assign")
@roles_required("coordinator")
def assign(task_id: str):
    service = _service()
    email = (request.form.get("assignee") or "").strip().lower()
    with service.transaction() as db:
        task = db.get(HumanTask, task_id)
        if task is None:
            abort(404, "This task has been completed or does not exist.")
        reference = db.scalar(select(Case.reference).where(Case.id == task.case_id))
        if email:
            user = db.scalar(select(User).where(User.email == email, User.active.is_(True)))
            if user is None or user.role != task.role or (task.role == "partner" and user.agency != task.agency):
                flash(f"{email} cannot do this task: choose someone with the {task.role} role"
                      + (f" at {task.agency}" if task.agency else "") + ".")
                return redirect(url_for("cases.case_page", reference=reference))
        before = task.assignee
        task.assignee = email or None
        audit.record(db, at=service.now(), actor=current_user.email, event="task_reassigned", case_id=task.case_id,
                     detail={"task": task.name, "task_id": task.id, "from": before, "to": task.assignee})
    flash(f"‘{task.title}’ is now with {email}." if email else f"‘{task.title}’ is unassigned.")
    return redirect(url_for("cases.case_page", reference=reference))


@blueprint.get("/overdue")
@roles_required("coordinator")
def overdue():
    service = _service()
    today = service.now().date()
    with service.sessions() as db:
        rows = db.execute(select(HumanTask, Case.reference).join(Case, Case.id == HumanTask.case_id)
                          .where(Case.status == "open", HumanTask.due < today)
                          .order_by(HumanTask.agency, HumanTask.due)).all()
    by_agency: dict[str, list] = {}
    for task, reference in rows:
        by_agency.setdefault(task.agency or task.role, []).append((task, reference, (today - task.due).days))
    return render_template("overdue.html", title="Overdue work", by_agency=by_agency)
