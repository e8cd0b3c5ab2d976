"""The applicant's private pages: "track your case" at /track/<token>, and a new link at /track.

A link from a letter (engine.applicant_links) opens the case without an account. The pages show
only what the applicant may see of their own case: the stage and what happens next in plain
words, the letters addressed to them, the action plan without officers' names, and the forms
the process offers them (applicant-lane tasks such as the impact statement, withdrawal, an
escalation once a decision is made). Every form goes through the same CaseReview commands as
the CLI, as the APPLICANT actor, so each is validated and audited like any other.

Privacy: pages set `Referrer-Policy: no-referrer` (the token is in the address) and
`Cache-Control: no-store`; tokens are redacted from the web server's and the app's log lines.
"""
from __future__ import annotations

import logging
import re
from datetime import date, datetime

from flask import (Blueprint, abort, current_app, flash, make_response, redirect, render_template, request,
                   url_for)
from sqlalchemy import select

from engine import applicant_links, audit, policy
from engine.applicant_links import LINK_EMAIL, LinkSettings
from engine.errors import CaseReviewError, InvalidData, TaskNotReady
from engine.models import Action, Agency, Case, HumanTask, OutboxMessage, Timer, WorkflowInstance
from engine.service import APPLICANT
from engine.versions import compiled

from .apply import _too_many_submissions
from .documents import APPLICANT_UPLOADER, FormFiles, with_form_errors
from .formrender import apply_form_action, error_summary, parse_submission, render_fields

blueprint = Blueprint("track", __name__, url_prefix="/track")

REASON_LIMIT = 5000
# Where the case is, in the applicant's words (the stage names are the engine's).
STAGE_WORDS = {
    "application": "We have received your application",
    "consent": "Waiting for the victim to agree to the review",
    "incident_history": "Asking the agencies what reports they hold",
    "threshold_decision": "Deciding whether the case meets the threshold for a review",
    "safety_net": "The threshold was not met: agreeing what more can be done",
    "panel": "Arranging the case review panel",
    "action_delivery": "The agencies are carrying out the action plan",
    "follow_up": "Checking with you how things are",
    "closed": "Your case review is closed",
    "withdrawn": "Your application has been withdrawn",
}
# What a waiting step means for the applicant, by the step's id in the diagrams. A step not
# listed here shows as "We are working on your case", so nothing internal ever reaches the page.
STEP_WORDS = {
    "victim_consent": "We are waiting for the victim to tell us whether they agree to the case review.",
    "obtain_consent": "We are asking the victim whether they agree to the case review.",
    "provide_incident_history": "The agencies involved are telling us what reports they hold and what they "
                                "have already done.",
    "verify_incidents": "We are checking the agencies' reports against your application.",
    "confirm_threshold": "We are deciding whether your case meets the threshold for a case review. We will "
                         "write to you with the decision.",
    "safety_net": "We are agreeing with the agencies what more can be done. We will write to you with the "
                  "actions and who is responsible for them.",
    "schedule_panel": "We are arranging the case review panel. We will write to you with the date.",
    "case_summary": "The agencies are preparing their summaries for the panel.",
    "impact_statement": "You can tell the panel how the behaviour affects you and whether you would like to "
                        "attend.",
    "panel_outcome": "The panel is recording its findings and the action plan. We will write to you with them.",
    "deliver_action": "The agencies are carrying out the actions the panel agreed.",
    "chase_action": "We are following up an action that is running late.",
    "follow_up": "We are checking with you how things are since the panel.",
    "decide_escalation": "Someone who was not involved in your case is looking at your escalation. We will "
                         "write to you with their decision.",
    "act_on_escalation": "Your escalation was upheld. We are putting things right and will write to you.",
}
# Timers the applicant should know about; {date} is when it fires. Others (reminders) stay internal.
TIMER_WORDS = {
    "consent_deadline": "If the victim has not told us by {date} that they agree, the application will be "
                        "withdrawn.",
    "obtain_consent_deadline": "If the victim has not told us by {date} that they agree, the application will be "
                               "withdrawn.",
    "impact_deadline": "The panel meets on {date}.",
    "summary_deadline": "The panel meets on {date}.",
    "follow_up_due": "We will contact you around {date} to see how things are.",
}
WORKING_ON_IT = "We are working on your case."


def _service():
    return current_app.extensions["casereview"]


def _link_settings() -> LinkSettings:
    return LinkSettings.of(_service().settings)


def long_date(value: date | datetime | None) -> str:
    return f"{value.day} {value.strftime('%B %Y')}" if value else ""


