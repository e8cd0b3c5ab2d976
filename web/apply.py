"""The public application: "Apply for an ASB case review" at /apply, without an account.

One question (or small group of questions) per page. Each page is a sub-schema cut from the
published application form (``application.json``), rendered and validated with the same
renderer as every other form, so its errors show on that page. Answers live in the Flask
session under ``apply`` as ``{page: data}`` until "check your answers" submits the whole
application through ``CaseReview.apply`` — validated there against the full, unchanged schema.
"""
from __future__ import annotations

import copy
import re
import time
from collections import defaultdict, deque
from datetime import date

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for

from engine import forms
from engine.errors import InvalidData
from engine.service import APPLICANT
from engine.threshold import incident_problems
from engine.versions import compiled, latest_version

from .formrender import apply_form_action, error_summary, parse_submission, render_fields

blueprint = Blueprint("apply", __name__, url_prefix="/apply")

SESSION_KEY = "apply"
HONEYPOT = "website"
# Per address: at most this many final submissions in the window (one process; a proxy limits the rest).
SUBMISSIONS_PER_WINDOW = 5
WINDOW_SECONDS = 60 * 60

# Each page: its title, the object of application.json its fields come from (None: top level),
# and its fields in order.
PAGES = {
    "who": {"title": "About this application", "parent": "applicant", "fields": ["relationship_to_victim"]},
    "victim": {"title": "About the victim", "parent": "victim", "fields": ["type", "name", "postcode"]},
    "contact": {"title": "Your name and contact details", "parent": "applicant",
                "fields": ["name", "email", "phone", "address", "postcode"],
                "intro": "Give at least one way to contact you: email, phone or a postal address."},
    "consent": {"title": "The victim’s agreement", "parent": "applicant", "fields": ["consent_confirmed"],
                "intro": "You can apply for someone else only if they agree. We will contact them to confirm."},
    "incidents": {"title": "The incidents you reported", "parent": None, "fields": ["incidents"]},
    "impact": {"title": "The impact on the victim", "parent": None, "fields": ["impact"]},
}
CHOICES = {"reported_to": [("police", "Police"), ("council", "Council"), ("housing", "Housing provider"),
                           ("other", "Another organisation")]}
FIELD_PAGE = {("applicant", "relationship_to_victim"): "who", ("applicant", "consent_confirmed"): "consent",
              ("applicant", "name"): "contact", ("applicant", "email"): "contact", ("applicant", "phone"): "contact",
              ("applicant", "address"): "contact", ("applicant", "postcode"): "contact"}


def _service():
    return current_app.extensions["casereview"]


def _application_schema() -> dict:
    with _service().sessions() as db:
        return compiled(db, latest_version(db).id).forms["application.json"]


def page_schema(full: dict, name: str) -> dict:
    """The sub-schema of one page: its fields, their requirements and UI hints, unchanged."""
    spec = PAGES[name]
    parent = full["properties"][spec["parent"]] if spec["parent"] else full
    fields = spec["fields"]
    ui = parent.get("x-ui") or {}
    sub = {
        "type": "object",
        "properties": {f: copy.deepcopy(parent["properties"][f]) for f in fields},
        "required": [f for f in parent.get("required") or [] if f in fields],
        "x-ui": {"order": fields,
                 "widgets": {k: v for k, v in (ui.get("widgets") or {}).items() if k in fields},
                 "labels": {k: v for k, v in (ui.get("labels") or {}).items() if k in fields}},
    }
    groups = [b for b in parent.get("anyOf") or [] if all(r in fields for r in b.get("required") or [])]
    if groups:
        sub["anyOf"] = copy.deepcopy(groups)
    if name == "consent":  # asked only of third parties, for whom the full schema's "then" applies
        sub["required"] = ["consent_confirmed"]
        sub["properties"]["consent_confirmed"]["const"] = True
        sub["x-ui"]["messages"] = {"consent_confirmed": {
            "const": "You can only apply for someone else if they agree – ask them first, or they can apply themselves",
            "required": "Select yes if the victim has agreed to this application"}}
    if name == "who":
        sub["x-ui"]["messages"] = {"relationship_to_victim": {"required": "Select who you are applying for"}}
    return sub


