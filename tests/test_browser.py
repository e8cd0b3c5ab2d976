"""The staff pages in a real browser: Debian's Chromium driven by Playwright, against the app
served from a thread with CSRF protection on. Every page a test loads is checked with axe-core
for WCAG 2.2 AA, and the console is watched for Content-Security-Policy errors, script errors
and failed loads (see browser_support.py); each test ends by asserting all of them are clean.

SQLite only: the pages are the point here, the engine's databases are covered elsewhere.
"""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone

import pytest

from engine.queries import case_view
from engine.scenarios import Walker, application
from engine.service import APPLICANT
from engine.workdays import add_working_days

from .browser_support import PASSWORD, Site, Visitor
from .conftest import START

pytestmark = pytest.mark.browser
TODAY = START.date()


def stage_of(site: Site, reference: str) -> str:
    with site.service.sessions() as db:
        return case_view(db, reference)["stage"]


# ---------------------------------------------------------------------------------------------
# 1. Signing in and the inbox
# ---------------------------------------------------------------------------------------------

def test_sign_in_shows_each_person_their_own_tasks(site):
    service = site.service
    waiting = service.apply(application(TODAY, name="Jordan Lee", postcode="EX1 1AA"))["reference"]
    verifying = service.apply(application(TODAY, name="Chris Patel", postcode="EX3 3CC",
                                          reported_to="housing"))["reference"]
    Walker(service, verifying).provide_histories()

    coordinator = site.visitor()
    coordinator.open("/sign-in")
    coordinator.page.get_by_label("Email address").fill("coordinator@demo.test")
    coordinator.page.get_by_label("Password").fill("not-the-password")
    coordinator.navigates(lambda: coordinator.page.get_by_role("button", name="Sign in").click())
    summary = coordinator.page.locator(".govuk-error-summary")
    assert "Enter a correct email address and password" in summary.inner_text()
    assert summary.get_by_role("link").get_attribute("href") == "#email"

    coordinator.sign_in("coordinator@demo.test")
    assert coordinator.heading() == "Your tasks"
    assert "Signed in as Casey Coordinator (coordinator)" in coordinator.page.inner_text("body")
    assert coordinator.inbox_rows() == [(verifying, "Verify the incident history")]

    police = site.signed_in("police@demo.test")
    assert police.inbox_rows() == [(waiting, "Provide incident history")]
    housing = site.signed_in("housing@demo.test")
    assert housing.inbox_rows() == []
    assert "You have no tasks waiting" in housing.main_text()

    police.navigates(lambda: police.page.get_by_role("button", name="Sign out").click())
    assert police.heading() == "Sign in" and "You have signed out." in police.main_text()
    police.open("/tasks")
    assert police.heading() == "Sign in", "the inbox needs signing in again"
    site.findings.assert_clean()


# ---------------------------------------------------------------------------------------------
# 2. A case from application to closure, through the pages
# ---------------------------------------------------------------------------------------------

def record_application_by_phone(coordinator: Visitor) -> str:
    coordinator.open("/cases/new")
    assert coordinator.heading() == "Record an application"
    coordinator.fill("applicant-name", "Alex Morgan")
    coordinator.choose("applicant-relationship_to_victim", "self")
    coordinator.fill("applicant-phone", "01632 960000")
    coordinator.fill("applicant-address", "1 High Street, Exampleton")
    coordinator.fill("applicant-postcode", "EX1 1AA")
    coordinator.choose("victim-type", "individual")
    coordinator.fill("victim-postcode", "EX1 1AA")
    coordinator.fill_date("incidents-0-occurred_on", TODAY - timedelta(days=27))
    coordinator.fill_date("incidents-0-reported_on", TODAY - timedelta(days=26))
    coordinator.choose("incidents-0-reported_to", "police")
    coordinator.fill("incidents-0-description", "Shouting and banging on the door at night.")
    coordinator.add("Add another incident")
    assert coordinator.page.input_value("[name='incidents-0-description']") == \
        "Shouting and banging on the door at night.", "adding an incident keeps what was typed"
    coordinator.fill_date("incidents-1-occurred_on", TODAY - timedelta(days=10))
    coordinator.fill_date("incidents-1-reported_on", TODAY - timedelta(days=9))
    coordinator.choose("incidents-1-reported_to", "council")
    coordinator.fill("incidents-1-description", "Racist abuse shouted in the street.")
    coordinator.choose("incidents-1-hate", "yes")
    coordinator.fill("impact", "I cannot sleep and I am afraid to leave my home.")
    coordinator.fill_date("received_on", TODAY)
    coordinator.submit("Record the application")
    banner = coordinator.main_text()
    found = re.search(r"Application recorded as (ASB-\d{4}-\d+)", banner)
    assert found, banner[:500]
    reference = found.group(1)
    assert coordinator.heading().startswith(f"Case {reference}")
    return reference


