"""The inbox and task pages: each person sees and completes only the tasks they may do."""
from __future__ import annotations

import functools

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from engine import policy
from engine.errors import InvalidData, NotAllowed, TaskNotReady
from engine.evidence import context_items, prefill_paths, task_context, task_data, task_prefill
from engine.linked import linked_cases
from engine.models import Agency, Case, HumanTask
from engine.queries import inbox as inbox_query
from engine.versions import compiled

from .auth import roles_required
from .cases import STAGE_WORDS
from .documents import FormFiles, staff_uploader, with_form_errors
from .formrender import apply_form_action, error_summary, parse_submission, render_fields
from .timeline import timeline_entries

blueprint = Blueprint("tasks", __name__)
WORKING_ROLES = ("coordinator", "partner", "chair", "reviewer")
STAGES = ("application", "consent", "incident_history", "threshold_decision", "safety_net", "panel",
          "action_delivery", "follow_up")


def _service():
    return current_app.extensions["casereview"]


@blueprint.get("/tasks")
@roles_required(*WORKING_ROLES)
def inbox():
    service = _service()
    args = request.args
    page = args.get("page", "1")
    filters = {
        "stage": args.get("stage") if args.get("stage") in STAGES else None,
        "agency": args.get("agency") or None,
        "overdue": args.get("overdue") == "yes",
        "sort": args.get("sort", "due"),
        "page": int(page) if page.isdigit() else 1,
    }
    with service.sessions() as db:
        result = inbox_query(db, current_user, today=service.now().date(), **filters)
        agencies = list(db.execute(select(Agency.code, Agency.name).order_by(Agency.name)))
    return render_template("inbox.html", title="Your tasks", result=result, filters=filters, stages=STAGES,
                           agencies=agencies)


def _load_task(db, task_id: str) -> tuple[HumanTask, Case]:
    task = db.get(HumanTask, task_id)
    if task is None:
        abort(404, "This task has been completed or does not exist.")
    case = db.get(Case, task.case_id)
    if not policy.may_view_case(current_user, case):
        abort(404, "This task has been completed or does not exist.")
    if not policy.may_complete(current_user.actor, task):
        abort(403, "This task is for someone else.")
    return task, case


def _choices(db) -> dict[str, list[tuple[str, str]]]:
    """The named option lists a form field may offer (`x-ui.options`)."""
    agencies = [(code, name) for code, name in db.execute(select(Agency.code, Agency.name).order_by(Agency.name))]
    return {"agencies": agencies}


SUBMIT_DEFAULT = "Complete the task"


def submit_label(schema: dict) -> str:
    """What the form's button says (`x-ui.submit`), or a plain default."""
    label = (schema.get("x-ui") or {}).get("submit")
    return label.strip() if isinstance(label, str) and label.strip() else SUBMIT_DEFAULT


def _render(task, case, schema, values, errors, choices, status=200, *, beside=None, new=None):
    """`beside` reads what the page shows next to the form; called only when a page is rendered
    (a successful completion redirects without it)."""
    files = FormFiles(schema, case.id, staff_uploader(current_user))
    fields = render_fields(schema, values, errors, choices=choices, files=files.shown(values), new=new)
    return render_template("task.html", title=task.title, task=task, case=case, schema=schema, fields=fields,
                           error_items=error_summary(errors, schema, choices=choices) if errors else None,
                           personal=policy.sees_personal_details(current_user), multipart=files.multipart,
                           submit=submit_label(schema),
                           **(beside() if beside else {})), status


def _beside_the_form(db, task, case, schema, data=None) -> dict:
    """What the page shows next to the form: the case data the form names (x-ui.context) and, for
    coordinators, earlier cases linked to this one."""
    context = task_context(db, task, schema, current_user, today=_service().now().date(), data=data)
    for item in context:
        if item["kind"] == "timeline":
            item["entries"] = timeline_entries(item.pop("history"), STAGE_WORDS)
    return {"context": context, "stage_words": STAGE_WORDS,
            "agency_names": dict(db.execute(select(Agency.code, Agency.name)).all()),
            "linked": linked_cases(db, case) if current_user.role == "coordinator" else None}


@blueprint.route("/tasks/<task_id>", methods=["GET", "POST"])
@roles_required(*WORKING_ROLES)
def task_page(task_id: str):
    service = _service()
    with service.sessions() as db:
        task, case = _load_task(db, task_id)
        schema = compiled(db, case.process_version_id).forms[task.form]
        choices = _choices(db)
        # A new page reads the task's data once for what it starts with and what it shows beside it.
        data = (task_data(db, task) if request.method == "GET" and (prefill_paths(schema) or context_items(schema))
                else None)
        prefill = task_prefill(db, task, schema, current_user, data=data) if request.method == "GET" else None
        db.expunge_all()

    def beside() -> dict:
        with service.sessions() as db:
            return _beside_the_form(db, task, case, schema, data)

    render = functools.partial(_render, beside=beside)
    if request.method == "GET":
        # a new form shows what it declares it starts with (x-ui.prefill), then the schema's defaults
        return render(task, case, schema, prefill, [], choices, new=True)
    data, form_action = parse_submission(schema, request.form)
    upload_errors = FormFiles(schema, case.id, staff_uploader(current_user)).receive(data)  # stored before completing
    if form_action:
        return render(task, case, schema, apply_form_action(schema, data, form_action), upload_errors, choices,
                       422 if upload_errors else 200)
    if upload_errors:
        return render(task, case, schema, data, with_form_errors(schema, data, upload_errors), choices, 422)
    try:
        service.complete(task_id, current_user.actor, data)
    except InvalidData as error:
        return render(task, case, schema, data, error.errors, choices, 422)
    except TaskNotReady:
        return render_template("error.html", title="This task has already been completed",
                               description="Someone else completed this task a moment ago. Nothing you entered "
                                           "was saved. Check the case to see what happens next."), 409
    except NotAllowed as error:
        abort(403, error.message)
    flash(f"‘{task.title}’ is done for {case.reference}.")
    if policy.may_view_case(current_user, case):
        return redirect(url_for("cases.case_page", reference=case.reference))
    return redirect(url_for("tasks.inbox"))


@blueprint.post("/tasks/<task_id>/claim")
@roles_required(*WORKING_ROLES)
def claim(task_id: str):
    service = _service()
    release = request.form.get("release") == "yes"
    with service.transaction() as db:
        task, _case = _load_task(db, task_id)
        if release:
            if task.assignee == current_user.email:
                task.assignee = None
        elif task.assignee in (None, current_user.email):
            task.assignee = current_user.email
        else:
            flash(f"{task.assignee} is already working on this task.")
    return redirect(request.form.get("back") if (request.form.get("back") or "").startswith("/tasks")
                    else url_for("tasks.inbox"))