# ----- answers in the session ------------------------------------------------------------

def _answers() -> dict:
    return session.get(SESSION_KEY) or {}


def _save(name: str, data: dict) -> None:
    answers = dict(_answers())
    answers[name] = data
    session[SESSION_KEY] = answers
    session.modified = True


def _third_party(answers: dict | None = None) -> bool:
    answers = _answers() if answers is None else answers
    relationship = (answers.get("who") or {}).get("relationship_to_victim")
    return bool(relationship) and relationship != "self"


def _flow(answers: dict) -> list[str]:
    order = ["who", "victim", "contact", "consent", "incidents", "impact"]
    return [p for p in order if p != "consent" or _third_party(answers)]


def _next_page(name: str, answers: dict) -> str:
    flow = _flow(answers)
    if name in flow and flow.index(name) + 1 < len(flow):
        return url_for("apply.question", name=flow[flow.index(name) + 1])
    return url_for("apply.check")


def _previous_page(name: str, answers: dict) -> str:
    flow = _flow(answers)
    if name in flow and flow.index(name) > 0:
        return url_for("apply.question", name=flow[flow.index(name) - 1])
    return url_for("apply.start")


def application_from(answers: dict) -> dict:
    """The answers as one application of application.json (staff-only received_on left out)."""
    applicant = {**(answers.get("who") or {}), **(answers.get("contact") or {})}
    if _third_party(answers):
        applicant.update(answers.get("consent") or {})
    data = {"applicant": applicant, "victim": dict(answers.get("victim") or {}),
            "incidents": list((answers.get("incidents") or {}).get("incidents") or []),
            "impact": (answers.get("impact") or {}).get("impact")}
    if data["impact"] is None:
        del data["impact"]
    return data


def _honeypot_filled() -> bool:
    return bool((request.form.get(HONEYPOT) or "").strip())


# ----- pages -------------------------------------------------------------------------------

@blueprint.get("")
def start():
    return render_template("apply/start.html", title="Apply for an ASB case review")


def _render_question(name, sub, values, errors, status=200):
    answers = _answers()
    changing = request.args.get("change") == "1"
    back = url_for("apply.check") if changing else _previous_page(name, answers)
    return render_template(
        "apply/question.html", title=PAGES[name]["title"], intro=PAGES[name].get("intro"), name=name,
        back=back, changing=changing, honeypot=HONEYPOT,
        fields=render_fields(sub, values, errors, choices=CHOICES),
        error_items=error_summary(errors, sub, choices=CHOICES) if errors else None), status


def _page_errors(name: str, sub: dict, data: dict) -> list[dict]:
    errors = forms.errors_for(forms.make_validator(sub), data)
    if name == "incidents" and not errors:
        for problem in incident_problems(data.get("incidents") or [], _service().now().date()):
            errors.append(_zero_based(problem))
    return errors


def _zero_based(error: dict) -> dict:
    """incident_problems numbers incidents from 1 ("incidents/1/..., incident 1: ..."); the
    form's field ids count from 0."""
    field, message = str(error.get("field", "")), str(error.get("message", ""))
    match = re.match(r"incidents/(\d+)(/.*)?$", field)
    said = re.match(r"incident (\d+)\b", message)
    if match and said and match.group(1) == said.group(1):
        field = f"incidents/{int(match.group(1)) - 1}{match.group(2) or ''}"
        message = _plain_incident_message(message)
    return {"field": field, "message": message}


def _plain_incident_message(message: str) -> str:
    if "is after the application date" in message:
        return "The date you reported it must be today or in the past"
    if "after" in message and "occurred" in message:
        return "The date it happened must be the same as or before the date you reported it"
    return message


