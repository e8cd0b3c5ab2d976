"""The form renderer and parser (web/formrender.py), checked the way a user meets a form.

Rendered HTML is parsed with lxml.html; posts are built from the rendered controls the way a
browser serialises a form (``form_values()``), so a round trip exercises render and parse together.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import lxml.html
import pytest
from flask import Flask
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, PrefixLoader
from werkzeug.datastructures import MultiDict

from engine.forms import errors_for, make_validator
from web.formrender import (
    apply_form_action,
    error_summary,
    friendly_message,
    parse_submission,
    render_fields,
)

ROOT = Path(__file__).resolve().parents[1]
FORMS = ROOT / "forms"
FORM_NAMES = sorted(path.stem for path in FORMS.glob("*.json"))

AGENCIES = [("police", "Police"), ("council", "Council"), ("housing", "Housing provider")]
CHOICES = {"agency": AGENCIES, "reported_to": AGENCIES, "panel_agencies": AGENCIES}


def load(name: str) -> dict:
    return json.loads((FORMS / f"{name}.json").read_text())


# Realistic, valid answers for every form (a new form must add one here).
SAMPLES: dict[str, dict] = {
    "action_update": {
        "status": "extension_requested",
        "new_due": "2026-05-29",
        "progress_note": "Two visits made; the mediation service needs another month.",
    },
    "application": {
        "applicant": {
            "name": "Sam Okafor",
            "relationship_to_victim": "family",
            "consent_confirmed": True,
            "email": "sam.okafor@example.com",
            "phone": "07700 900 982",
            "address": "12 Station Road\nAnytown",
            "postcode": "AT1 2BC",
            "preferred_contact": "phone",
            "communication_needs": ["interpreter", "large_print"],
            "interpreter_language": "Somali",
        },
        "victim": {"type": "individual", "name": "Grace Okafor", "postcode": "AT1 2BC",
                   "email": "grace.okafor@example.com", "phone": "07700 900 983", "address": "14 Station Road\nAnytown",
                   "preferred_contact": "post"},
        "incidents": [
            {
                "occurred_on": "2025-11-03",
                "reported_on": "2025-11-04",
                "reported_to": "police",
                "reference": "CAD 1234",
                "description": "Loud music and shouting until 3am.",
                "hate": False,
            },
            {
                "occurred_on": "2026-01-17",
                "reported_on": "2026-01-17",
                "reported_to": "housing",
                "description": "Rubbish dumped at the front door.",
                "hate": True,
            },
        ],
        "impact": "She cannot sleep and is afraid to leave the flat in the evening.",
        "received_on": "2026-03-02",
    },
    "case_summary": {
        "summary": "We hold four reports since November.",
        "incidents_held": 4,
        "actions_taken": "Warning letter sent to the neighbour.",
        "recommendations_proposed": "A mediation referral.",
    },
    "chase_action": {"note": "Spoke to PC Smith on 3 June; visit booked for 10 June."},
    "escalation_decision": {"decision": "upheld", "reasons": "The panel did not hear from the housing provider."},
    "escalation_response": {"response": "The panel will meet again with the housing provider present."},
    "follow_up": {"outcome": "extend", "extend_working_days": 20, "victim_feedback": "Things are quieter."},
    "impact_statement": {
        "statement": "I have not slept properly for months.",
        "wishes_to_attend": True,
        "support_needs": "Step-free access.",
    },
    "incident_history": {
        "incidents": [
            {
                "occurred_on": "2025-12-01",
                "reported_on": "2025-12-02",
                "reference": "HSG-77",
                "description": "Noise complaint logged.",
                "hate": False,
            }
        ],
        "actions_taken": "Tenancy warning issued.",
        "risk_notes": "The victim lives alone.",
    },
    "panel_outcome": {
        "attendees": ["Chair: A Patel (council)", "PC J Smith (police)"],
        "findings": "Reports were not linked between agencies.",
        "recommendations": ["Share reports weekly.", "Offer the victim a support worker."],
        "actions": [
            {"description": "Set up weekly data sharing.", "agency": "police", "owner": "Inspector Lee", "due": "2026-06-30"},
            {"description": "Refer to victim support.", "agency": "council", "owner": "ASB officer", "due": "2026-05-15"},
        ],
        "follow_up_working_days": 30,
    },
    "safety_net": {
        "further_actions": [{"description": "Visit the neighbour.", "agency": "housing", "owner": "Housing officer"}],
        "summary": "The housing provider will visit the neighbour.",
    },
    "schedule_panel": {
        "panel_date": "2026-04-14",
        "panel_time": "14:30",
        "chair_name": "Anita Patel",
        "chair_email": "anita.patel@example.gov.uk",
        "panel_agencies": ["police", "council", "housing"],
    },
    "threshold_decision": {"decision": "override", "override_reason": "The victim is highly vulnerable and isolated."},
    "verify_incidents": {
        "verified_incidents": [
            {
                "occurred_on": "2025-11-03",
                "reported_on": "2025-11-04",
                "reported_to": "police",
                "reference": "CAD 1234",
                "description": "Loud music until 3am.",
                "hate": False,
            }
        ],
        "verification_notes": "One report was a duplicate.",
    },
    "victim_consent": {"consent": "given", "consent_notes": "Confirmed by phone on 5 March."},
    "obtain_consent": {"consent": "declined", "consent_method": "letter", "consent_date": "2026-03-05",
                       "consent_notes": "Her letter says she does not want a review now."},
}


# ---------------------------------------------------------------------------- fixtures, helpers

@pytest.fixture
def app():
    """The loader the app factory uses: web/templates, then the package's templates."""
    app = Flask(__name__)
    app.jinja_loader = ChoiceLoader(
        [FileSystemLoader(str(ROOT / "web" / "templates")), PackageLoader("govuk_frontend_jinja")]
    )
    with app.app_context():
        yield app