def provide_history(partner: Visitor, reference: str, incident: bool) -> None:
    partner.open_task(reference, "Provide incident history")
    if incident:
        partner.add("Add an incident")
        partner.fill_date("incidents-0-occurred_on", TODAY - timedelta(days=27))
        partner.fill_date("incidents-0-reported_on", TODAY - timedelta(days=26))
        partner.fill("incidents-0-reference", "CAD-1234")
        partner.fill("incidents-0-description", "Report of shouting at night; officers attended.")
        partner.choose("incidents-0-hate", "no")
    partner.fill("actions_taken", "Warning letter sent." if incident else "None")
    partner.submit("Send the incident history").completed("Provide incident history")


def verify_incidents(coordinator: Visitor, reference: str) -> None:
    coordinator.open_task(reference, "Verify the incident history")
    # The form starts with the application's incidents: the coordinator corrects, not retypes.
    assert coordinator.page.input_value("[name='verified_incidents-0-description']") == \
        "Shouting and banging on the door at night."
    assert coordinator.page.input_value("select[name='verified_incidents-0-reported_to']") == "police"
    assert coordinator.page.input_value("select[name='verified_incidents-1-reported_to']") == "council"
    assert coordinator.page.is_checked("input[name='verified_incidents-1-hate'][value='yes']")
    assert "Exampleshire Police" in coordinator.page.locator(".app-task-context").inner_text()
    coordinator.fill("verified_incidents-0-reference", "CAD-1234")
    coordinator.choose("verified_incidents-0-hate", "no")
    coordinator.fill("verification_notes", "Both confirmed from police and council records.")
    coordinator.submit("Confirm the verified incidents").completed("Verify the incident history")


def test_a_case_from_phone_application_to_closure(site):
    service, clock = site.service, site.clock
    coordinator = site.signed_in("coordinator@demo.test")
    reference = record_application_by_phone(coordinator)
    assert stage_of(site, reference) == "incident_history"

    police = site.signed_in("police@demo.test")
    council = site.signed_in("council@demo.test")
    provide_history(police, reference, incident=True)
    provide_history(council, reference, incident=False)

    verify_incidents(coordinator, reference)
    coordinator.open_task(reference, "Confirm the threshold decision")
    coordinator.choose("decision", "confirm")
    coordinator.submit("Confirm the decision").completed("Confirm the threshold decision")
    coordinator.navigates(lambda: coordinator.page.get_by_role("link", name="Incidents and threshold").click())
    assert "The threshold was met" in coordinator.main_text()

    coordinator.open_task(reference, "Arrange the panel")
    coordinator.fill_date("panel_date", TODAY + timedelta(days=14))
    coordinator.fill("panel_time", "14:30")
    coordinator.fill("chair_name", "Pat Chair")
    coordinator.fill("chair_email", "chair@demo.test")
    coordinator.choose("panel_agencies", "police")
    coordinator.choose("panel_agencies", "council")
    coordinator.submit("Arrange the panel").completed("Arrange the panel")

    for partner, held in ((police, "1"), (council, "0")):
        partner.open_task(reference, "Submit the agency case summary")
        partner.fill("summary", "Our involvement so far, in plain English.")
        partner.fill("incidents_held", held)
        partner.fill("actions_taken", "A visit and a warning letter.")
        partner.submit("Send the case summary").completed("Submit the agency case summary")

    # The applicant's side is not part of these pages: the impact statement comes by command.
    impact = Walker(service, reference).ready("impact_statement")
    assert len(impact) == 1
    service.complete(impact[0].id, APPLICANT, {"statement": "I want it to stop.", "wishes_to_attend": False})

    chair = site.signed_in("chair@demo.test")
    chair.open_task(reference, "Record the panel outcome")
    chair.add("Add an action")
    chair.fill("attendees-0", "Pat Chair (chair)")
    chair.fill("findings", "Reports were handled separately by each agency.")
    chair.fill("actions-0-description", "Joint visit to the neighbour")
    chair.select("actions-0-agency", "police")
    chair.fill("actions-0-owner", "PC Evans")
    chair.fill_date("actions-0-due", TODAY + timedelta(days=28))
    chair.fill("follow_up_working_days", "30")
    chair.submit("Record the panel outcome").completed("Record the panel outcome")
    assert stage_of(site, reference) == "action_delivery"

    police.open_task(reference, "Update the action")
    police.choose("status", "completed")
    police.fill("progress_note", "Visited with the council on Tuesday.")
    police.submit("Send the update").completed("Update the action")
    police.navigates(lambda: police.page.get_by_role("link", name="Action plan").click())
    action = police.page.locator("main table tbody tr").filter(has_text="Joint visit to the neighbour")
    assert action.locator(".govuk-tag").inner_text().strip() == "Completed"

    coordinator.open("/tasks")
    assert (reference, "Follow up with the victim") not in coordinator.inbox_rows()
    clock.set(datetime.combine(add_working_days(TODAY, 31), time(9), timezone.utc))
    assert service.fire_due_timers() >= 1

    coordinator.open_task(reference, "Follow up with the victim")
    coordinator.choose("outcome", "close")
    coordinator.fill("victim_feedback", "Much better: it has been quiet since the visit.")
    coordinator.submit("Record the follow-up").completed("Follow up with the victim")
    assert coordinator.heading() == f"Case {reference} Closed"
    assert "Stage Closed" in " ".join(coordinator.page.locator(".moj-identity-bar").inner_text().split())
    assert stage_of(site, reference) == "closed"
    coordinator.open(f"/cases/{reference}/process")
    assert coordinator.page.locator("#case-diagram .djs-element.current").count() == 0
    site.findings.assert_clean()