@blueprint.route("/<name>", methods=["GET", "POST"])
def question(name: str):
    if name not in PAGES:
        abort(404)
    if name == "consent" and not _third_party():
        return redirect(url_for("apply.question", name="incidents"))
    sub = page_schema(_application_schema(), name)
    if request.method == "GET":
        return _render_question(name, sub, _answers().get(name), [])
    if _honeypot_filled():
        session["apply_bot"] = True
    data, form_action = parse_submission(sub, request.form)
    if form_action:
        changed = apply_form_action(sub, data, form_action)
        return _render_question(name, sub, changed, [])
    errors = _page_errors(name, sub, data)
    if errors:
        return _render_question(name, sub, data, errors, 422)
    _save(name, data)
    changing = request.args.get("change") == "1"
    if changing and name == "who" and _third_party() and "consent" not in _answers():
        return redirect(url_for("apply.question", name="consent", change="1"))  # now a third party: ask consent
    if changing:
        return redirect(url_for("apply.check"))
    return redirect(_next_page(name, _answers()))


def _threshold_hint(incidents: list) -> dict | None:
    if not incidents:
        return None
    try:
        return _service().threshold_check({"application_date": _service().now().date().isoformat(),
                                           "incidents": incidents})
    except InvalidData:
        return None


def _errors_by_page(errors: list[dict], full: dict) -> list[dict]:
    """Engine errors on the whole application → summary items linking to the page to fix."""
    items = []
    for error in errors:
        parts = str(error.get("field", "")).split("/")
        top = parts[0]
        if top == "applicant" and len(parts) > 1:
            name, rel = FIELD_PAGE.get((top, parts[1]), "contact"), "/".join(parts[1:])
        elif top == "victim":
            name, rel = "victim", "/".join(parts[1:]) or "type"
        elif top == "incidents":
            error = _zero_based(error)
            name, rel = "incidents", error["field"]
        elif top == "impact":
            name, rel = "impact", "impact"
        else:
            items.append({"text": str(error.get("message", ""))})
            continue
        sub = page_schema(full, name)
        for item in error_summary([{"field": rel, "message": error.get("message", "")}], sub, choices=CHOICES):
            href = item.get("href", "")
            item["href"] = url_for("apply.question", name=name, change="1") + href
            if item not in items:
                items.append(item)
    return items


def _render_check(errors=None, status=200):
    answers = _answers()
    full = _application_schema()
    application = application_from(answers)
    hint = _threshold_hint(application["incidents"])
    return render_template(
        "apply/check.html", title="Check your answers before sending your application",
        sections=_sections(answers, _labels(full)), hint=hint, honeypot=HONEYPOT,
        back=url_for("apply.question", name=_flow(answers)[-1]),
        error_items=_errors_by_page(errors, full) if errors else None), status


def _row(key: str, value, page: str, hidden: str | None = None) -> dict:
    text = value if value not in (None, "") else "Not given"
    return {"key": {"text": key}, "value": {"text": str(text)},
            "actions": {"items": [{"href": url_for("apply.question", name=page, change="1"), "text": "Change",
                                   "visuallyHiddenText": (hidden or key).lower()}]}}


