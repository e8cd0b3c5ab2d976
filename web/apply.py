"""The public application: "Apply for an ASB case review" at /apply, without an account.

One question (or small group of questions) per page. Each page is a sub-schema cut from the
published application form (``application.json``), rendered and validated with the same
renderer as every other form, so its errors show on that page. The answers are one application
of that schema, filled in page by page and kept in the database (``engine.application_drafts``:
the session cookie holds only the draft's key, so a long application fits). Every post is kept,
even one with errors, so nothing typed is lost going back and forth. "Check your answers"
submits the whole application through ``CaseReview.apply``, validated there against the full,
unchanged schema, and deletes the draft.
"""
from __future__ import annotations

import copy
import re
import time
from collections import defaultdict, deque
from datetime import date

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

from engine import application_drafts, forms
from engine.errors import InvalidData
from engine.service import APPLICANT
from engine.threshold import incident_problems
from engine.versions import compiled, latest_version

from .formrender import apply_form_action, error_summary, parse_submission, render_fields

blueprint = Blueprint("apply", __name__, url_prefix="/apply")

DRAFT_KEY = "apply_draft"  # the session holds only this: the key of the draft in the database
HONEYPOT = "website"
# Per address: at most this many final submissions in the window (one process; a proxy limits the rest).
SUBMISSIONS_PER_WINDOW = 5
# Per address: at most this many new drafts in the window, so a robot that drops its cookie on
# every post cannot fill the table (a person needs one).
DRAFTS_PER_WINDOW = 50
WINDOW_SECONDS = 60 * 60
NO_HELP = "none"  # the communication page's "No, I do not need help": never part of the application

# Each page: its title, the object of application.json its fields come from (None: top level),
# and its fields in order.
PAGES = {
    "who": {"title": "About this application", "parent": "applicant", "fields": ["relationship_to_victim"]},
    "victim": {"title": "About the victim", "parent": "victim", "fields": ["type", "name", "postcode"]},
    "contact": {"title": "Your name and contact details", "parent": "applicant",
                "fields": ["name", "email", "phone", "address", "postcode"],
                "intro": "Give at least one way to contact you: email, phone or a postal address."},
    "preferred-contact": {"title": "How we contact you", "parent": "applicant",
                          "fields": ["preferred_contact", "email", "phone", "address"]},
    "communication-needs": {"title": "Help to communicate with us", "parent": "applicant",
                            "fields": ["communication_needs", "interpreter_language", "other_communication_needs"],
                            "intro": "We can write in large print or easy read, use an interpreter or British "
                                     "Sign Language, or help in another way."},
    "consent": {"title": "The victim’s agreement", "parent": "applicant", "fields": ["consent_confirmed"],
                "intro": "You can apply for someone else only if they agree. We will contact them to confirm."},
    "incidents": {"title": "The incidents you reported", "parent": None, "fields": ["incidents"]},
    "impact": {"title": "The impact on the victim", "parent": None, "fields": ["impact"]},
}
ORDER = ["who", "victim", "contact", "preferred-contact", "communication-needs", "consent", "incidents", "impact"]
CHOICES = {"reported_to": [("police", "Police"), ("council", "Council"), ("housing", "Housing provider"),
                           ("other", "Another organisation")]}
# Where an error on the whole application is fixed (the first page asking that field).
FIELD_PAGE = {("applicant", "relationship_to_victim"): "who", ("applicant", "consent_confirmed"): "consent",
              ("applicant", "name"): "contact", ("applicant", "email"): "contact", ("applicant", "phone"): "contact",
              ("applicant", "address"): "contact", ("applicant", "postcode"): "contact",
              ("applicant", "preferred_contact"): "preferred-contact",
              ("applicant", "communication_needs"): "communication-needs",
              ("applicant", "interpreter_language"): "communication-needs",
              ("applicant", "other_communication_needs"): "communication-needs"}
