"""Coordinator tools: applications taken by phone, withdrawals and escalations on the applicant's
behalf, reassigning tasks, and overdue work across every agency."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from engine import audit, policy
from engine.errors import CaseReviewError, InvalidData
from engine.models import Case, HumanTask, User
from engine.service import Actor
from engine.versions import latest_version, compiled

from .auth import roles_required
from .cases import agency_name, remember_agency_names
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


# What each confirmation page asks, says and does; `send` is the service command.
CONFIRMATIONS = {
    "withdraw": {
        "title": "Withdraw the case on the applicant's behalf",
        "lead": "Withdrawing stops the review: every task and reminder on the case ends, and the applicant is "
                "sent a letter saying the case has been withdrawn. It cannot be undone.",
        "label": "Why is the applicant withdrawing?",
        "hint": "Say how the applicant told you, for example by phone on 2 December 2026. This is kept with the case.",
        "missing": "Enter why the applicant is withdrawing",
        "button": "Withdraw the case", "warning": True,
        "done": "{reference} has been withdrawn.",
    },
    "escalate": {
        "title": "Ask for an escalation on the applicant's behalf",
        "lead": "An escalation asks the reviewer to look again at how the review was carried out (not at the "
                "merits of agencies' decisions). The reviewer is given a task and the applicant is sent a letter.",
        "label": "Why does the applicant want an escalation?",
        "hint": "In the applicant's own words where you can. The reviewer reads this in full.",
        "missing": "Enter why the applicant wants an escalation",
        "button": "Ask for the escalation", "warning": False,
        "done": "The escalation for {reference} has been sent to the reviewer.",
    },
}


def _open_case(reference: str) -> Case:
    """The case, which a coordinator sees whatever its agencies; 404 when there is none."""
    with _service().sessions() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        if case is None:
            abort(404, "There is no case with that reference. Check it, or find the case in the case list.")
        db.expunge(case)
        return case


def _confirm(reference: str, kind: str):
    words = CONFIRMATIONS[kind]
    case = _open_case(reference)
    back = url_for("cases.case_page", reference=reference)
    if case.status != "open":
        flash(f"{reference} is {case.status}: it can no longer be changed.")
        return redirect(back)
    reason = (request.form.get("reason") or "").strip()
    error = None
    if request.method == "POST":
        if not reason:
            error = words["missing"]
        else:
            try:
                if kind == "withdraw":
                    _service().withdraw(reference, current_user.actor, reason=f"On the applicant's behalf: {reason}")
                else:
                    _service().escalate(reference, reason, current_user.actor)
            except CaseReviewError as problem:
                error = _sentence(problem.message)
            else:
                flash(words["done"].format(reference=reference))
                return redirect(back)
    return render_template("case_confirm.html", title=words["title"], words=words, case=case, reason=reason,
                           error=error, back=back,
                           error_items=[{"text": error, "href": "#reason"}] if error else None), (422 if error else 200)


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


@blueprint.route("/cases/<reference>/withdraw", methods=["GET", "POST"])
@roles_required("coordinator")
def withdraw(reference: str):
    return _confirm(reference, "withdraw")


@blueprint.route("/cases/<reference>/escalate", methods=["GET", "POST"])
@roles_required("coordinator")
def escalate(reference: str):
    return _confirm(reference, "escalate")


def eligible_users(db, task: HumanTask) -> list[User]:
    """The active staff who may do this task (`policy.may_complete`), by name."""
    candidates = db.scalars(select(User).where(User.active.is_(True), User.role == task.role).order_by(User.name))
    return [user for user in candidates if policy.may_complete(Actor(user.email, user), task)]


@blueprint.route("/tasks/<task_id>/assign", methods=["GET", "POST"])
@roles_required("coordinator")
def assign(task_id: str):
    service = _service()
    error = None
    with service.transaction() as db:
        task = db.get(HumanTask, task_id)
        if task is None or task.role == "applicant":
            abort(404, "This task has been completed or does not exist. The case page lists the tasks waiting now.")
        reference = db.scalar(select(Case.reference).where(Case.id == task.case_id))
        people = eligible_users(db, task)
        remember_agency_names(db)
        chosen = task.assignee or ""
        who_may = (f"an officer of {agency_name(task.agency)}" if task.role == "partner"
                   else f"someone with the {task.role} role")
        if request.method == "POST":
            chosen = (request.form.get("assignee") or "").strip().lower()
            if chosen and chosen not in {user.email for user in people}:
                error = f"Choose a person from the list: only {who_may} may do this task"
            else:
                before = task.assignee
                task.assignee = chosen or None
                audit.record(db, at=service.now(), actor=current_user.email, event="task_reassigned",
                             case_id=task.case_id,
                             detail={"task": task.name, "task_id": task.id, "from": before, "to": task.assignee})
                name = next((user.name for user in people if user.email == chosen), chosen)
                flash(f"‘{task.title}’ is now with {name}." if chosen else f"‘{task.title}’ is unassigned.")
                return redirect(url_for("cases.case_page", reference=reference))
        db.expunge_all()
    return render_template("task_assign.html", title=f"Reassign ‘{task.title}’", task=task, reference=reference,
                           people=people, chosen=chosen, who_may=who_may, error=error,
                           error_items=[{"text": error, "href": "#assignee"}] if error else None), (422 if error else 200)


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