def page(html) -> lxml.html.HtmlElement:
    return lxml.html.fragment_fromstring(f"<form>{html}</form>")


def text_of(element) -> str:
    return " ".join(element.text_content().split())


def posted(doc, press: str | None = None) -> MultiDict:
    """What the browser sends: the form's successful controls, plus the button pressed."""
    pairs = list(doc.form_values())
    if press is not None:
        buttons = doc.xpath(f'//button[@name="form-action"][@value="{press}"]')
        assert buttons, f"no button {press!r} on the page"
        pairs.append(("form-action", press))
    return MultiDict(pairs)


def by_id(doc, element_id: str):
    found = doc.xpath(f'//*[@id="{element_id}"]')
    assert len(found) == 1, f"expected one element with id {element_id!r}, found {len(found)}"
    return found[0]


def question(doc, field_id: str) -> dict:
    """What a user (and a screen reader) gets for one field: its label or legend, its hint,
    its error message, and the form group around it."""
    element = by_id(doc, field_id)
    if element.tag in ("input", "textarea", "select") and element.get("type") not in ("radio", "checkbox"):
        labels = doc.xpath(f'//label[@for="{field_id}"]')
        assert len(labels) == 1
        label = text_of(labels[0])
        described = element.get("aria-describedby", "")
    else:  # radios/checkboxes (the first option's id), a date input, or a fieldset of fields
        fieldset = element if element.tag == "fieldset" else element.xpath("ancestor::fieldset[1]")[0]
        label = text_of(fieldset.xpath("./legend")[0])
        described = fieldset.get("aria-describedby", "")
    texts = {i: text_of(by_id(doc, i)) for i in described.split()}
    group = element.xpath('ancestor-or-self::div[contains(concat(" ", @class, " "), " govuk-form-group ")][1]')
    return {
        "label": label,
        "hint": next((t for i, t in texts.items() if i.endswith("-hint")), None),
        "error": next((t for i, t in texts.items() if i.endswith("-error")), None),
        "group_classes": group[0].get("class", "").split() if group else [],
    }


def leaf_fields(schema: dict, data: dict, prefix: tuple = ()):
    """(id, title, description, kind) of every field the page shows for ``data``."""
    order = schema.get("x-ui", {}).get("order", [])
    for name in order + [n for n in schema["properties"] if n not in order]:
        sub = schema["properties"][name]
        path = prefix + (name,)
        ident = "-".join(map(str, path))
        if sub.get("type") == "object":
            yield ident, sub["title"], sub.get("description"), "object"
            yield from leaf_fields(sub, data.get(name, {}), path)
        elif sub.get("type") == "array" and sub["items"].get("type") == "object":
            yield ident, sub["title"], sub.get("description"), "list"
            for index, item in enumerate(data.get(name, [])):
                yield from leaf_fields(sub["items"], item, path + (index,))
        elif sub.get("type") == "array" and schema.get("x-ui", {}).get("widgets", {}).get(name) == "checkboxes":
            yield ident, sub["title"], sub.get("description"), "checkboxes"
        elif sub.get("type") == "array":
            yield ident, sub["title"], sub.get("description"), "list"
            for index, _ in enumerate(data.get(name, [])):
                yield f"{ident}-{index}", None, None, "entry"
        else:
            yield ident, sub["title"], sub.get("description"), "field"


def validate(schema, data):
    return errors_for(make_validator(schema), data)


# ------------------------------------------------------------------------- every form, as data

def test_every_form_has_a_sample_and_the_samples_are_valid():
    assert sorted(SAMPLES) == FORM_NAMES
    for name in FORM_NAMES:
        assert validate(load(name), SAMPLES[name]) == [], name


@pytest.mark.parametrize("name", FORM_NAMES)
def test_every_form_renders_each_field_with_its_label_and_hint(app, name):
    schema = load(name)
    for values in (None, SAMPLES[name]):
        doc = page(render_fields(schema, values, choices=CHOICES))
        for ident, title, description, kind in leaf_fields(schema, values or {}):
            seen = question(doc, ident)
            if kind == "entry":
                assert seen["label"].split()[-1].isdigit()  # "Attendee 2"
                continue
            assert seen["label"].startswith(title), (ident, seen)
            if description:
                assert seen["hint"] == " ".join(description.split()), ident
            assert seen["error"] is None


