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

# Each page: its title (the question the page asks: GOV.UK makes it the h1), the object of
# application.json its fields come from (None: top level), its fields in order, and the field
# whose label or legend is the page heading when the page asks one main question ("heading").
# "self_fields"/"self_title": what the page asks someone applying for themselves.
PAGES = {
    "who": {"title": "Who are you applying for?", "parent": "applicant", "fields": ["relationship_to_victim"],
            "heading": "relationship_to_victim"},
    "victim": {"title": "Who is the victim?", "parent": "victim", "fields": ["type", "name", "postcode"],
               "heading": "type", "self_title": "Are you applying as a person, or for a business or group?",
               "self_fields": ["type", "postcode"]},
    "victim-contact": {"title": "How can we contact the victim?", "parent": "victim",
                       "fields": ["email", "phone", "address", "preferred_contact"],
                       "intro": "Only the victim can agree to a case review, so we will ask them ourselves. Give at "
                                "least one way to contact them. We will not share their details with you."},
    "contact": {"title": "What are your name and contact details?", "parent": "applicant",
                "fields": ["name", "email", "phone", "address", "postcode"],
                "intro": "Give at least one way to contact you: email, phone or a postal address."},
    "preferred-contact": {"title": "How would you like us to contact you?", "parent": "applicant",
                          "fields": ["preferred_contact", "email", "phone", "address"], "heading": "preferred_contact"},
    "communication-needs": {"title": "Do you need any help to communicate with us?", "parent": "applicant",
                            "fields": ["communication_needs", "interpreter_language", "other_communication_needs"],
                            "intro": "We can write in large print or easy read, use an interpreter or British "
                                     "Sign Language, or help in another way."},
    "consent": {"title": "Has the victim agreed to this application?", "parent": "applicant",
                "fields": ["consent_confirmed"], "heading": "consent_confirmed"},
    "incidents": {"title": "Which incidents have you reported?", "parent": None, "fields": ["incidents"]},
    "impact": {"title": "How is the behaviour affecting the victim?", "parent": None, "fields": ["impact"],
               "heading": "impact", "self_title": "How is the behaviour affecting you?"},
}
ORDER = ["who", "victim", "victim-contact", "contact", "preferred-contact", "communication-needs", "consent",
         "incidents", "impact"]
THIRD_PARTY_ONLY = ("victim-contact", "consent")  # someone applying for themselves is not asked these
# The victim's details that only a third party gives (for "myself" the applicant's serve).
VICTIM_CONTACT = ("name", "email", "phone", "address", "preferred_contact")
CHOICES = {"reported_to": [("police", "Police"), ("council", "Council"), ("housing", "Housing provider"),
                           ("other", "Another organisation")]}
# Where an error on the whole application is fixed (the first page asking that field).
FIELD_PAGE = {("victim", "email"): "victim-contact", ("victim", "phone"): "victim-contact",
              ("victim", "address"): "victim-contact", ("victim", "preferred_contact"): "victim-contact",
              ("applicant", "relationship_to_victim"): "who", ("applicant", "consent_confirmed"): "consent",
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
VICTIM_DETAIL_MISSING = {"email": "Enter the victim’s email address", "phone": "Enter the victim’s phone number",
                         "address": "Enter the victim’s postal address"}
AUTOCOMPLETE = {"name": "name", "email": "email", "phone": "tel", "address": "street-address",
                "postcode": "postal-code"}


def _service():
    return current_app.extensions["casereview"]


def _application_schema() -> dict:
    with _service().sessions() as db:
        return compiled(db, latest_version(db).id).forms["application.json"]


# ----- each page's schema -----------------------------------------------------------------

def page_fields(name: str, third_party: bool = True) -> list[str]:
    spec = PAGES[name]
    return spec["fields"] if third_party else spec.get("self_fields", spec["fields"])


def page_title(name: str, third_party: bool = True) -> str:
    spec = PAGES[name]
    return spec["title"] if third_party else spec.get("self_title", spec["title"])


def page_schema(full: dict, name: str, third_party: bool = True) -> dict:
    """The sub-schema of one page: its fields, their requirements and UI hints, unchanged except
    where the page asks in the applicant's own words (see the per-page functions)."""
    spec = PAGES[name]
    parent = full["properties"][spec["parent"]] if spec["parent"] else full
    fields = page_fields(name, third_party)
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
              "communication-needs": _communication_page, "victim-contact": _victim_contact_page}.get(name)
    if adjust:
        adjust(sub)
    if name == "victim":
        _victim_page(sub, third_party)
    if name == "impact" and not third_party:
        sub["properties"]["impact"].update(title="How is the behaviour affecting you?", description=(
            "For example on your health, sleep, work, family or feeling safe at home."))
    heading = spec.get("heading")
    if heading in sub["properties"]:
        sub["properties"][heading]["title"] = page_title(name, third_party)  # the question is the h1
    return sub