# The contact detail each preferred way needs (application.json's if/then).
PREFERRED_DETAIL = {"email": "email", "phone": "phone", "post": "address"}
DETAIL_MISSING = {"email": "Enter your email address", "phone": "Enter your phone number",
                  "address": "Enter your postal address"}
AUTOCOMPLETE = {"name": "name", "email": "email", "phone": "tel", "address": "street-address",
                "postcode": "postal-code"}


def _service():
    return current_app.extensions["casereview"]


def _application_schema() -> dict:
    with _service().sessions() as db:
        return compiled(db, latest_version(db).id).forms["application.json"]


# ----- each page's schema -----------------------------------------------------------------

def page_schema(full: dict, name: str) -> dict:
    """The sub-schema of one page: its fields, their requirements and UI hints, unchanged except
    where the page asks in the applicant's own words (see the per-page functions)."""
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
                 "labels": {k: copy.deepcopy(v) for k, v in (ui.get("labels") or {}).items() if k in fields},
                 # the applicant's own details only: a victim's name is not the person typing
                 "autocomplete": {k: v for k, v in AUTOCOMPLETE.items()
                                  if k in fields and spec["parent"] == "applicant"}},
    }
    groups = [b for b in parent.get("anyOf") or [] if all(r in fields for r in b.get("required") or [])]
    if groups and name != "preferred-contact":
        sub["anyOf"] = copy.deepcopy(groups)
    rules = [rule for rule in parent.get("allOf") or [] if _concerns_only(rule, fields)]
    if rules:
        sub["allOf"] = copy.deepcopy(rules)
    adjust = {"who": _who_page, "consent": _consent_page, "preferred-contact": _preferred_contact_page,
              "communication-needs": _communication_page}.get(name)
    if adjust:
        adjust(sub)
    return sub


def _concerns_only(rule: dict, fields: list[str]) -> bool:
    """An if/then rule of the full schema whose condition and consequence lie on this page."""
    condition, then = rule.get("if") or {}, rule.get("then") or {}
    named = [*(condition.get("properties") or {}), *(condition.get("required") or []), *(then.get("required") or [])]
    return bool(named) and all(name in fields for name in named)


def _who_page(sub: dict) -> None:
    sub["x-ui"]["messages"] = {"relationship_to_victim": {"required": "Select who you are applying for"}}


def _consent_page(sub: dict) -> None:
    # Asked only of third parties, for whom the full schema's "then" applies.
    sub["required"] = ["consent_confirmed"]
    sub["properties"]["consent_confirmed"]["const"] = True
    sub["x-ui"]["messages"] = {"consent_confirmed": {
        "const": "You can only apply for someone else if they agree – ask them first, or they can apply themselves",
        "required": "Select yes if the victim has agreed to this application"}}


def _preferred_contact_page(sub: dict) -> None:
    """A choice the applicant must make here, with the matching detail revealed under each option
    (GOV.UK's contact preference pattern): the same rule as the full schema, written with
    "const" so the renderer reveals it."""
    props = sub["properties"]
    props["preferred_contact"].update(title="How would you like us to contact you?",
                                      description="We will use this way first for letters and updates.")
    sub["required"] = ["preferred_contact"]
    sub["allOf"] = [{"if": {"properties": {"preferred_contact": {"const": way}}, "required": ["preferred_contact"]},
                     "then": {"required": [detail]}} for way, detail in PREFERRED_DETAIL.items()]
    sub["x-ui"]["messages"] = {
        "preferred_contact": {"required": "Select how you would like us to contact you"},
        **{detail: {"required": text} for detail, text in DETAIL_MISSING.items()}}