# ---------------------------------------------------------------------------------------------
# 3. A form with the keyboard only
# ---------------------------------------------------------------------------------------------

def test_keyboard_only_form_with_errors_that_lead_to_their_fields(site):
    service = site.service
    app = application(TODAY)
    reference = service.apply(app)["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(app["incidents"])
    task_id = walker.ready("confirm_threshold")[0].id

    person = site.visitor()
    keys = person.page.keyboard
    person.open("/sign-in")
    person.tab_to("#email")
    keys.type("coordinator@demo.test")
    keys.press("Tab")
    assert person.focused()["id"] == "password"
    keys.type(PASSWORD)
    person.navigates(lambda: keys.press("Enter"))
    assert person.heading() == "Your tasks"
    person.who = "coordinator@demo.test"
    person.tab_to(f"a[href='/tasks/{task_id}']")
    person.navigates(lambda: keys.press("Enter"))
    assert person.heading() == "Confirm the threshold decision"

    # Submitting with nothing chosen: the error summary takes the focus and links to the field.
    person.tab_to("button.govuk-button[name=form-action]")
    person.navigates(lambda: keys.press("Enter"))
    error_link = expect_error_summary(person, "#decision")
    assert "decision" in error_link["text"].lower()
    keys.press("Enter")  # an in-page link: the error summary moves the focus, no new page
    person.page.wait_for_function("() => document.activeElement && document.activeElement.id === 'decision'")

    # Space chooses the focused radio; the arrow keys move to (and choose) the next one.
    keys.press("Space")
    assert person.page.is_checked("input[name=decision][value=confirm]")
    assert not person.page.is_visible("#override_reason"), "the reason is asked only for an override"
    keys.press("ArrowDown")
    assert person.page.is_checked("input[name=decision][value=override]")
    assert person.page.is_visible("#override_reason"), "choosing override reveals the reason"
    assert person.focused()["value"] == "override"
    keys.press("Tab")
    assert person.focused()["id"] == "override_reason"
    outline = person.page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused field shows where the focus is"
    keys.type("Too short")
    keys.press("Tab")
    assert person.focused()["tag"] == "button" and person.focused()["text"] == "Confirm the decision"
    person.navigates(lambda: keys.press("Enter"))

    error_link = expect_error_summary(person, "#override_reason")
    assert "10 characters" in error_link["text"]
    keys.press("Enter")
    person.page.wait_for_function(
        "() => document.activeElement && document.activeElement.id === 'override_reason'")
    assert person.page.is_checked("input[name=decision][value=override]"), "the choice is kept"
    assert person.focused()["value"] == "Too short", "what was typed is kept"
    keys.press("Control+End")
    keys.type(": the victim is disabled and lives alone.")
    keys.press("Tab")
    assert person.focused()["text"] == "Confirm the decision"
    person.navigates(lambda: keys.press("Enter"))

    person.completed("Confirm the threshold decision")
    person.navigates(lambda: person.page.get_by_role("link", name="Incidents and threshold").click())
    text = person.main_text()
    assert "The threshold was not met (the coordinator overrode the computed result: " \
           "Too short: the victim is disabled and lives alone.)" in text
    assert stage_of(site, reference) == "safety_net"
    site.findings.assert_clean()


def expect_error_summary(person: Visitor, href: str) -> dict:
    """The GOV.UK error summary has the focus, and Tab moves to its first link, to `href`."""
    page = person.page
    assert page.title().startswith("Error: ")
    page.wait_for_function("() => document.activeElement && "
                           "document.activeElement.classList.contains('govuk-error-summary')")
    page.keyboard.press("Tab")
    link = person.focused()
    assert link["tag"] == "a" and link["href"] == href, link
    return link


# ---------------------------------------------------------------------------------------------
# 4. The case diagram
# ---------------------------------------------------------------------------------------------

def test_case_diagram_highlights_the_current_step(site):
    service = site.service
    reference = service.apply(application(TODAY))["reference"]
    Walker(service, reference).provide_histories()

    coordinator = site.signed_in("coordinator@demo.test")
    coordinator.open(f"/cases/{reference}/process")  # waits for #case-diagram[data-ready=true]
    diagram = coordinator.page.locator("#case-diagram")
    assert diagram.locator("svg").count() >= 1
    current = diagram.locator(".djs-element.current")
    assert [current.nth(i).get_attribute("data-element-id") for i in range(current.count())] == \
        ["verify_incidents"]
    assert diagram.locator(".djs-element.completed[data-element-id=provide_incident_history]").count() == 1
    # app.css draws the current step in GOV.UK blue (so the stylesheet was allowed and applied).
    stroke = coordinator.page.evaluate(
        "() => getComputedStyle(document.querySelector("
        "'#case-diagram .djs-element.current .djs-visual > :first-child')).stroke")
    assert stroke == "rgb(29, 112, 184)"

    police = site.signed_in("police@demo.test")
    police.open(f"/cases/{reference}/process")
    assert police.page.locator("#case-diagram .djs-element.current[data-element-id=verify_incidents]").count() == 1
    site.findings.assert_clean()


# ---------------------------------------------------------------------------------------------
# 5. The other pages, each checked with axe
# ---------------------------------------------------------------------------------------------

def test_other_pages_and_error_states_meet_wcag(site):
    service = site.service
    reference = service.apply(application(TODAY, name="Jordan Lee", postcode="EX1 1AA"))["reference"]

    visitor = site.visitor()
    visitor.open("/")
    assert visitor.heading() == "ASB case review"
    visitor.open("/no-such-page")
    assert visitor.heading() == "Page not found"

    coordinator = site.signed_in("coordinator@demo.test")
    coordinator.open("/tasks?stage=panel")
    assert "No tasks match these filters" in coordinator.main_text()
    coordinator.open("/cases")
    assert coordinator.page.get_by_role("link", name=reference).count() == 1
    coordinator.open("/cases?q=nobody+called+this")
    assert "No cases match" in coordinator.main_text()
    coordinator.open("/overdue")
    assert coordinator.heading() == "Overdue work"

    coordinator.open("/account/password")
    coordinator.fill("new", "short")
    coordinator.submit("Change password")
    assert coordinator.page.locator(".govuk-error-summary").count() == 1

    coordinator.open("/cases/new")
    coordinator.submit("Record the application")
    summary = coordinator.page.locator(".govuk-error-summary")
    assert summary.get_by_role("link").count() >= 3, summary.inner_text()

    coordinator.open("/cases/ASB-2099-99999")
    assert coordinator.heading() == "Page not found"
    site.findings.assert_clean()


def test_public_application_pages_meet_wcag_at_phone_width(site):
    visitor = site.visitor()
    visitor.page.set_viewport_size({"width": 375, "height": 740})
    visitor.open("/apply")
    assert "case review" in visitor.heading().lower()
    visitor.navigates(lambda: visitor.page.get_by_role("button", name="Start now").click())
    visitor.navigates(lambda: visitor.page.get_by_role("button", name="Continue").first.click())
    assert visitor.page.locator(".govuk-error-summary").count() == 1
    site.findings.assert_clean()
