"""The victim's answer to a third-party application, by the private link in the consent letter.

The page says who applied on the victim's behalf and about what, in plain words and with no
other personal data (no contact details, no incident descriptions), and completes the consent
task through the same command as every other completion, as the VICTIM actor: the victim's lane
is answered only by this link (engine.policy), which only ever goes in a letter to the victim,
never by the applicant's tracking link or `--applicant`. The form is the version's own, worded
for the victim. A link works once, until the
consent deadline; when it passes unanswered the engine's timer withdraws the application.
"""
from __future__ import annotations

import copy

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from engine import applicant_links, audit
from engine.errors import InvalidData, TaskNotReady
from engine.service import VICTIM
from engine.versions import compiled

from .formrender import error_summary, parse_submission, render_fields
from .track import link_problem, long_date, private_headers

blueprint = Blueprint("consent", __name__, url_prefix="/consent")
blueprint.after_request(private_headers)

ANSWER_KEY = "consent_answer"
RELATIONSHIP = {"family": "a member of your family", "friend": "your friend", "carer": "your carer",
                "councillor": "your local councillor", "mp": "your MP", "other": "someone who knows you"}
REPORTED_TO = {"police": "the police", "council": "the council", "housing": "a housing provider",
               "other": "another organisation"}


def _service():
    return current_app.extensions["casereview"]


def in_victims_words(schema: dict) -> dict:
    """The consent form is written for staff recording an answer; the victim answers for themselves."""
    schema = copy.deepcopy(schema)
    fields = schema.get("properties", {})
    if "consent" in fields:
        fields["consent"]["title"] = "Do you agree to the case review going ahead?"
        fields["consent"]["description"] = ("If you do not agree, the application is withdrawn and we tell the "
                                            "person who applied.")
        ui = schema.setdefault("x-ui", {})
        ui.setdefault("labels", {})["consent"] = {"given": "Yes, I agree", "declined": "No, I do not agree"}
        ui.setdefault("messages", {})["consent"] = {
            "required": "Select yes if you agree to the case review, or no if you do not"}
    if "consent_notes" in fields:
        fields["consent_notes"]["title"] = "Anything you would like to tell us"  # the renderer adds "(optional)"
        fields["consent_notes"]["description"] = "For example, the best way and time to contact you."
    schema.pop("title", None)
    schema.pop("description", None)
    return schema


def what_was_applied_for(case) -> dict:
    """Who applied and about what, without anyone's contact details or the incidents' descriptions."""
    application = case.application or {}
    applicant = application.get("applicant") or {}
    incidents = application.get("incidents") or []
    reported = sorted(i.get("reported_on") for i in incidents if i.get("reported_on"))
    agencies = []
    for incident in incidents:
        words = REPORTED_TO.get(incident.get("reported_to"))
        if words and words not in agencies:
            agencies.append(words)
    return {
        "applicant": case.applicant_name,
        "relationship": RELATIONSHIP.get(applicant.get("relationship_to_victim"), "someone who knows you"),
        "incidents": len(incidents),
        "first": long_date(_as_date(reported[0])) if reported else "",
        "last": long_date(_as_date(reported[-1])) if reported else "",
        "agencies": " and ".join([", ".join(agencies[:-1]), agencies[-1]] if len(agencies) > 1 else agencies),
    }


def _as_date(value: str):
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _open(db, token: str):
    check = applicant_links.check_link(db, token, _service().now(), applicant_links.CONSENT)
    if check.state == "used":
        link_problem("You have already answered", "Thank you: we have your answer. This link cannot be used "
                     "again.", 410, new_link=False)
    if check.state == "expired":
        link_problem("This link has expired", "The time to answer has passed, or the application has been "
                     "closed. If you would like a case review, you can apply yourself at any time.", 410,
                     new_link=False)
    if not check.ok:
        link_problem("This link does not work", "Check that you copied the whole link from our letter.", 404,
                     new_link=False)
    return check.link, check.case


def _render(token, about, deadline, schema, values, errors, status=200):
    return render_template("track/consent.html", title="Do you agree to an ASB case review?", token=token,
                           about=about, deadline=deadline, fields=render_fields(schema, values, errors),
                           error_items=error_summary(errors, schema) if errors else None), status


@blueprint.route("/<token>", methods=["GET", "POST"])
def answer(token: str):
    service = _service()
    with service.transaction() as db:
        link, case = _open(db, token)
        task = applicant_links.consent_task(db, case)
        schema = in_victims_words(compiled(db, case.process_version_id).forms[task.form])
        about, deadline, link_id, task_id = what_was_applied_for(case), long_date(link.expires_at), link.id, task.id
        if request.method == "GET":
            audit.record(db, at=service.now(), actor=VICTIM.name, event="case_viewed", case_id=case.id,
                         stage_before=case.stage, stage_after=case.stage, detail={"page": "consent", "link": link.id})
    if request.method == "GET":
        return _render(token, about, deadline, schema, None, [])
    data, _action = parse_submission(schema, request.form)
    try:
        service.complete(task_id, VICTIM, data)  # audited there, actor "victim"
    except InvalidData as error:
        return _render(token, about, deadline, schema, data, error.errors, 422)
    except TaskNotReady:
        link_problem("You have already answered", "We already have an answer, or the time to answer has passed. "
                     "Nothing you entered here was saved.", 410, new_link=False)
    with service.transaction() as db:
        applicant_links.mark_used(db, link_id, service.now())
    session[ANSWER_KEY] = data.get("consent")
    return redirect(url_for("consent.answered"))


@blueprint.get("/answered")
def answered():
    answer_given = session.get(ANSWER_KEY)
    if answer_given not in ("given", "declined"):
        return redirect("/")
    return render_template("track/consent_answered.html", title="Thank you for your answer", answer=answer_given)