@pytest.mark.parametrize("name", FORM_NAMES)
def test_every_form_round_trips_valid_answers(app, name):
    schema = load(name)
    sample = SAMPLES[name]
    doc = page(render_fields(schema, sample, choices=CHOICES))
    data, action = parse_submission(schema, posted(doc))
    assert action is None
    assert data == sample
    assert validate(schema, data) == []


def test_ids_are_unique_and_every_label_points_at_a_control(app):
    schema = load("application")
    doc = page(render_fields(schema, SAMPLES["application"]))
    ids = doc.xpath("//@id")
    assert len(ids) == len(set(ids))
    for label in doc.xpath("//label"):
        assert by_id(doc, label.get("for")).tag in ("input", "textarea", "select")


# ------------------------------------------------------------------------------- labels, widgets

def test_optional_fields_say_so_and_required_ones_do_not(app):
    doc = page(render_fields(load("case_summary")))
    assert question(doc, "summary")["label"] == "Case summary"
    assert question(doc, "recommendations_proposed")["label"] == "Recommendations you propose (optional)"
    # Required only in some cases (if/then, anyOf): never marked optional.
    doc = page(render_fields(load("action_update")))
    assert question(doc, "new_due")["label"] == "New due date"
    doc = page(render_fields(load("application")))
    assert question(doc, "applicant-email")["label"] == "Email address"
    assert question(doc, "received_on")["label"] == "Date the application was received (optional)"
    assert question(doc, "victim-name")["label"] == "Name of the victim (optional)"


def test_radios_show_the_x_ui_labels_in_schema_order(app):
    doc = page(render_fields(load("action_update"), {"status": "in_progress"}))
    radios = doc.xpath('//input[@type="radio"][@name="status"]')
    assert [r.get("value") for r in radios] == ["completed", "in_progress", "extension_requested"]
    labels = [text_of(doc.xpath(f'//label[@for="{r.get("id")}"]')[0]) for r in radios]
    assert labels == ["Completed", "In progress", "More time needed"]
    assert [r.get("checked") is not None for r in radios] == [False, True, False]
    assert radios[0].get("id") == "status"  # the error summary links here


def test_a_new_form_preselects_no_radio_but_fills_defaults_of_inputs(app):
    doc = page(render_fields(load("impact_statement")))
    assert not doc.xpath('//input[@type="radio"][@checked]')
    doc = page(render_fields(load("panel_outcome")))
    assert by_id(doc, "follow_up_working_days").get("value") == "30"


def test_date_is_three_labelled_numeric_inputs_in_a_fieldset(app):
    doc = page(render_fields(load("action_update"), {"new_due": "2026-05-09"}))
    seen = question(doc, "new_due")
    assert seen["label"] == "New due date"
    assert seen["hint"] == "The date by which the action will be completed."
    parts = by_id(doc, "new_due").xpath(".//input")
    assert [p.get("name") for p in parts] == ["new_due-day", "new_due-month", "new_due-year"]
    assert [p.get("id") for p in parts] == ["new_due-day", "new_due-month", "new_due-year"]
    assert [p.get("value") for p in parts] == ["9", "5", "2026"]
    assert all(p.get("inputmode") == "numeric" for p in parts)
    assert [text_of(doc.xpath(f'//label[@for="{p.get("id")}"]')[0]) for p in parts] == ["Day", "Month", "Year"]


def test_textarea_email_and_number_inputs(app):
    doc = page(render_fields(load("schedule_panel"), choices=CHOICES))
    assert by_id(doc, "chair_email").get("type") == "email"
    assert by_id(doc, "chair_email").get("spellcheck") == "false"
    doc = page(render_fields(load("case_summary")))
    assert by_id(doc, "summary").tag == "textarea"  # widget textarea
    number = by_id(doc, "incidents_held")
    assert (number.tag, number.get("type"), number.get("inputmode")) == ("input", "text", "numeric")
    doc = page(render_fields(load("threshold_decision")))
    assert by_id(doc, "override_reason").tag == "textarea"
    doc = page(render_fields(load("application")))
    assert by_id(doc, "impact").tag == "textarea"  # maxLength > 500
    assert by_id(doc, "applicant-name").tag == "input"


def test_select_uses_the_choices_and_keeps_an_unknown_posted_value(app):
    schema = load("safety_net")
    values = {"further_actions": [{"agency": "police"}, {"agency": "fire"}]}
    doc = page(render_fields(schema, values, choices={"further_actions/agency": AGENCIES}))
    first = by_id(doc, "further_actions-0-agency")
    assert first.tag == "select"
    assert [o.get("value") for o in first.xpath("./option")] == ["", "police", "council", "housing"]
    assert first.value == "police"
    assert by_id(doc, "further_actions-1-agency").value == "fire"
    # Without choices there is nothing to pick from: a text input instead.
    doc = page(render_fields(schema, values))
    assert by_id(doc, "further_actions-0-agency").tag == "input"