# ----- privacy: headers and logs ----------------------------------------------------------------

def private_headers(response):
    """The address holds a secret: never send it on as a referrer, never keep the page in a cache."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


blueprint.after_request(private_headers)

_PRIVATE_PATH = re.compile(r"/(track|consent)/[A-Za-z0-9_-]{20,}")


def redact(text: str) -> str:
    return _PRIVATE_PATH.sub(r"/\1/[private link]", text)


class RedactPrivateLinks(logging.Filter):
    """Takes link tokens out of log lines (request lines of werkzeug and waitress, Flask's
    "Exception on /path" messages)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(app) -> None:
    for logger in (logging.getLogger("werkzeug"), logging.getLogger("waitress"), app.logger):
        if not any(isinstance(f, RedactPrivateLinks) for f in logger.filters):
            logger.addFilter(RedactPrivateLinks())


blueprint.record_once(lambda state: install_log_redaction(state.app))


# ----- opening a link ---------------------------------------------------------------------------

def link_problem(title: str, message: str, status: int, *, new_link: bool = True):
    response = make_response(render_template("track/link_problem.html", title=title, message=message,
                                             new_link=new_link), status)
    abort(response)


def _open(db, token: str) -> tuple[applicant_links.ApplicantLink, Case]:
    check = applicant_links.check_link(db, token, _service().now(), applicant_links.TRACK)
    if check.state == "expired":
        link_problem("This link has expired", "Links to your case stop working after a while, to keep your "
                     "case private. You can get a new link sent to your email address.", 404)
    if not check.ok:
        link_problem("This link does not work", "Check that you copied the whole link from our letter or "
                     "email. It may have been replaced by a newer link.", 404)
    return check.link, check.case


def _viewed(db, case: Case, link_id: int, page: str, **detail) -> None:
    audit.record(db, at=_service().now(), actor="applicant", event="case_viewed", case_id=case.id,
                 stage_before=case.stage, stage_after=case.stage, detail={"page": page, "link": link_id, **detail})


# ----- what the page shows ----------------------------------------------------------------------

def next_steps(db, case: Case) -> list[dict]:
    """Plain sentences for the case's waiting steps and the timers the applicant should know about."""
    steps: dict[str, date | None] = {}
    for task in db.scalars(select(HumanTask).where(HumanTask.case_id == case.id)):
        text = STEP_WORDS.get(task.name, WORKING_ON_IT)
        if text not in steps or (task.due and (steps[text] is None or task.due > steps[text])):
            steps[text] = task.due  # several agencies on one step: by when all of them are due
    events = []
    for timer in db.scalars(select(Timer).where(Timer.case_id == case.id).order_by(Timer.due_at)):
        if timer.name in TIMER_WORDS:
            sentence = TIMER_WORDS[timer.name].format(date=long_date(timer.due_at))
            if sentence not in events:
                events.append(sentence)
    ordered = sorted(steps.items(), key=lambda item: (item[1] is None, item[1] or date.max))
    return ([{"text": text, "by": long_date(due) if due else None} for text, due in ordered]
            + [{"text": sentence, "by": None} for sentence in events])


def _applicant_tasks(db, case: Case) -> list[HumanTask]:
    """Forms waiting for the applicant: the tasks the applicant may complete (never the victim's
    consent, which only the link in the victim's own letter answers)."""
    if case.status != "open":
        return []
    tasks = db.scalars(select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.role == "applicant")
                       .order_by(HumanTask.created_at))
    return [task for task in tasks if policy.may_complete(APPLICANT, task)]


def _escalation_running(db, case: Case) -> bool:
    process_id = compiled(db, case.process_version_id).message_starts.get("escalation_requested")
    return process_id is not None and db.scalar(
        select(WorkflowInstance.id).where(WorkflowInstance.case_id == case.id, WorkflowInstance.status == "running",
                                          WorkflowInstance.process_id == process_id).limit(1)) is not None


def may_escalate(db, case: Case) -> bool:
    """The engine takes an escalation once a decision has been made, while the case is open."""
    return case.status == "open" and case.decided_on is not None and not _escalation_running(db, case)


def _letters(db, case: Case) -> list[OutboxMessage]:
    return list(db.scalars(select(OutboxMessage).where(
        OutboxMessage.case_id == case.id, OutboxMessage.recipient_role == "applicant",
        OutboxMessage.template != LINK_EMAIL).order_by(OutboxMessage.created_at, OutboxMessage.id)))