def _communication_page(sub: dict) -> None:
    """Every need, or "No, I do not need help" (never both): one of them must be chosen, so the
    question is answered rather than skipped."""
    props = sub["properties"]
    needs = props["communication_needs"]
    needs.update(title="Do you need any help to communicate with us?", description="Select all that apply.",
                 minItems=1)
    needs["items"]["enum"] = [*needs["items"]["enum"], NO_HELP]
    needs["maxItems"] = len(needs["items"]["enum"])
    props["interpreter_language"].update(title="Language", description="For example, Polish or Arabic.")
    props["other_communication_needs"].update(title="What help do you need?",
                                              description="For example, letters read out to you by phone.")
    sub["required"] = ["communication_needs"]
    sub["allOf"] = [*sub.get("allOf", []), {
        "if": {"properties": {"communication_needs": {"contains": {"const": NO_HELP}}},
               "required": ["communication_needs"]},
        "then": {"properties": {"communication_needs": {"maxItems": 1}}}}]
    choose = "Select the help you need, or select ‘No, I do not need help’"
    sub["x-ui"]["messages"] = {
        "communication_needs": {"required": choose, "minItems": choose,
                                "maxItems": "Select the help you need or ‘No, I do not need help’, not both"},
        "interpreter_language": {"required": "Enter the language you need an interpreter for",
                                 "maxLength": "The language must be 100 characters or fewer"},
        "other_communication_needs": {"required": "Describe the help you need",
                                      "maxLength": "Describe the help you need in 1,000 characters or fewer"}}


# ----- the draft: answers kept in the database ---------------------------------------------

def _answers() -> dict:
    """The application as answered so far (one database read per request)."""
    if "apply_answers" not in g:
        g.apply_answers = _load_answers()
    return g.apply_answers


def _load_answers() -> dict:
    key = session.get(DRAFT_KEY)
    if not key:
        return {}
    service = _service()
    with service.transaction() as db:
        draft = application_drafts.load(db, key, service.now())
        answers = copy.deepcopy(draft.answers) if draft is not None else None
    if answers is None:
        session.pop(DRAFT_KEY, None)
        flash("Your answers were deleted because nothing had changed for 24 hours. Please answer the "
              "questions again.")
        return {}
    return answers


def _save(name: str, data: dict) -> None:
    """Put one page's answers into the application: its fields as posted, a field left empty removed."""
    answers = copy.deepcopy(_answers())
    parent = PAGES[name]["parent"]
    holder = answers.setdefault(parent, {}) if parent else answers
    for field in PAGES[name]["fields"]:
        if field in data:
            holder[field] = data[field]
        else:
            holder.pop(field, None)
    key = session.get(DRAFT_KEY)
    if not key:
        if _too_many(request.remote_addr or "?", "apply_drafts", DRAFTS_PER_WINDOW):
            abort(429, "There have been too many applications started from your connection. Wait an hour and "
                       "try again, or phone us.")
        key = session[DRAFT_KEY] = application_drafts.new_key()
    service = _service()
    with service.transaction() as db:
        application_drafts.save(db, key, answers, service.now())
    g.apply_answers = answers


def _discard() -> None:
    key = session.pop(DRAFT_KEY, None)
    if key:
        with _service().transaction() as db:
            application_drafts.discard(db, key)
    g.apply_answers = {}


def page_values(answers: dict, name: str) -> dict:
    spec = PAGES[name]
    holder = (answers.get(spec["parent"]) or {}) if spec["parent"] else answers
    return {f: copy.deepcopy(holder[f]) for f in spec["fields"] if f in holder}


def _third_party(answers: dict | None = None) -> bool:
    answers = _answers() if answers is None else answers
    relationship = (answers.get("applicant") or {}).get("relationship_to_victim")
    return bool(relationship) and relationship != "self"