def test_checkboxes_from_choices_parse_to_a_list(app):
    schema = load("schedule_panel")
    doc = page(render_fields(schema, {"panel_agencies": ["police"]}, choices=CHOICES))
    boxes = doc.xpath('//input[@type="checkbox"]')
    assert [b.get("value") for b in boxes] == ["police", "council", "housing"]
    assert [b.get("name") for b in boxes] == ["panel_agencies"] * 3
    assert [b.checked for b in boxes] == [True, False, False]
    assert question(doc, "panel_agencies")["label"] == "Agencies invited"

    form = MultiDict([("panel_agencies", "police"), ("panel_agencies", "housing")])
    data, _ = parse_submission(schema, form)
    assert data["panel_agencies"] == ["police", "housing"]
    errors = [e for e in validate(schema, data) if e["field"] == "panel_agencies"]
    assert friendly_message(errors[0], schema, choices=CHOICES) == "Agencies invited must include Council"

    data, _ = parse_submission(schema, MultiDict())
    assert data["panel_agencies"] == []
    errors = [e for e in validate(schema, data) if e["field"] == "panel_agencies"]
    doc = page(render_fields(schema, data, errors, choices=CHOICES))
    assert question(doc, "panel_agencies")["error"] == "Error: Select at least 2 agencies invited"
    # Without choices the x-ui labels give the options.
    doc = page(render_fields(schema))
    assert [b.get("value") for b in doc.xpath('//input[@type="checkbox"]')] == ["police", "council"]


# ------------------------------------------------------------------------------------ parsing

def test_strings_are_trimmed_and_empty_ones_left_out(app):
    schema = load("case_summary")
    data, action = parse_submission(
        schema,
        MultiDict({"summary": "  We hold two reports.\r\nBoth in May. ", "actions_taken": "   ",
                   "recommendations_proposed": "", "incidents_held": "2"}),
    )
    assert action is None
    assert data == {"summary": "We hold two reports.\nBoth in May.", "incidents_held": 2}
    assert validate(schema, data) == [{"field": "actions_taken", "message": "is required"}]


def test_integers_parse_and_bad_ones_are_kept_to_be_reported_and_reshown(app):
    schema = load("follow_up")
    base = {"outcome": "extend", "victim_feedback": "Quieter now."}
    assert parse_submission(schema, MultiDict({**base, "extend_working_days": " 1,0 "}))[0]["extend_working_days"] == 10
    data, _ = parse_submission(schema, MultiDict({**base, "extend_working_days": "twenty"}))
    assert data["extend_working_days"] == "twenty"
    errors = validate(schema, data)
    assert [e["field"] for e in errors] == ["extend_working_days"]
    doc = page(render_fields(schema, data, errors))
    assert by_id(doc, "extend_working_days").get("value") == "twenty"
    seen = question(doc, "extend_working_days")
    assert seen["error"] == "Error: The answer to ‘Follow up again after’ must be a whole number"
    assert "govuk-form-group--error" in seen["group_classes"]

    data, _ = parse_submission(schema, MultiDict({**base, "extend_working_days": "200"}))
    errors = validate(schema, data)
    assert friendly_message(errors[0], schema) == "The answer to ‘Follow up again after’ must be between 5 and 130"
    # The condition (if outcome is "extend") makes it required.
    data, _ = parse_submission(schema, MultiDict({**base, "extend_working_days": ""}))
    assert "extend_working_days" not in data
    errors = validate(schema, data)
    assert friendly_message(errors[0], schema) == "Enter an answer to ‘Follow up again after’"


def test_booleans_are_yes_or_no_radios(app):
    schema = load("impact_statement")
    doc = page(render_fields(schema))
    radios = doc.xpath('//input[@name="wishes_to_attend"]')
    assert [r.get("value") for r in radios] == ["yes", "no"]
    assert [text_of(doc.xpath(f'//label[@for="{r.get("id")}"]')[0]) for r in radios] == [
        "Yes, I would like to attend", "No"]
    assert question(doc, "wishes_to_attend")["label"] == "Would you like to attend the start of the panel? (optional)"
    for answer, expected in (("yes", True), ("no", False)):
        data, _ = parse_submission(schema, MultiDict({"statement": "It is hard.", "wishes_to_attend": answer}))
        assert data["wishes_to_attend"] is expected
        doc = page(render_fields(schema, data))
        checked = doc.xpath('//input[@name="wishes_to_attend"][@checked]')
        assert [c.get("value") for c in checked] == [answer]
    data, _ = parse_submission(schema, MultiDict({"statement": "It is hard."}))
    assert "wishes_to_attend" not in data
    data, _ = parse_submission(schema, MultiDict({"statement": "x", "wishes_to_attend": "maybe"}))
    assert data["wishes_to_attend"] == "maybe"
    assert validate(schema, data)[0]["field"] == "wishes_to_attend"
    # Plain Yes/No labels sit side by side.
    doc = page(render_fields(load("verify_incidents"), {"verified_incidents": [{}]}))
    radios = by_id(doc, "verified_incidents-0-hate").xpath('ancestor::div[@data-module="govuk-radios"]')[0]
    assert "govuk-radios--inline" in radios.get("class")