def _concerns_only(rule: dict, fields: list[str]) -> bool:
    """An if/then rule of the full schema whose condition and consequence lie on this page."""
    condition, then = rule.get("if") or {}, rule.get("then") or {}
    named = [*(condition.get("properties") or {}), *(condition.get("required") or []), *(then.get("required") or [])]
    return bool(named) and all(name in fields for name in named)


def _victim_page(sub: dict, third_party: bool) -> None:
    props = sub["properties"]
    if third_party:
        props["type"]["description"] = "A person, a business or a community group affected by the behaviour."
        if "name" in props:
            props["name"]["description"] = "The person’s name, or the name of the business or group."
    else:
        props["type"]["description"] = "Choose ‘A person’ if you are applying for yourself as a resident."
    sub["x-ui"]["messages"] = {"type": {"required": "Select who is affected by the behaviour"}}


def _victim_contact_page(sub: dict) -> None:
    """At least one way to reach the victim (application.json's top-level rule for third parties,
    which this page only shows to them), each preferred way with its detail."""
    props = sub["properties"]
    props["email"]["description"] = "We will send the victim a private link to answer online."
    props["preferred_contact"].update(title="How would the victim like us to contact them?",
                                      description="We will use this way first.")
    sub["anyOf"] = [{"required": [detail]} for detail in VICTIM_DETAIL_MISSING]
    sub["x-ui"]["messages"] = {detail: {"required": text} for detail, text in VICTIM_DETAIL_MISSING.items()}


def _one_way_to_reach_the_victim(errors: list[dict], prefix: str = "") -> list[dict]:
    """Nothing given at all: one message for the three fields rather than three. `prefix` is
    where the victim's fields are ("victim/" in the whole application, "" on their page)."""
    wanted = {f"{prefix}{detail}" for detail in VICTIM_DETAIL_MISSING}
    missing = {e["field"] for e in errors if e.get("message") == "is required" and e["field"] in wanted}
    if missing != wanted:
        return errors
    rest = [e for e in errors if not (e.get("message") == "is required" and e["field"] in wanted)]
    return [{"field": f"{prefix}email", "message": REACH_THE_VICTIM}, *rest]


REACH_THE_VICTIM = "Give at least one way to contact the victim: an email address, a phone number or a postal address"


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