def _actions(db, case: Case) -> list[dict]:
    names = dict(db.execute(select(Agency.code, Agency.name)).all())
    rows = db.scalars(select(Action).where(Action.case_id == case.id).order_by(Action.due, Action.id))
    # No owner and no notes: those are officers' names and staff working notes.
    return [{"description": a.description, "agency": names.get(a.agency, a.agency.capitalize()),
             "due": long_date(a.due), "status": a.status.replace("_", " ").capitalize()} for a in rows]


def paragraphs(body: str) -> list[list[str]]:
    """A plain-text letter as paragraphs of lines, for a readable page."""
    blocks = re.split(r"\n\s*\n", body.strip())
    return [block.split("\n") for block in blocks if block.strip()]


# ----- pages ------------------------------------------------------------------------------------

@blueprint.get("/<token>")
def case_page(token: str):
    with _service().transaction() as db:
        link, case = _open(db, token)
        view = {
            "reference": case.reference, "received_on": long_date(case.received_on), "status": case.status,
            "stage": STAGE_WORDS.get(case.stage, "We are working on your case"),
            "next_steps": next_steps(db, case) if case.status == "open" else [],
            "tasks": [{"id": t.id, "title": t.title, "due": long_date(t.due)} for t in _applicant_tasks(db, case)],
            "may_withdraw": case.status == "open", "may_escalate": may_escalate(db, case),
            "escalation_running": case.status == "open" and _escalation_running(db, case),
            "actions": _actions(db, case),
            "letters": [{"id": m.id, "subject": m.subject, "date": long_date(m.created_at)} for m in _letters(db, case)],
            "link_expires_on": long_date(link.expires_at),
        }
        _viewed(db, case, link.id, "track")
    return render_template("track/case.html", title="Your ASB case review", token=token, view=view)


@blueprint.get("/<token>/letters/<int:message_id>")
def letter(token: str, message_id: int):
    with _service().transaction() as db:
        link, case = _open(db, token)
        message = db.get(OutboxMessage, message_id)
        if (message is None or message.case_id != case.id or message.recipient_role != "applicant"
                or message.template == LINK_EMAIL):
            link_problem("Letter not found", "There is no letter at this address for your case. Go back to your "
                         "case to see the letters we have sent you.", 404, new_link=False)
        shown = {"id": message.id, "subject": message.subject, "date": long_date(message.created_at),
                 "paragraphs": paragraphs(message.body)}
        _viewed(db, case, link.id, "letter", letter=message.id)
    return render_template("track/letter.html", title=shown["subject"], token=token, letter=shown,
                           reference=case.reference)


def _task_for(db, case: Case, task_id: str) -> HumanTask:
    task = db.get(HumanTask, task_id)
    if task is None or task.case_id != case.id or not policy.may_complete(APPLICANT, task):
        link_problem("This form is not available", "It may have been sent already, or the time for it has "
                     "passed. Go back to your case to see what happens next.", 404, new_link=False)
    return task


def _render_task(token, task, schema, values, errors, status=200):
    files = FormFiles(schema, task.case_id, APPLICANT_UPLOADER)  # only the applicant's own files are named
    fields = render_fields(schema, values, errors, files=files.shown(values))
    return render_template("track/task.html", title=task.title, token=token, task=task, schema=schema,
                           due=long_date(task.due), fields=fields,
                           submit=(schema.get("x-ui") or {}).get("submit") or "Send",
                           error_items=error_summary(errors, schema) if errors else None,
                           multipart=files.multipart), status


@blueprint.route("/<token>/tasks/<task_id>", methods=["GET", "POST"])
def task_page(token: str, task_id: str):
    service = _service()
    with service.sessions() as db:
        _link, case = _open(db, token)
        task = _task_for(db, case, task_id)
        schema = compiled(db, case.process_version_id).forms[task.form]
        db.expunge_all()
    if request.method == "GET":
        return _render_task(token, task, schema, None, [])
    data, form_action = parse_submission(schema, request.form)
    upload_errors = FormFiles(schema, task.case_id, APPLICANT_UPLOADER).receive(data)  # stored before completing
    if form_action:
        return _render_task(token, task, schema, apply_form_action(schema, data, form_action), upload_errors,
                            422 if upload_errors else 200)
    if upload_errors:
        return _render_task(token, task, schema, data, with_form_errors(schema, data, upload_errors), 422)
    try:
        service.complete(task_id, APPLICANT, data)  # audited there, actor "applicant"
    except InvalidData as error:
        return _render_task(token, task, schema, data, error.errors, 422)
    except TaskNotReady:
        link_problem("This has already been sent", "This form was sent a moment ago, or the time for it has "
                     "passed. Nothing you entered here was saved. Go back to your case to see what happens next.",
                     409, new_link=False)
    flash(f"Thank you. ‘{task.title}’ is sent.")
    return redirect(url_for("track.case_page", token=token))