def test_dates_from_three_parts(app):
    schema = load("action_update")
    base = {"status": "extension_requested", "progress_note": "Going slowly."}

    def parse(day, month, year):
        form = MultiDict({**base, "new_due-day": day, "new_due-month": month, "new_due-year": year})
        return parse_submission(schema, form)[0].get("new_due")

    assert parse("9", "5", "2026") == "2026-05-09"
    assert parse(" 09 ", "05", "2026") == "2026-05-09"
    assert parse("9", "May", "2026") == "2026-05-09"
    assert parse("29", "2", "2028") == "2028-02-29"
    assert parse("31", "2", "2026") == "2026-2-31"  # impossible: kept so the format check fails
    assert parse("31", "", "2026") == "2026--31"
    assert parse("1", "2", "26") == "26-2-1"
    assert parse("", "", "") is None  # left out: the schema's condition reports it
    assert validate(schema, {**base, "new_due": "2026-2-31"}) == [
        {"field": "new_due", "message": "must be a valid date (got '2026-2-31')"}]


@pytest.mark.parametrize(
    ("day", "month", "year", "message", "highlighted"),
    [
        ("31", "2", "2026", "New due date must be a real date", ["day", "month", "year"]),
        ("x", "2", "2026", "New due date must be a real date", ["day", "month", "year"]),
        ("31", "", "2026", "New due date must include a month", ["month"]),
        ("", "3", "", "New due date must include a day and year", ["day", "year"]),
        ("1", "2", "26", "New due date must include a year with 4 numbers", ["year"]),
    ],
)
def test_date_errors_say_what_is_wrong_and_highlight_those_parts(app, day, month, year, message, highlighted):
    schema = load("action_update")
    form = MultiDict({"status": "extension_requested", "progress_note": "Slow.",
                      "new_due-day": day, "new_due-month": month, "new_due-year": year})
    data, _ = parse_submission(schema, form)
    errors = validate(schema, data)
    assert [e["field"] for e in errors] == ["new_due"]
    doc = page(render_fields(schema, data, errors))
    assert question(doc, "new_due")["error"] == f"Error: {message}"
    parts = {p: by_id(doc, f"new_due-{p}") for p in ("day", "month", "year")}
    assert [p.get("value") for p in parts.values()] == [day, month, year]  # as typed
    assert [p for p, el in parts.items() if "govuk-input--error" in el.get("class")] == highlighted
    assert error_summary(errors, schema) == [{"text": message, "href": f"#new_due-{highlighted[0]}"}]


def test_required_date_left_empty(app):
    schema = load("schedule_panel")
    data, _ = parse_submission(schema, MultiDict({"chair_name": "A Patel"}))
    errors = validate(schema, data)
    date_error = next(e for e in errors if e["field"] == "panel_date")
    assert friendly_message(date_error, schema) == "Enter the panel date"
    doc = page(render_fields(schema, data, errors, choices=CHOICES))
    assert all("govuk-input--error" in by_id(doc, f"panel_date-{p}").get("class") for p in ("day", "month", "year"))
    summary = error_summary(errors, schema, choices=CHOICES)
    assert summary[0] == {"text": "Enter the panel date", "href": "#panel_date-day"}


# ------------------------------------------------------------------- errors, re-shown on the page

def test_errors_show_next_to_the_right_field_and_typed_values_stay(app):
    schema = load("panel_outcome")
    doc = page(render_fields(schema, SAMPLES["panel_outcome"], choices=CHOICES))
    form = posted(doc)
    form["actions-1-due-day"] = "31"
    form["actions-1-due-month"] = "2"
    form["findings"] = "  "
    form["actions-0-owner"] = "<b>Inspector</b> Lee"
    data, action = parse_submission(schema, form)
    assert action is None
    assert data["actions"][1]["due"] == "2026-2-31"
    errors = validate(schema, data)
    assert sorted(e["field"] for e in errors) == ["actions/1/due", "findings"]
    assert next(e for e in errors if e["field"] == "actions/1/due")["message"].startswith("must be a valid date")

    doc = page(render_fields(schema, data, errors, choices=CHOICES))
    due = question(doc, "actions-1-due")
    assert due["error"] == "Error: Due date must be a real date"
    assert "govuk-form-group--error" in due["group_classes"]
    assert [by_id(doc, f"actions-1-due-{p}").get("value") for p in ("day", "month", "year")] == ["31", "2", "2026"]
    assert question(doc, "actions-0-due")["error"] is None
    assert question(doc, "findings")["error"] == "Error: Enter the findings"
    # Everything else the user typed is still there (and escaped, not markup).
    assert by_id(doc, "actions-0-owner").get("value") == "<b>Inspector</b> Lee"
    assert not doc.xpath("//b")
    assert by_id(doc, "actions-0-agency").value == "police"
    assert [by_id(doc, f"attendees-{i}").get("value") for i in (0, 1)] == SAMPLES["panel_outcome"]["attendees"]
    # Only the fields in error are marked.
    assert len(doc.xpath('//*[contains(@class, "govuk-form-group--error")]')) == 2

    summary = error_summary(errors, schema, choices=CHOICES)
    assert summary == [
        {"text": "Enter the findings", "href": "#findings"},
        {"text": "Action 2: Due date must be a real date", "href": "#actions-1-due-day"},
    ]
    for item in summary:
        by_id(doc, item["href"][1:])  # every link lands on the page


