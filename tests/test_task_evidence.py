"""The evidence beside every decision: what each task page shows next to its form (x-ui.context),
what a form starts with (x-ui.prefill) and what its button says (x-ui.submit)."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.evidence import task_context
from engine.models import Case, HumanTask
from engine.scenarios import Walker, application
from web.formrender import parse_submission, render_fields

from .conftest import START
from .web_helpers import make_app, page, sign_in, text_of

FORMS = Path(__file__).resolve().parent.parent / "forms"
HISTORY = {"incidents": [{"occurred_on": "2026-02-03", "reported_on": "2026-02-04", "reference": "CAD-7781",
                          "description": "Officers attended: music from the flat above.", "hate": False}],
           "actions_taken": "Community protection warning issued.", "risk_notes": "Victim is anxious at night."}


@pytest.fixture
def app(service):
    return make_app(service)


def client_for(app, email):
    client = app.test_client()
    sign_in(client, email)
    return client


def task_id(walker: Walker, name: str, agency: str | None = None) -> str:
    tasks = [t for t in walker.ready(name) if agency is None or t.agency == agency]
    assert tasks, f"no ready {name}"
    return tasks[0].id


def words(node) -> str:
    return " ".join(node.text_content().split())


def context_item(html, title: str):
    """The block beside the form headed `title`."""
    for block in html.cssselect(".app-task-context .app-context-item"):
        if words(block.cssselect("h3")[0]) == title:
            return block
    raise AssertionError(f"no context item {title!r}: "
                         f"{[words(h) for h in html.cssselect('.app-task-context h3')]}")


def at_verification(service, **kwargs) -> Walker:
    reference = service.apply(application(START.date(), **kwargs))["reference"]
    walker = Walker(service, reference)
    walker.complete("provide_incident_history", HISTORY)
    return walker


def application_incidents(service, walker) -> list[dict]:
    with service.sessions() as db:
        return db.scalar(select(Case.application).where(Case.reference == walker.reference))["incidents"]


# ----- verify the incident history ----------------------------------------------------------------

def test_verification_starts_from_the_application_with_each_agencys_history_beside_it(app, service):
    walker = at_verification(service)
    html = page(client_for(app, "coordinator@demo.test").get(f"/tasks/{task_id(walker, 'verify_incidents')}"))
    incidents = application_incidents(service, walker)
    # the form starts with the application's incidents: corrected, not retyped
    for index, incident in enumerate(incidents):
        assert html.get_element_by_id(f"verified_incidents-{index}-reference").get("value") == incident["reference"]
        assert html.get_element_by_id(f"verified_incidents-{index}-description").text == incident["description"]
        assert html.get_element_by_id(f"verified_incidents-{index}-occurred_on-day").get("value") == \
            str(int(incident["occurred_on"][8:]))
        select_ = html.get_element_by_id(f"verified_incidents-{index}-reported_to")
        assert select_.tag == "select"  # "reported to" is a choice of agencies, by name
        chosen = select_.cssselect("option[selected]")
        assert [o.get("value") for o in chosen] == [incident["reported_to"]]
        assert "Exampleshire Police" in [o.text for o in select_.cssselect("option")]
    assert not html.cssselect("#verified_incidents-3-reference")
    # each agency's returned history, agency by agency, under its name
    holds = context_item(html, "What each agency holds")
    cards = holds.cssselect(".govuk-summary-card")
    assert sorted(words(c.cssselect(".govuk-summary-card__title")[0]) for c in cards) == \
        ["Exampleshire Police", "Exampleton District Council"]
    police = next(c for c in cards if "Police" in words(c.cssselect(".govuk-summary-card__title")[0]))
    assert "Community protection warning issued." in words(police)
    assert "Victim is anxious at night." in words(police)
    table = police.cssselect(".app-table-scroll table")[0]
    assert [words(th) for th in table.cssselect("th")] == ["Happened", "Reported", "Reference", "What happened",
                                                            "Hate incident"]
    assert [words(td) for td in table.cssselect("tbody td")] == \
        ["3 February 2026", "4 February 2026", "CAD-7781", "Officers attended: music from the flat above.", "No"]
    assert words(html.cssselect("form button.govuk-button")[-1]) == "Confirm the verified incidents"


def test_a_failed_verification_keeps_what_was_typed_rather_than_the_application(app, service):
    walker = at_verification(service)
    client = client_for(app, "coordinator@demo.test")
    url = f"/tasks/{task_id(walker, 'verify_incidents')}"
    form = {"verified_incidents-0-occurred_on-day": "10", "verified_incidents-0-occurred_on-month": "2",
            "verified_incidents-0-occurred_on-year": "2026", "verified_incidents-0-reported_on-day": "11",
            "verified_incidents-0-reported_on-month": "2", "verified_incidents-0-reported_on-year": "2026",
            "verified_incidents-0-reported_to": "housing", "verified_incidents-0-reference": "HOU-1",
            "verified_incidents-0-description": "", "verified_incidents-0-hate": "no", "form-action": ""}
    response = client.post(url, data=form)
    assert response.status_code == 422
    html = page(response)
    assert html.cssselect(".govuk-error-summary")
    assert html.get_element_by_id("verified_incidents-0-reference").get("value") == "HOU-1"
    assert [o.get("value") for o in
            html.get_element_by_id("verified_incidents-0-reported_to").cssselect("option[selected]")] == ["housing"]
    assert not html.cssselect("#verified_incidents-1-reference")  # not prefilled again
    # and adding an item keeps the typed one too
    added = page(client.post(url, data={**form, "form-action": "add:verified_incidents"}))
    assert added.get_element_by_id("verified_incidents-0-reference").get("value") == "HOU-1"
    assert added.get_element_by_id("verified_incidents-1-reported_to").tag == "select"


def test_the_verified_incidents_reach_the_threshold_with_the_chosen_agency(app, service):
    walker = at_verification(service)
    client = client_for(app, "coordinator@demo.test")
    incidents = application_incidents(service, walker)
    form = {"form-action": ""}
    for index, incident in enumerate(incidents):
        for part in ("occurred_on", "reported_on"):
            year, month, day = incident[part].split("-")
            form |= {f"verified_incidents-{index}-{part}-day": day, f"verified_incidents-{index}-{part}-month": month,
                     f"verified_incidents-{index}-{part}-year": year}
        form |= {f"verified_incidents-{index}-reported_to": "housing" if index == 0 else incident["reported_to"],
                 f"verified_incidents-{index}-description": incident["description"],
                 f"verified_incidents-{index}-hate": "no"}
    response = client.post(f"/tasks/{task_id(walker, 'verify_incidents')}", data=form)
    assert response.status_code == 302, text_of(response)[:2000]
    html = page(client.get(f"/tasks/{task_id(walker, 'confirm_threshold')}"))
    rows = html.cssselect(".app-threshold-incidents tbody tr")
    assert "to Exampleton Homes" in words(rows[0])


# ----- confirm the threshold decision -----------------------------------------------------------

def test_the_threshold_page_says_it_is_met_with_the_tables_reasons_and_counts(app, service):
    walker = at_verification(service)
    walker.verify(application_incidents(service, walker))
    html = page(client_for(app, "coordinator@demo.test").get(f"/tasks/{task_id(walker, 'confirm_threshold')}"))
    result = context_item(html, "The computed result")
    assert words(result.cssselect(".app-threshold-result")[0]) == "The threshold is met."
    assert "ASB: three or more incidents that happened on separate occasions" in \
        words(result.cssselect(".app-threshold-reasons")[0])
    assert [words(li) for li in result.cssselect(".app-threshold-counts li")] == [
        "Separate occasions reported in the 6 months before the application: 3",
        "Counted incidents reported in the last month: 2",
        "Hate incidents reported in the 6 months before the application: 0"]
    counted = [words(tr.cssselect("td")[2]) for tr in result.cssselect(".app-threshold-incidents tbody tr")]
    assert counted == ["Yes", "Yes, reported in the last month", "Yes, reported in the last month"]
    assert "Checked." in words(context_item(html, "Notes on the verification"))
    assert words(html.cssselect("form button.govuk-button")[-1]) == "Confirm the decision"


def test_the_threshold_page_says_it_is_not_met_and_what_would_meet_it(app, service):
    walker = at_verification(service)
    incidents = application_incidents(service, walker)
    old = dict(incidents[0], reported_on=(START.date() - timedelta(days=300)).isoformat(),
               occurred_on=(START.date() - timedelta(days=301)).isoformat())
    walker.verify([old, incidents[2]])
    html = page(client_for(app, "coordinator@demo.test").get(f"/tasks/{task_id(walker, 'confirm_threshold')}"))
    result = context_item(html, "The computed result")
    assert words(result.cssselect(".app-threshold-result")[0]) == "The threshold is not met."
    assert not result.cssselect(".app-threshold-reasons")
    shortfalls = words(result.cssselect(".app-threshold-shortfalls")[0])
    assert "What would meet it (any one of these)" in shortfalls
    assert "2 more for “separate occasions reported in the 6 months before the application” (1 of 3)" in shortfalls
    counted = [words(tr.cssselect("td")[2]) for tr in result.cssselect(".app-threshold-incidents tbody tr")]
    assert counted == ["No: reported more than 6 months before the application", "Yes, reported in the last month"]


# ----- decide the escalation ----------------------------------------------------------------------

def to_panel(service, walker: Walker) -> None:
    walker.provide_histories()
    walker.verify(application_incidents(service, walker))
    walker.confirm()
    walker.schedule_panel(START.date() + timedelta(days=21))


ACTION = {"description": "Joint visit to the flat above", "agency": "police", "owner": "PC Evans", "due": "2026-04-20"}


def test_the_escalation_page_shows_the_reason_the_dates_the_people_and_the_timeline(app, service):
    reference = service.apply(application(START.date()))["reference"]
    walker = Walker(service, reference)
    to_panel(service, walker)
    walker.panel_inputs()
    walker.outcome([ACTION], follow_up_working_days=60)
    reason = ("The review missed the reports I made to the housing provider in January.\n"
              "Nobody from Exampleton Homes came to the panel.")
    coordinator = client_for(app, "coordinator@demo.test")
    assert coordinator.post(f"/cases/{reference}/escalate", data={"reason": reason}).status_code == 302
    html = page(client_for(app, "reviewer@demo.test").get(f"/tasks/{task_id(walker, 'decide_escalation')}"))
    # the reason in full, as typed (line breaks kept)
    shown = context_item(html, "Why the applicant asked for an escalation").cssselect("p")[0]
    assert shown.text_content() == reason
    facts = {words(row.cssselect("dt")[0]): words(row.cssselect("dd")[0])
             for row in context_item(html, "Dates and people").cssselect(".govuk-summary-list__row")}
    assert facts["Application received"] == "2 March 2026"
    assert facts["Threshold decided"] == "2 March 2026"
    assert facts["Decision letter sent"] == "2 March 2026"
    assert facts["Outcome letter sent"] == "2 March 2026"
    assert facts["Escalation asked for"] == "2 March 2026"
    assert "Casey Coordinator (coordinator)" in facts["Handled by"]
    assert "Pat Chair (chair)" in facts["Handled by"]
    assert "Exampleshire Police officer (partner, police)" in facts["Handled by"]
    timeline = context_item(html, "What has happened on the case").cssselect(".moj-timeline__item")
    titles = [words(item.cssselect(".moj-timeline__title")[0]) for item in timeline]
    assert titles[0] == "The applicant asked for an escalation" and titles[-1] == "Application received"
    assert "Task done: Record the panel outcome" in titles
    assert words(html.cssselect("form button.govuk-button")[-1]) == "Record the escalation decision"


# ----- action updates, chasers and the follow-up ----------------------------------------------------

def with_one_action(service) -> Walker:
    reference = service.apply(application(START.date()))["reference"]
    walker = Walker(service, reference)
    to_panel(service, walker)
    walker.panel_inputs()
    walker.outcome([ACTION], follow_up_working_days=10)
    return walker


def test_each_action_update_shows_the_action_and_every_earlier_update(app, service, clock):
    walker = with_one_action(service)
    police = client_for(app, "police@demo.test")
    first = page(police.get(f"/tasks/{task_id(walker, 'deliver_action')}"))
    action = {words(r.cssselect("dt")[0]): words(r.cssselect("dd")[0])
              for r in context_item(first, "The action").cssselect(".govuk-summary-list__row")}
    assert action == {"Action": "Joint visit to the flat above", "Agency": "Exampleshire Police",
                      "Owner": "PC Evans", "Due": "20 April 2026", "Status": "Open"}
    assert words(context_item(first, "Earlier updates").cssselect("p")[0]) == "Nothing has been received."
    assert words(first.cssselect("form button.govuk-button")[-1]) == "Send the update"
    walker.complete("deliver_action", {"status": "in_progress", "progress_note": "Visit booked for Friday."})
    clock.set(clock.now() + timedelta(days=3))
    walker.complete("deliver_action", {"status": "extension_requested", "progress_note": "Tenant away.",
                                       "new_due": "2026-05-04"})
    third = page(police.get(f"/tasks/{task_id(walker, 'deliver_action')}"))
    cards = context_item(third, "Earlier updates").cssselect(".govuk-summary-card")
    assert [words(c.cssselect(".govuk-summary-card__title")[0]) for c in cards] == ["2 March 2026", "5 March 2026"]
    assert "Visit booked for Friday." in words(cards[0]) and "Tenant away." in words(cards[1])
    assert "Status then In progress" in words(cards[0])  # stored codes in the form's own words
    assert "4 May 2026" in words(cards[1]) and "More time needed" in words(cards[1])
    assert "Due 4 May 2026" in words(context_item(third, "The action"))


def test_the_chaser_shows_the_overdue_action_and_its_updates(app, service, clock):
    walker = with_one_action(service)
    walker.complete("deliver_action", {"status": "in_progress", "progress_note": "Visit booked for Friday."})
    clock.set(clock.now() + timedelta(days=60))
    service.fire_due_timers()
    html = page(client_for(app, "coordinator@demo.test").get(f"/tasks/{task_id(walker, 'chase_action')}"))
    assert "Joint visit to the flat above" in words(context_item(html, "The overdue action"))
    assert "Visit booked for Friday." in words(context_item(html, "Earlier updates"))
    assert words(html.cssselect("form button.govuk-button")[-1]) == "Record what was agreed"


def test_the_follow_up_shows_the_action_plan_and_what_the_victim_said_before(app, service, clock):
    walker = with_one_action(service)
    clock.set(clock.now() + timedelta(days=60))  # past the action's due date and the follow-up
    service.fire_due_timers()
    walker.complete("chase_action", {"note": "Inspector promised the visit next week."})
    coordinator = client_for(app, "coordinator@demo.test")
    html = page(coordinator.get(f"/tasks/{task_id(walker, 'follow_up')}"))
    plan = context_item(html, "The action plan now")
    cells = [words(td) for td in plan.cssselect("tbody td")]
    assert cells[0] == "Joint visit to the flat above Latest update: Inspector promised the visit next week."
    assert cells[1:4] == ["Exampleshire Police", "PC Evans", "20 April 2026"]
    assert "Overdue" in cells[4]
    assert "I want it to stop." in words(context_item(html, "What the victim told the panel"))
    assert "I cannot sleep" in words(context_item(html, "The impact described in the application"))
    assert words(context_item(html, "Earlier follow-ups").cssselect("p")[0]) == "Nothing has been received."
    walker.complete("follow_up", {"outcome": "extend", "victim_feedback": "A little quieter.", "extend_working_days": 5})
    clock.set(clock.now() + timedelta(days=14))
    service.fire_due_timers()
    again = page(coordinator.get(f"/tasks/{task_id(walker, 'follow_up')}"))
    earlier = context_item(again, "Earlier follow-ups").cssselect(".govuk-summary-card")
    assert len(earlier) == 1 and "A little quieter." in words(earlier[0])
    assert "Decided Follow up again later" in words(earlier[0])
    assert words(again.cssselect("form button.govuk-button")[-1]) == "Record the follow-up"


# ----- partners see only what the case page shows them -----------------------------------------------

def test_a_partner_sees_the_reported_incidents_but_never_the_applicants_details(app, service):
    reference = service.apply(application(START.date()))["reference"]
    walker = Walker(service, reference)
    html = page(client_for(app, "police@demo.test").get(f"/tasks/{task_id(walker, 'provide_incident_history', 'police')}"))
    reported = context_item(html, "Incidents the applicant reported")
    assert "Loud music and shouting late at night (incident 1)." in words(reported)
    assert "Exampleshire Police" in words(reported)  # "reported to" by the agency's name
    everything = words(html)
    for private in ("applicant@example.org", "01632 960000", "1 High Street"):
        assert private not in everything
    assert words(html.cssselect("form button.govuk-button")[-1]) == "Send the incident history"


def test_no_declaration_can_show_a_partner_the_applicant_or_another_agencys_entries(service):
    from engine.accounts import require_user

    walker = at_verification(service)
    walker.verify(application_incidents(service, walker))
    walker.confirm()
    walker.schedule_panel(START.date() + timedelta(days=21))
    schema = {"x-ui": {"context": [
        {"key": "applicant", "title": "Applicant"},
        {"key": "applicant.email", "title": "Email"},
        {"kind": "facts", "title": "Facts", "rows": [{"label": "Phone", "key": "applicant.phone"},
                                                     {"label": "Received", "case": "received_on"}]},
        {"key": "histories", "title": "Histories", "heading": "agency"}]}}
    with service.sessions() as db:
        task = db.get(HumanTask, task_id(walker, "case_summary", "police"))
        police = require_user(db, "police@demo.test")
        coordinator = require_user(db, "coordinator@demo.test")
        as_partner = task_context(db, task, schema, police)
        as_coordinator = task_context(db, task, schema, coordinator)
    assert [item["value"] if "value" in item else item["rows"] for item in as_partner[:3]] == \
        [None, None, [{"label": "Phone", "value": None}, {"label": "Received", "value": "2026-03-02"}]]
    assert [card["heading"] for card in as_partner[3]["value"]["cards"]] == ["Exampleshire Police"]
    assert as_coordinator[1]["value"] == "applicant@example.org"
    assert sorted(card["heading"] for card in as_coordinator[3]["value"]["cards"]) == \
        ["Exampleshire Police", "Exampleton District Council"]


# ----- what the button says -------------------------------------------------------------------------

def test_every_form_says_what_its_button_does():
    owned_elsewhere = {"application.json", "victim_consent.json"}  # their own pages say it (apply, consent)
    for path in sorted(FORMS.glob("*.json")):
        if path.name in owned_elsewhere:
            continue
        label = json.loads(path.read_text())["x-ui"].get("submit")
        assert isinstance(label, str) and label and label != "Submit", path.name


def test_a_form_without_button_words_gets_a_plain_default(app, service, monkeypatch):
    from engine.versions import compiled

    walker = at_verification(service)
    with service.sessions() as db:
        case = db.scalar(select(Case).where(Case.reference == walker.reference))
        forms = compiled(db, case.process_version_id).forms
    schema = forms["verify_incidents.json"]
    monkeypatch.setitem(forms, "verify_incidents.json", {**schema, "x-ui": {
        k: v for k, v in schema["x-ui"].items() if k != "submit"}})
    html = page(client_for(app, "coordinator@demo.test").get(f"/tasks/{task_id(walker, 'verify_incidents')}"))
    assert words(html.cssselect("form button.govuk-button")[-1]) == "Complete the task"


# ----- the renderer: a named option list inside add-another items ----------------------------------

def test_a_select_of_agencies_inside_add_another_items_round_trips():
    schema = json.loads((FORMS / "verify_incidents.json").read_text())
    agencies = {"agencies": [("council", "Exampleton District Council"), ("police", "Exampleshire Police")]}
    values = {"verified_incidents": [
        {"occurred_on": "2026-02-01", "reported_on": "2026-02-02", "reported_to": "police", "description": "One",
         "hate": False},
        {"occurred_on": "2026-02-03", "reported_on": "2026-02-04", "reported_to": "council", "description": "Two",
         "hate": True}]}
    import lxml.html

    html = lxml.html.fromstring(str(render_fields(schema, values, choices=agencies)))
    posted = {}
    for index, expected in enumerate(("police", "council")):
        select_ = html.get_element_by_id(f"verified_incidents-{index}-reported_to")
        assert [(o.get("value"), o.text) for o in select_.cssselect("option")] == [
            ("", "Select an option"), ("council", "Exampleton District Council"), ("police", "Exampleshire Police")]
        assert [o.get("value") for o in select_.cssselect("option[selected]")] == [expected]
    for element in html.cssselect("input, textarea, select"):
        name = element.get("name")
        if element.tag == "select":
            posted[name] = element.cssselect("option[selected]")[0].get("value")
        elif element.get("type") == "radio":
            if element.get("checked") is not None:
                posted[name] = element.get("value")
        elif element.tag == "textarea":
            posted[name] = element.text or ""
        elif name:
            posted[name] = element.get("value") or ""
    from werkzeug.datastructures import MultiDict

    data, action = parse_submission(schema, MultiDict(posted))
    assert action is None
    assert data["verified_incidents"] == values["verified_incidents"]


# ----- the studio's form check knows the vocabulary --------------------------------------------------

@pytest.mark.parametrize("hints, message", [
    ({"context": {"key": "histories"}}, "x-ui.context must be a list"),
    ({"context": [{"key": "histories"}]}, "x-ui.context item 1 needs a title"),
    ({"context": [{"kind": "gossip", "title": "Rumours"}]}, "kind 'gossip' is not one of"),
    ({"context": [{"title": "Notes", "key": "notes; drop table"}]}, "key must be a path into the task's data"),
    ({"context": [{"kind": "timeline", "title": "History", "key": "history"}]}, "'key' is not read for kind 'timeline'"),
    ({"context": [{"kind": "threshold", "title": "Result"}]}, "result must be a path into the task's data"),
    ({"context": [{"kind": "facts", "title": "Dates", "rows": [{"label": "When", "case": "birthday"}]}]},
     "case is 'birthday'; the case facts are"),
    ({"context": [{"kind": "facts", "title": "Dates", "rows": [{"label": "When", "key": "a", "letter": "b"}]}]},
     "exactly one of key, case, letter"),
    ({"context": [{"title": "Cards", "key": "histories", "labels": {"agency": 3}}]}, "labels must map member names"),
    ({"prefill": {"notes": "incidents"}}, "x-ui.prefill names 'notes', which is not a property"),
    ({"prefill": {"verified_incidents": "__class__"}}, "x-ui.prefill.verified_incidents must be a path"),
    ({"submit": ""}, "x-ui.submit is the button's words"),
    ({"submit": "x" * 61}, "x-ui.submit is the button's words"),
    ({"options": {"verified_incidents": "people"}}, "x-ui.options.verified_incidents is 'people'"),
])
def test_the_studio_refuses_a_declaration_the_task_page_cannot_follow(hints, message):
    from engine.studio.formcheck import ui_problems

    schema = json.loads((FORMS / "verify_incidents.json").read_text())
    assert ui_problems("forms/verify_incidents.json", schema) == []
    schema["x-ui"] = {**schema["x-ui"], **hints}
    problems = [p.message for p in ui_problems("forms/verify_incidents.json", schema)]
    assert any(message in p for p in problems), problems


def test_a_timeline_beside_a_partners_form_leaves_out_what_their_case_timeline_does(service):
    """The same rule as the case page's Timeline: no page views, no downloads of the applicant's letters."""
    from engine import audit
    from engine.accounts import require_user

    walker = Walker(service, service.apply(application(START.date()))["reference"])
    with service.transaction() as db:
        case = db.scalar(select(Case).where(Case.reference == walker.reference))
        audit.record(db, at=service.now(), actor="coordinator@demo.test", event="letter_downloaded",
                     case_id=case.id, stage_before=case.stage, stage_after=case.stage, detail={"letter": 1})
    schema = {"x-ui": {"context": [{"kind": "timeline", "title": "What has happened"}]}}
    with service.sessions() as db:
        task = db.get(HumanTask, task_id(walker, "provide_incident_history", "police"))
        events = lambda user: [h["event"] for h in task_context(db, task, schema, user)[0]["history"]]  # noqa: E731
        as_partner = events(require_user(db, "police@demo.test"))
        as_coordinator = events(require_user(db, "coordinator@demo.test"))
    assert "letter_downloaded" in as_coordinator
    assert "letter_downloaded" not in as_partner and "application_received" in as_partner