def _save(name: str, data: dict, fields: list[str]) -> None:
    """Put one page's answers into the application: its fields as posted, a field left empty
    removed (only the fields the page asked: a victim's name stays while its page is skipped)."""
    answers = copy.deepcopy(_answers())
    parent = PAGES[name]["parent"]
    holder = answers.setdefault(parent, {}) if parent else answers
    for field in fields:
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
    return [p for p in ORDER if p not in THIRD_PARTY_ONLY or _third_party(answers)]


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
    victim = copy.deepcopy(answers.get("victim") or {})
    if not _third_party(answers):
        applicant.pop("consent_confirmed", None)
        for key in VICTIM_CONTACT:
            victim.pop(key, None)  # not asked of someone applying for themselves: their own details serve
    if "communication_needs" in applicant:
        needs = applicant["communication_needs"]
        if isinstance(needs, list):
            needs = applicant["communication_needs"] = [n for n in needs if n != NO_HELP]
        if not isinstance(needs, list) or "interpreter" not in needs:
            applicant.pop("interpreter_language", None)
        if not isinstance(needs, list) or "other" not in needs:
            applicant.pop("other_communication_needs", None)
    data = {"applicant": applicant, "victim": victim,
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
    heading = PAGES[name].get("heading")
    heading = heading if heading in sub["properties"] else None
    common = dict(title=page_title(name, _third_party(answers)), intro=PAGES[name].get("intro"), name=name,
                  back=back, changing=changing, honeypot=HONEYPOT, error_items=error_items,
                  field_is_heading=bool(heading))
    if name == "communication-needs":
        return render_template("apply/communication.html", **common,
                               question=_communication_question(sub, values or {}, error_items or [])), status
    fields = render_fields(sub, values, errors, choices=CHOICES, page_heading=heading)
    return render_template("apply/question.html", fields=fields, **common), status


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
    if name == "victim-contact":
        errors = _one_way_to_reach_the_victim(errors)
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
    third_party = _third_party()
    if name in THIRD_PARTY_ONLY and not third_party:
        return redirect(url_for("apply.question", name=_following_own_page(name)))
    sub = page_schema(_application_schema(), name, third_party)
    fields = list(sub["properties"])
    if request.method == "GET":
        return _render_question(name, sub, page_values(_answers(), name), [])
    if _honeypot_filled():
        session["apply_bot"] = True
    data, form_action = parse_submission(sub, request.form)
    if form_action:
        changed = apply_form_action(sub, data, form_action)
        _save(name, changed, fields)  # an added or removed incident survives going back
        return _render_question(name, sub, changed, [])
    errors = _page_errors(name, sub, data)
    _save(name, data, fields)  # kept even with errors: the page shows them, and going back loses nothing
    if errors:
        return _render_question(name, sub, data, errors, 422)
    if request.args.get("change") == "1":
        unanswered = _unanswered_third_party_page(_answers())
        if unanswered:  # now applying for someone else: ask what only a third party is asked
            return redirect(url_for("apply.question", name=unanswered, change="1"))
        return redirect(url_for("apply.check"))
    return redirect(_next_page(name, _answers()))


def _following_own_page(name: str) -> str:
    """The next page someone applying for themselves is asked, after a third-party-only page."""
    later = ORDER[ORDER.index(name) + 1:]
    return next(page for page in later if page not in THIRD_PARTY_ONLY)


def _unanswered_third_party_page(answers: dict) -> str | None:
    if not _third_party(answers):
        return None
    victim, applicant = answers.get("victim") or {}, answers.get("applicant") or {}
    if not any(victim.get(detail) for detail in VICTIM_DETAIL_MISSING):
        return "victim-contact"
    if "consent_confirmed" not in applicant:
        return "consent"
    return None


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
    third_party = _third_party(application)
    for error in _one_way_to_reach_the_victim(list(errors), "victim/"):
        parts = str(error.get("field", "")).split("/")
        top = parts[0]
        if top == "applicant" and len(parts) > 1:
            name, rel = FIELD_PAGE.get((top, parts[1]), "contact"), "/".join(parts[1:])
            if parts[1] == preferred_detail:
                name = "preferred-contact"  # missing because of the choice: fixed where it was made
        elif top == "victim":
            name, rel = FIELD_PAGE.get((top, parts[1] if len(parts) > 1 else ""), "victim"), "/".join(parts[1:]) or "type"
        elif top == "incidents":
            error = _zero_based(error)
            name, rel = "incidents", error["field"]
        elif top == "impact":
            name, rel = "impact", "impact"
        else:
            items.append((len(ORDER), {"text": str(error.get("message", ""))}))
            continue
        sub = page_schema(full, name, third_party)
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
    kind = labels["victim_type"].get(str(victim.get("type")), victim.get("type"))
    if not _third_party(application):  # no "About the victim": the applicant is the victim
        about_you += [_row("Applying as", kind, "victim", "who is affected"),
                      _row("Postcode where it happens", victim.get("postcode"), "victim")]
        return [{"heading": "About you", "rows": about_you}, *_later_sections(application, labels)]
    about_victim = [_row("Who is affected", kind, "victim"),
                    _row("Name of the victim", victim.get("name"), "victim"),
                    _row("Postcode where it happens", victim.get("postcode"), "victim"),
                    _row("Victim’s email address", victim.get("email"), "victim-contact"),
                    _row("Victim’s phone number", victim.get("phone"), "victim-contact"),
                    _row("Victim’s postal address", victim.get("address"), "victim-contact"),
                    _row("How we contact the victim",
                         labels["victim_preferred_contact"].get(str(victim.get("preferred_contact"))),
                         "victim-contact", "how we contact the victim")]
    return [{"heading": "About you", "rows": about_you}, {"heading": "About the victim", "rows": about_victim},
            *_later_sections(application, labels)]


def _later_sections(application: dict, labels: dict) -> list[dict]:
    sections = []
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
        _row("How it affects the victim" if _third_party(application) else "How it affects you",
             application.get("impact"), "impact")]})
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
            "victim_preferred_contact": victim_ui.get("preferred_contact") or {},
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