def test_error_summary_follows_page_order_and_gives_one_message_per_field(app):
    schema = load("application")
    data, _ = parse_submission(schema, MultiDict({"applicant-name": "", "incidents-0-description": ""}))
    errors = validate(schema, data)
    summary = error_summary(errors, schema)
    texts = [item["text"] for item in summary]
    assert texts[:2] == ["Enter the full name", "Select an answer to ‘Who are you applying for?’"]
    # The three ways to be contacted: one requirement, said once.
    assert texts.count("Enter an email address, a phone number or a postal address") == 1
    assert "Incident 1: Enter the date it happened" in texts
    assert "Incident 1: Select an answer to ‘Who did you report it to?’" in texts
    assert "Incident 1: Enter what happened" in texts
    assert texts[-1] == "Enter an answer to ‘How is the behaviour affecting the victim?’"
    hrefs = [item["href"] for item in summary]
    assert len(hrefs) == len(set(hrefs))
    doc = page(render_fields(schema, data, errors))
    for href in hrefs:
        by_id(doc, href[1:])
    assert question(doc, "applicant-phone")["error"] == "Error: Enter an email address, a phone number or a postal address"


def test_friendly_messages(app):
    schema = load("application")

    def message(field, raw):
        return friendly_message({"field": field, "message": raw}, schema)

    assert message("impact", "is required") == "Enter an answer to ‘How is the behaviour affecting the victim?’"
    assert message("applicant/email", "must be a valid email (got 'sam@')") == (
        "Enter the email address in the correct format, like name@example.com")
    assert message("applicant/relationship_to_victim", "must be one of self, family") == (
        "Choose one of the options for ‘Who are you applying for?’")
    assert message("applicant/consent_confirmed", "True was expected") == (
        "The answer to ‘Has the victim agreed to this application?’ must be ‘Yes, they agree’")
    assert message("applicant/name", "Full name: " + repr("x" * 201) + " is too long") == (
        "Full name must be 200 characters or fewer")
    assert message("applicant/postcode", "Postcode: 'A!' does not match '^[A-Za-z0-9 ]{2,10}$'") == (
        "Enter the postcode in the correct format")
    assert message("incidents", "[] is too short") == "Add at least one incident"
    assert message("victim/type", "is required") == "Select an answer to ‘Who is affected?’"
    assert message("(form)", "Additional properties are not allowed ('x' was unexpected)") == (
        "Additional properties are not allowed ('x' was unexpected)")
    decision = load("threshold_decision")
    data = {"decision": "override", "override_reason": "Because"}
    errors = validate(decision, data)
    assert friendly_message(errors[0], decision) == "Reason for overriding must be 10 characters or more"
    assert friendly_message({"field": "decision", "message": "is required"}, decision) == "Select your decision"
    outcome = load("panel_outcome")
    assert friendly_message({"field": "attendees/0", "message": "'' should be non-empty"}, outcome) == "Enter who attended"
    assert friendly_message({"field": "actions", "message": "[...] is too long"}, outcome) == "You can add up to 50 actions"


def test_application_nested_fields_have_path_names(app):
    schema = load("application")
    doc = page(render_fields(schema))
    assert question(doc, "applicant")["label"] == "About you"
    assert question(doc, "applicant-name")["label"] == "Full name"
    assert by_id(doc, "applicant-name").get("name") == "applicant-name"
    assert question(doc, "victim-type")["label"] == "Who is affected?"
    assert [r.get("value") for r in doc.xpath('//input[@name="victim-type"]')] == [
        "individual", "business", "community_group"]
    # At least one incident is needed, so a new form shows one to fill in (and no Remove).
    assert question(doc, "incidents-0")["label"] == "Incident 1"
    for part in ("day", "month", "year"):
        assert by_id(doc, f"incidents-0-occurred_on-{part}").get("name") == f"incidents-0-occurred_on-{part}"
    assert not doc.xpath('//button[starts-with(@value, "remove:incidents")]')

    form = MultiDict({
        "applicant-name": " Sam Okafor ", "applicant-relationship_to_victim": "self",
        "applicant-email": "sam@example.com", "victim-type": "individual",
        "incidents-0-occurred_on-day": "3", "incidents-0-occurred_on-month": "11",
        "incidents-0-occurred_on-year": "2025", "incidents-0-reported_on-day": "4",
        "incidents-0-reported_on-month": "11", "incidents-0-reported_on-year": "2025",
        "incidents-0-reported_to": "police", "incidents-0-description": "Shouting.",
        "incidents-0-hate": "no", "impact": "Cannot sleep.", "csrf_token": "ignored",
    })
    data, _ = parse_submission(schema, form)
    assert data == {
        # nothing ticked under "communication needs": an empty list (lists are always present)
        "applicant": {"name": "Sam Okafor", "relationship_to_victim": "self", "email": "sam@example.com",
                      "communication_needs": []},
        "victim": {"type": "individual"},
        "incidents": [{"occurred_on": "2025-11-03", "reported_on": "2025-11-04", "reported_to": "police",
                       "description": "Shouting.", "hate": False}],
        "impact": "Cannot sleep.",
    }
    assert validate(schema, data) == []

    data["incidents"][0]["occurred_on"] = "2025-13-3"
    errors = validate(schema, data)
    assert errors == [{"field": "incidents/0/occurred_on", "message": "must be a valid date (got '2025-13-3')"}]
    doc = page(render_fields(schema, data, errors))
    assert question(doc, "incidents-0-occurred_on")["error"] == "Error: Date it happened must be a real date"
    assert error_summary(errors, schema) == [
        {"text": "Incident 1: Date it happened must be a real date", "href": "#incidents-0-occurred_on-day"}]