def _reason(limit: int) -> tuple[str, list[dict]]:
    reason = (request.form.get("reason") or "").strip()
    if len(reason) > limit:
        return reason, [{"text": f"Your reason must be {limit} characters or fewer", "href": "#reason"}]
    return reason, []


@blueprint.route("/<token>/withdraw", methods=["GET", "POST"])
def withdraw(token: str):
    service = _service()
    with service.sessions() as db:
        _link, case = _open(db, token)
        reference, open_ = case.reference, case.status == "open"
    if not open_:
        return redirect(url_for("track.case_page", token=token))
    if request.method == "GET":
        return render_template("track/withdraw.html", title="Are you sure you want to withdraw your application?",
                               token=token, reason="", errors={})
    reason, errors = _reason(REASON_LIMIT)
    if errors:
        return render_template("track/withdraw.html", title="Are you sure you want to withdraw your application?",
                               token=token, reason=reason, error_items=errors,
                               errors={"reason": errors[0]["text"]}), 422
    try:
        service.withdraw(reference, APPLICANT, reason)  # audited there, actor "applicant"
    except CaseReviewError:  # e.g. the case closed a moment ago
        link_problem("Your application could not be withdrawn", "Your case has just changed. Go back to your "
                     "case to see where it is now.", 409, new_link=False)
    flash("We have withdrawn your application. We have written to you to confirm it.")
    return redirect(url_for("track.case_page", token=token))


@blueprint.route("/<token>/escalate", methods=["GET", "POST"])
def escalate(token: str):
    service = _service()
    with service.sessions() as db:
        _link, case = _open(db, token)
        reference, allowed = case.reference, may_escalate(db, case)
    if not allowed:
        return redirect(url_for("track.case_page", token=token))
    title = "Ask for an escalation"
    if request.method == "GET":
        return render_template("track/escalate.html", title=title, token=token, reason="", errors={})
    reason, errors = _reason(REASON_LIMIT)
    if not reason:
        errors = [{"text": "Tell us why you are asking for an escalation", "href": "#reason"}]
    if errors:
        return render_template("track/escalate.html", title=title, token=token, reason=reason, error_items=errors,
                               errors={"reason": errors[0]["text"]}), 422
    try:
        service.escalate(reference, reason, APPLICANT)  # audited there, actor "applicant"
    except CaseReviewError:  # e.g. the case closed a moment ago
        link_problem("Your request could not be sent", "Your case has just changed. Go back to your case to see "
                     "where it is now.", 409, new_link=False)
    flash("We have received your request for an escalation. We have written to you to confirm it.")
    return redirect(url_for("track.case_page", token=token))


# ----- a new link by email ----------------------------------------------------------------------

@blueprint.route("", methods=["GET", "POST"])
def request_link():
    title = "Get a new link to your case"
    if request.method == "GET":
        return render_template("track/request_link.html", title=title, values={}, errors={})
    values = {"reference": (request.form.get("reference") or "").strip()[:40],
              "email": (request.form.get("email") or "").strip()[:320]}
    errors = {}
    if not values["reference"]:
        errors["reference"] = "Enter your case reference, like ASB-2026-00001"
    if not values["email"]:
        errors["email"] = "Enter the email address you gave us"
    elif "@" not in values["email"] or values["email"].startswith("@") or values["email"].endswith("@"):
        errors["email"] = "Enter an email address in the correct format, like name@example.com"
    if errors:
        items = [{"text": text, "href": f"#{name}"} for name, text in errors.items()]
        return render_template("track/request_link.html", title=title, values=values, errors=errors,
                               error_items=items), 422
    if _too_many_submissions(f"new-link:{request.remote_addr or '?'}"):  # the /apply limiter, its own window
        abort(429, "There have been too many requests from your connection. Wait an hour and try again, "
                   "or contact the coordinator.")
    service = _service()
    with service.transaction() as db:
        applicant_links.resend(db, values["reference"], values["email"], service.now(), _link_settings(),
                               service.settings.service)
    return redirect(url_for("track.link_sent"))  # the same answer whether or not the details matched


@blueprint.get("/sent")
def link_sent():
    return render_template("track/link_sent.html", title="Check your email")