def _sections(answers: dict, labels: dict) -> list[dict]:
    """(heading, summary list rows) for every page, with a Change link back to it."""
    who, contact = answers.get("who") or {}, answers.get("contact") or {}
    victim, consent = answers.get("victim") or {}, answers.get("consent") or {}
    relationship = who.get("relationship_to_victim")
    about_you = [_row("Who you are applying for", labels["relationship_to_victim"].get(str(relationship), relationship),
                      "who")]
    if _third_party(answers):
        agreed = consent.get("consent_confirmed")
        about_you.append(_row("The victim agrees", {True: "Yes", False: "No"}.get(agreed), "consent",
                              "whether the victim agrees"))
    about_you += [_row("Your name", contact.get("name"), "contact"),
                  _row("Email address", contact.get("email"), "contact"),
                  _row("Phone number", contact.get("phone"), "contact"),
                  _row("Postal address", contact.get("address"), "contact"),
                  _row("Postcode", contact.get("postcode"), "contact", "your postcode")]
    about_victim = [_row("Who is affected", labels["victim_type"].get(str(victim.get("type")), victim.get("type")),
                         "victim"),
                    _row("Name of the victim", victim.get("name") or ("You" if relationship == "self" else None),
                         "victim"),
                    _row("Postcode where it happens", victim.get("postcode"), "victim")]
    sections = [{"heading": "About you", "rows": about_you}, {"heading": "About the victim", "rows": about_victim}]
    incidents = (answers.get("incidents") or {}).get("incidents") or []
    if not incidents:
        sections.append({"heading": "Incidents", "rows": [_row("Incidents", None, "incidents")]})
    for number, incident in enumerate(incidents, start=1):
        hidden = f"incident {number}"
        sections.append({"heading": f"Incident {number}", "rows": [
            _row("Date it happened", _format_date(incident.get("occurred_on")), "incidents", f"{hidden} date it happened"),
            _row("Date reported", _format_date(incident.get("reported_on")), "incidents", f"{hidden} date reported"),
            _row("Reported to", labels["reported_to"].get(str(incident.get("reported_to")), incident.get("reported_to")),
                 "incidents", f"{hidden} reported to"),
            _row("Their reference", incident.get("reference"), "incidents", f"{hidden} reference"),
            _row("What happened", incident.get("description"), "incidents", f"{hidden} what happened"),
            _row("Motivated by hate", "Yes" if incident.get("hate") is True else "No", "incidents",
                 f"{hidden} motivated by hate"),
        ]})
    sections.append({"heading": "Impact", "rows": [
        _row("How it affects the victim", (answers.get("impact") or {}).get("impact"), "impact")]})
    return sections


def _labels(full: dict) -> dict:
    applicant_ui = full["properties"]["applicant"]["x-ui"]["labels"]
    victim_ui = full["properties"]["victim"]["x-ui"]["labels"]
    return {"relationship_to_victim": applicant_ui["relationship_to_victim"], "victim_type": victim_ui["type"],
            "reported_to": dict(CHOICES["reported_to"])}


def _format_date(value) -> str | None:
    if value in (None, ""):
        return None
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{day.day} {day.strftime('%B %Y')}"


def _too_many_submissions(address: str) -> bool:
    attempts = current_app.extensions.setdefault("apply_submissions", defaultdict(deque))
    window = attempts[address]
    now = time.monotonic()
    while window and now - window[0] > WINDOW_SECONDS:
        window.popleft()
    if len(window) >= SUBMISSIONS_PER_WINDOW:
        return True
    window.append(now)
    return False


@blueprint.route("/check-answers", methods=["GET", "POST"])
def check():
    if request.method == "GET":
        return _render_check()
    if _honeypot_filled() or session.get("apply_bot"):
        session.pop(SESSION_KEY, None)
        session.pop("apply_bot", None)
        session["apply_reference"] = None
        return redirect(url_for("apply.confirmation"))
    if _too_many_submissions(request.remote_addr or "?"):
        abort(429, "There have been too many applications from your connection. Wait an hour and try again,"
                   " or phone us.")
    try:
        result = _service().apply(application_from(_answers()), APPLICANT)
    except InvalidData as error:
        return _render_check(error.errors, 422)
    session.pop(SESSION_KEY, None)
    session["apply_reference"] = result["reference"]
    return redirect(url_for("apply.confirmation"))


@blueprint.get("/confirmation")
def confirmation():
    if "apply_reference" not in session:
        return redirect(url_for("apply.start"))
    return render_template("apply/confirmation.html", title="Application sent",
                           reference=session.get("apply_reference"))