# ------------------------------------------------------------------------------ add another

def buttons(doc) -> list[tuple[str, str]]:
    return [(b.get("value"), text_of(b)) for b in doc.xpath('//button[@name="form-action"]')]


def test_add_another_without_javascript(app):
    schema = load("panel_outcome")
    doc = page(render_fields(schema, SAMPLES["panel_outcome"], choices=CHOICES))
    assert ("add:actions", "Add another action") in buttons(doc)
    assert ("remove:actions:1", "Remove action 2") in buttons(doc)
    remove = doc.xpath('//button[@value="remove:actions:1"]')[0]
    assert text_of(remove.xpath('span[@class="govuk-visually-hidden"]')[0]) == "action 2"
    assert question(doc, "actions-1")["label"] == "Action 2"
    names = [label for _, label in buttons(doc)]
    assert len(names) == len(set(names))  # every button has its own accessible name

    # Add: the post keeps everything typed so far, then one empty action is added.
    form = posted(doc, press="add:actions")
    form["findings"] = "Changed before adding."
    data, action = parse_submission(schema, form)
    assert action == "add:actions"
    data = apply_form_action(schema, data, action)
    assert data["actions"] == SAMPLES["panel_outcome"]["actions"] + [{}]
    assert data["findings"] == "Changed before adding."
    doc = page(render_fields(schema, data, choices=CHOICES))
    assert question(doc, "actions-2")["label"] == "Action 3"
    assert by_id(doc, "actions-2-description").text in (None, "")
    assert ("remove:actions:2", "Remove action 3") in buttons(doc)

    # Remove the first action: the others keep their answers, in order.
    data, action = parse_submission(schema, posted(doc, press="remove:actions:0"))
    assert action == "remove:actions:0"
    data = apply_form_action(schema, data, action)
    assert data["actions"] == [SAMPLES["panel_outcome"]["actions"][1], {}]

    # Submitting for real drops the action left empty.
    doc = page(render_fields(schema, data, choices=CHOICES))
    data, action = parse_submission(schema, posted(doc))
    assert action is None
    assert data["actions"] == [SAMPLES["panel_outcome"]["actions"][1]]
    assert validate(schema, data) == []


def test_an_empty_optional_list_shows_an_item_only_when_asked(app):
    schema = load("safety_net")
    doc = page(render_fields(schema))
    assert not doc.xpath('//fieldset[starts-with(@id, "further_actions-")]')
    assert buttons(doc) == [("add:further_actions", "Add a further action")]
    data, action = parse_submission(schema, posted(doc, press="add:further_actions"))
    assert data == {"further_actions": []}
    data = apply_form_action(schema, data, action)
    doc = page(render_fields(schema, data))
    assert question(doc, "further_actions-0")["label"] == "Further action 1"
    assert buttons(doc) == [("remove:further_actions:0", "Remove further action 1"),
                            ("add:further_actions", "Add another further action")]
    # Left empty and submitted: no actions, and nothing to complain about in the list.
    data, _ = parse_submission(schema, posted(doc))
    assert data == {"further_actions": []}
    assert [e["field"] for e in validate(schema, data)] == ["summary"]


def test_a_required_list_keeps_its_only_item_so_its_fields_report(app):
    schema = load("panel_outcome")
    doc = page(render_fields(schema, choices=CHOICES))
    assert question(doc, "attendees-0")["label"] == "Attendee 1"
    assert not doc.xpath('//button[starts-with(@value, "remove:attendees")]')
    data, _ = parse_submission(schema, posted(doc))
    assert data["attendees"] == [""]
    assert data["recommendations"] == [] and data["actions"] == []
    errors = validate(schema, data)
    assert {"field": "attendees/0", "message": "'' should be non-empty"} in errors
    doc = page(render_fields(schema, data, errors, choices=CHOICES))
    assert question(doc, "attendees-0")["error"] == "Error: Enter who attended"
    assert {"text": "Attendee 1: Enter who attended", "href": "#attendees-0"} in error_summary(errors, schema)

    application = load("application")
    data, _ = parse_submission(application, posted(page(render_fields(application))))
    assert data["incidents"] == [{}]
    fields = [e["field"] for e in validate(application, data)]
    assert "incidents/0/description" in fields and "incidents/0/occurred_on" in fields