def _flow(answers: dict) -> list[str]:
    return [p for p in ORDER if p != "consent" or _third_party(answers)]


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
    """The answers as one application of application.json (staff-only received_on left out),
    without answers that no longer apply (the consent of a victim applying for themselves, an
    interpreter's language once the interpreter is unticked)."""
    applicant = copy.deepcopy(answers.get("applicant") or {})
    if not _third_party(answers):
        applicant.pop("consent_confirmed", None)
    if "communication_needs" in applicant:
        needs = applicant["communication_needs"]
        if isinstance(needs, list):
            needs = applicant["communication_needs"] = [n for n in needs if n != NO_HELP]
        if not isinstance(needs, list) or "interpreter" not in needs:
            applicant.pop("interpreter_language", None)
        if not isinstance(needs, list) or "other" not in needs:
            applicant.pop("other_communication_needs", None)
    data = {"applicant": applicant, "victim": copy.deepcopy(answers.get("victim") or {}),
            "incidents": copy.deepcopy(answers.get("incidents") or []), "impact": answers.get("impact")}
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
    error_items = error_summary(errors, sub, choices=CHOICES) if errors else None
    common = dict(title=PAGES[name]["title"], intro=PAGES[name].get("intro"), name=name, back=back,
                  changing=changing, honeypot=HONEYPOT, error_items=error_items)
    if name == "communication-needs":
        return render_template("apply/communication.html", **common,
                               question=_communication_question(sub, values or {}, error_items or [])), status
    return render_template("apply/question.html", fields=render_fields(sub, values, errors, choices=CHOICES),
                           **common), status


def _communication_question(sub: dict, values: dict, error_items: list[dict]) -> dict:
    """What apply/communication.html needs: GOV.UK checkboxes with the language and the other help
    revealed under their options, and an exclusive "No" (the shared renderer reveals fields only
    under radios)."""
    props = sub["properties"]
    labels = sub["x-ui"]["labels"]["communication_needs"]
    errors = {item["href"].lstrip("#"): item["text"] for item in error_items if item.get("href")}
    chosen = values.get("communication_needs") if isinstance(values.get("communication_needs"), list) else []

    def field(name: str) -> dict:
        return {"id": name, "label": props[name]["title"], "hint": props[name].get("description"),
                "value": values.get(name) or "", "error": errors.get(name)}

    return {"legend": props["communication_needs"]["title"], "hint": props["communication_needs"]["description"],
            "error": errors.get("communication_needs"), "chosen": [str(c) for c in chosen],
            "options": [(value, labels.get(value, value)) for value in props["communication_needs"]["items"]["enum"]
                        if value != NO_HELP],
            "no_help": NO_HELP, "reveal": {"interpreter": field("interpreter_language"),
                                           "other": field("other_communication_needs")}}


def _page_errors(name: str, sub: dict, data: dict) -> list[dict]:
    errors = forms.errors_for(forms.make_validator(sub), data)
    if name == "incidents" and not errors:
        for problem in incident_problems(data.get("incidents") or [], _service().now().date()):
            errors.append(_zero_based(problem))
    if name == "contact" and not errors:
        errors = _preferred_detail_errors(data)
    return errors


def _preferred_detail_errors(data: dict) -> list[dict]:
    """The contact page must keep the detail of the way the applicant chose to be contacted."""
    preferred = (_answers().get("applicant") or {}).get("preferred_contact")
    detail = PREFERRED_DETAIL.get(preferred)
    if detail and detail not in data:
        way = {"email": "by email", "phone": "by phone", "post": "by post"}[preferred]
        return [{"field": detail, "message": f"{DETAIL_MISSING[detail]} – you asked us to contact you {way}"}]
    return []


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
        return _render_question(name, sub, page_values(_answers(), name), [])
    if _honeypot_filled():
        session["apply_bot"] = True
    data, form_action = parse_submission(sub, request.form)
    if form_action:
        changed = apply_form_action(sub, data, form_action)
        _save(name, changed)  # an added or removed incident survives going back
        return _render_question(name, sub, changed, [])
    errors = _page_errors(name, sub, data)
    _save(name, data)  # kept even with errors: the page shows them, and going back loses nothing
    if errors:
        return _render_question(name, sub, data, errors, 422)
    changing = request.args.get("change") == "1"
    applicant = _answers().get("applicant") or {}
    if changing and name == "who" and _third_party() and "consent_confirmed" not in applicant:
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


def _errors_by_page(errors: list[dict], full: dict, application: dict) -> list[dict]:
    """Engine errors on the whole application → summary items linking to the page to fix, in
    the order of the pages, each message once a page."""
    items, seen = [], set()
    preferred_detail = PREFERRED_DETAIL.get(application["applicant"].get("preferred_contact"))
    for error in errors:
        parts = str(error.get("field", "")).split("/")
        top = parts[0]
        if top == "applicant" and len(parts) > 1:
            name, rel = FIELD_PAGE.get((top, parts[1]), "contact"), "/".join(parts[1:])
            if parts[1] == preferred_detail:
                name = "preferred-contact"  # missing because of the choice: fixed where it was made
        elif top == "victim":
            name, rel = "victim", "/".join(parts[1:]) or "type"
        elif top == "incidents":
            error = _zero_based(error)
            name, rel = "incidents", error["field"]
        elif top == "impact":
            name, rel = "impact", "impact"
        else:
            items.append((len(ORDER), {"text": str(error.get("message", ""))}))
            continue
        sub = page_schema(full, name)
        for item in error_summary([{"field": rel, "message": error.get("message", "")}], sub, choices=CHOICES):
            if (name, item["text"]) in seen:  # "Enter an email address, a phone number or…" once
                continue
            seen.add((name, item["text"]))
            item["href"] = url_for("apply.question", name=name, change="1") + item.get("href", "")
            items.append((ORDER.index(name), item))
    return [item for _page, item in sorted(items, key=lambda pair: pair[0])]


def _render_check(errors=None, status=200):
    answers = _answers()
    full = _application_schema()
    application = application_from(answers)
    hint = _threshold_hint(application["incidents"])
    return render_template(
        "apply/check.html", title="Check your answers before sending your application",
        sections=_sections(application, _labels(full)), hint=hint, honeypot=HONEYPOT,
        back=url_for("apply.question", name=_flow(answers)[-1]),
        error_items=_errors_by_page(errors, full, application) if errors else None), status


def _row(key: str, value, page: str, hidden: str | None = None) -> dict:
    text = value if value not in (None, "") else "Not given"
    return {"key": {"text": key}, "value": {"text": str(text)},
            "actions": {"items": [{"href": url_for("apply.question", name=page, change="1"), "text": "Change",
                                   "visuallyHiddenText": (hidden or key).lower()}]}}


def _sections(application: dict, labels: dict) -> list[dict]:
    """(heading, summary list rows) of what will be sent, each row with a Change link to its page."""
    applicant, victim = application["applicant"], application["victim"]
    relationship = applicant.get("relationship_to_victim")
    about_you = [_row("Who you are applying for", labels["relationship_to_victim"].get(str(relationship), relationship),
                      "who")]
    if _third_party(application):
        agreed = applicant.get("consent_confirmed")
        about_you.append(_row("The victim agrees", {True: "Yes", False: "No"}.get(agreed), "consent",
                              "whether the victim agrees"))
    about_you += [_row("Your name", applicant.get("name"), "contact"),
                  _row("Email address", applicant.get("email"), "contact"),
                  _row("Phone number", applicant.get("phone"), "contact"),
                  _row("Postal address", applicant.get("address"), "contact"),
                  _row("Postcode", applicant.get("postcode"), "contact", "your postcode"),
                  _row("How we contact you", labels["preferred_contact"].get(str(applicant.get("preferred_contact"))),
                       "preferred-contact", "how we contact you"),
                  _row("Help to communicate", communication_words(applicant, labels["communication_needs"]),
                       "communication-needs", "help to communicate")]
    about_victim = [_row("Who is affected", labels["victim_type"].get(str(victim.get("type")), victim.get("type")),
                         "victim"),
                    _row("Name of the victim", victim.get("name") or ("You" if relationship == "self" else None),
                         "victim"),
                    _row("Postcode where it happens", victim.get("postcode"), "victim")]
    sections = [{"heading": "About you", "rows": about_you}, {"heading": "About the victim", "rows": about_victim}]
    incidents = application["incidents"]
    if not incidents:
        sections.append({"heading": "Incidents", "rows": [_row("Incidents", None, "incidents")]})
    for number, incident in enumerate(incidents, start=1):
        incident = incident if isinstance(incident, dict) else {}
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
        _row("How it affects the victim", application.get("impact"), "impact")]})
    return sections