def test_add_and_remove_strings(app):
    schema = load("panel_outcome")
    data = apply_form_action(schema, {"recommendations": ["One."]}, "add:recommendations")
    assert data["recommendations"] == ["One.", ""]
    doc = page(render_fields(schema, data, choices=CHOICES))
    assert question(doc, "recommendations-1")["label"] == "Recommendation 2"
    assert ("remove:recommendations:0", "Remove recommendation 1") in buttons(doc)
    data, action = parse_submission(schema, posted(doc, press="remove:recommendations:0"))
    assert data["recommendations"] == ["One.", ""]
    assert apply_form_action(schema, data, action)["recommendations"] == [""]
    data, _ = parse_submission(schema, posted(doc))
    assert data["recommendations"] == ["One."]


def test_add_stops_at_max_items_and_bad_actions_change_nothing(app):
    schema = load("panel_outcome")
    full = {"actions": [{}] * 50}
    assert len(apply_form_action(schema, full, "add:actions")["actions"]) == 50
    doc = page(render_fields(schema, full, choices=CHOICES))
    assert "add:actions" not in [value for value, _ in buttons(doc)]
    data = {"actions": [{"owner": "A"}]}
    for action in ("remove:actions:5", "remove:actions:x", "add:findings", "add:nothing", "drop:actions", ""):
        assert apply_form_action(schema, data, action) == data
    before = copy.deepcopy(data)
    apply_form_action(schema, data, "remove:actions:0")
    assert data == before  # the caller's data is not changed


def test_only_add_and_remove_count_as_form_actions(app):
    schema = load("chase_action")
    assert parse_submission(schema, MultiDict({"note": "x", "form-action": "continue"}))[1] is None
    assert parse_submission(schema, MultiDict({"note": "x", "form-action": "add:note"}))[1] == "add:note"


def test_enter_in_a_field_submits_rather_than_adds(app):
    """Implicit submission uses the first submit button: it must not be Add or Remove."""
    doc = page(render_fields(load("panel_outcome"), SAMPLES["panel_outcome"], choices=CHOICES))
    first = doc.xpath("//button")[0]
    assert first.get("name") is None and first.get("type") == "submit"
    assert first.get("tabindex") == "-1" and first.get("aria-hidden") == "true"
    doc = page(render_fields(load("chase_action")))
    assert not doc.xpath("//button")


# ------------------------------------------------------------------------------ environments

def test_renders_the_same_with_a_prefixed_loader_and_outside_an_app(app):
    schema = load("action_update")
    expected = str(render_fields(schema, SAMPLES["action_update"]))
    assert "More time needed" in expected
    other = Flask("other")
    other.jinja_loader = PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")})
    with other.app_context():
        assert str(render_fields(schema, SAMPLES["action_update"])) == expected


def test_renders_without_an_app_context():
    html = render_fields(load("victim_consent"), {"consent": "given"})
    doc = page(html)
    assert doc.xpath('//input[@name="consent"][@checked]')[0].get("value") == "given"


NESTED = {
    "type": "object",
    "properties": {
        "visits": {
            "title": "Visits",
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "where": {
                        "title": "Where",
                        "type": "object",
                        "properties": {"street": {"title": "Street", "type": "string"}},
                        "required": ["street"],
                    },
                    "people": {"title": "People seen", "type": "array", "items": {"type": "string"}},
                    "score": {"title": "Score", "type": "number"},
                },
                "required": ["where"],
            },
        }
    },
    "required": ["visits"],
}


def test_lists_inside_list_items(app):
    data = {"visits": [{"where": {"street": "High St"}, "people": ["Ann", "Bo"], "score": 2.5}]}
    doc = page(render_fields(NESTED, data))
    assert question(doc, "visits-0-where-street")["label"] == "Street"
    assert by_id(doc, "visits-0-people-1").get("value") == "Bo"
    assert ("remove:visits-0-people:1", "Remove people 2") in buttons(doc)
    assert by_id(doc, "visits-0-score").get("inputmode") == "decimal"
    parsed, action = parse_submission(NESTED, posted(doc, press="add:visits-0-people"))
    assert parsed == data and action == "add:visits-0-people"
    added = apply_form_action(NESTED, parsed, action)
    assert added["visits"][0]["people"] == ["Ann", "Bo", ""]
    removed = apply_form_action(NESTED, added, "remove:visits-0-people:0")
    assert removed["visits"][0]["people"] == ["Bo", ""]
    errors = [{"field": "visits/0/people/1", "message": "'' should be non-empty"}]
    assert error_summary(errors, NESTED) == [{"text": "Visit 1, people 2: Enter the people seen", "href": "#visits-0-people-1"}]