def communication_words(applicant: dict, labels: dict) -> str | None:
    """"An interpreter (Polish), Large print", "None", or None when the question was not answered."""
    needs = applicant.get("communication_needs")
    if not isinstance(needs, list):
        return None
    if not needs:
        return "None"
    words = []
    for need in needs:
        text = labels.get(str(need), str(need))
        if need == "interpreter" and applicant.get("interpreter_language"):
            text += f" ({applicant['interpreter_language']})"
        if need == "other" and applicant.get("other_communication_needs"):
            text += f": {applicant['other_communication_needs']}"
        words.append(text)
    return ", ".join(words)


def _labels(full: dict) -> dict:
    applicant_ui = full["properties"]["applicant"]["x-ui"]["labels"]
    victim_ui = full["properties"]["victim"]["x-ui"]["labels"]
    return {"relationship_to_victim": applicant_ui["relationship_to_victim"], "victim_type": victim_ui["type"],
            "reported_to": dict(CHOICES["reported_to"]),
            "preferred_contact": applicant_ui.get("preferred_contact") or {},
            "communication_needs": applicant_ui.get("communication_needs") or {}}


def _format_date(value) -> str | None:
    if value in (None, ""):
        return None
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{day.day} {day.strftime('%B %Y')}"


def _too_many_submissions(address: str) -> bool:
    return _too_many(address, "apply_submissions", SUBMISSIONS_PER_WINDOW)


def _too_many(address: str, kind: str, limit: int) -> bool:
    """True once `address` has done `kind` `limit` times in the last hour (else counts this one)."""
    attempts = current_app.extensions.setdefault(kind, defaultdict(deque))
    window = attempts[address]
    now = time.monotonic()
    while window and now - window[0] > WINDOW_SECONDS:
        window.popleft()
    if len(window) >= limit:
        return True
    window.append(now)
    return False


@blueprint.route("/check-answers", methods=["GET", "POST"])
def check():
    if request.method == "GET":
        return _render_check()
    if _honeypot_filled() or session.get("apply_bot"):
        _discard()
        session.pop("apply_bot", None)
        session["apply_reference"] = None
        return redirect(url_for("apply.confirmation"))
    if not _answers() and session.get("apply_reference"):
        return redirect(url_for("apply.confirmation"))  # pressed twice: the first press sent it
    if _too_many_submissions(request.remote_addr or "?"):
        abort(429, "There have been too many applications from your connection. Wait an hour and try again,"
                   " or phone us.")
    try:
        result = _service().apply(application_from(_answers()), APPLICANT)
    except InvalidData as error:
        return _render_check(error.errors, 422)
    _discard()
    session["apply_reference"] = result["reference"]
    return redirect(url_for("apply.confirmation"))


@blueprint.get("/confirmation")
def confirmation():
    if "apply_reference" not in session:
        return redirect(url_for("apply.start"))
    reference = session.get("apply_reference")
    return render_template("apply/confirmation.html", title="Application sent", reference=reference,
                           next_steps=_first_steps(reference) if reference else [])


def _first_steps(reference: str) -> list[dict]:
    """What the new case waits for and by when, read from its ready tasks and timers (their due
    dates are the process diagram's), in the words of the tracking page."""
    from sqlalchemy import select

    from engine.models import Case

    from .track import next_steps  # the tracking page imports this module

    with _service().sessions() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        return next_steps(db, case) if case is not None and case.status == "open" else []
