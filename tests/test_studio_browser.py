"""The process studio in a real browser (Debian's Chromium through Playwright, axe-core on every
page, the console watched for CSP and script errors; see browser_support.py): a process owner
opens a draft, the bpmn-js modeler draws the diagram and saves it back, the properties and form
pages change a timer and a label, the draft is published with a note, and a new case runs the
new version while a case started before keeps the old one."""
from __future__ import annotations

from datetime import datetime, time, timezone

import pytest
from sqlalchemy import select

from engine.models import Case, Timer
from engine.scenarios import application
from engine.workdays import add_working_days

from .browser_support import PASSWORD, Site
from .conftest import START

pytestmark = pytest.mark.browser
TODAY = START.date()
NEW_LABEL = "What your agency has already done"


def reminder_due(site: Site, reference: str) -> datetime:
    with site.service.sessions() as db:
        return db.scalar(select(Timer.due_at).join(Case, Timer.case_id == Case.id)
                         .where(Case.reference == reference, Timer.name == "history_reminder"))


def test_owner_changes_a_timer_and_a_label_publishes_and_new_cases_follow(site):
    before = site.service.apply(application(TODAY, name="Jordan Lee", postcode="EX1 1AA"))["reference"]

    owner = site.visitor()
    owner.open("/sign-in?next=/studio/")
    owner.page.get_by_label("Email address").fill("owner@demo.test")
    owner.page.get_by_label("Password").fill(PASSWORD)
    owner.navigates(lambda: owner.page.get_by_role("button", name="Sign in").click())
    owner.who = "owner@demo.test"
    assert owner.heading() == "Process studio"
    page = owner.page
    owner.navigates(lambda: page.get_by_role("button", name="Start a draft").click())
    draft_url = owner._path()
    assert "started from version 1" in owner.main_text()

    # The modeler draws the diagram, outlines a wanted element, and saves the XML back to the draft.
    with page.expect_navigation():
        page.get_by_role("link", name="Diagram editor for processes/case_review.bpmn").click()
    page.wait_for_selector("#studio-modeler[data-ready=true]", state="attached")
    owner.checked()
    shapes = page.locator("#studio-modeler svg g.djs-element.djs-shape")
    assert shapes.count() > 40
    assert page.locator('#studio-modeler svg g[data-element-id="provide_incident_history"]').count() == 1
    page.get_by_role("button", name="Save to the draft").click()
    page.wait_for_function("() => document.getElementById('studio-modeler-status').textContent.startsWith('Saved')")
    page.goto(f"{draft_url}/model/processes/case_review.bpmn?element=history_reminder")
    page.wait_for_selector("#studio-modeler[data-ready=true]", state="attached")
    owner.checked()
    assert page.locator('g.app-modeler__wanted[data-element-id="history_reminder"]').count() == 1
    assert "history_reminder is selected" in page.locator("#studio-modeler-status").inner_text()

    page.goto(f"{draft_url}/model/processes/threshold.dmn")
    page.wait_for_selector("#studio-modeler[data-ready=true]", state="attached")
    owner.checked()
    assert page.locator("#studio-modeler .tjs-table").count() == 1  # the decision table view

    # A timer's working days and a form's label, on plain pages.
    owner.open(f"{draft_url}/properties/processes/case_review.bpmn")
    owner.navigates(lambda: page.get_by_role("link", name="Change ‘Reminder after 5 working days’").click())
    page.get_by_label("Number of days").fill("7")
    owner.navigates(lambda: page.get_by_role("button", name="Save").click())
    assert "now waits 7 working days" in owner.main_text()

    owner.open(f"{draft_url}/forms/incident_history.json")
    owner.navigates(lambda: page.get_by_role("link", name="Change ‘Actions already taken’").click())
    page.get_by_label("Label (the question people see)").fill(NEW_LABEL)
    owner.navigates(lambda: page.get_by_role("button", name="Preview").click())
    assert page.locator(".app-form-preview").get_by_label(NEW_LABEL).count() == 1
    owner.navigates(lambda: page.get_by_role("button", name="Save field").click())
    assert page.locator(".app-form-preview").get_by_label(NEW_LABEL).count() == 1

    # Check, then publish with a note.
    owner.open(f"{draft_url}/check")
    assert "No problems found" in owner.main_text()
    owner.navigates(lambda: page.get_by_role("link", name="Publish").click())
    page.get_by_label("What changed and why").fill("Remind agencies after 7 working days; clearer question")
    owner.navigates(lambda: page.get_by_role("button", name="Publish").click())
    assert "Version 2 is published" in owner.main_text()
    owner.navigates(lambda: page.get_by_role("link", name="What changed in version 2").click())
    assert "working_days_from_now(7)" in owner.main_text()

    # A new case runs version 2; the case started before still runs version 1.
    after = site.service.apply(application(TODAY, name="Chris Patel", postcode="EX3 3CC"))["reference"]
    nine = time(9, 0, tzinfo=timezone.utc)
    assert reminder_due(site, after) == datetime.combine(add_working_days(TODAY, 7), nine)
    assert reminder_due(site, before) == datetime.combine(add_working_days(TODAY, 5), nine)
    police = site.signed_in("police@demo.test")
    police.open_task(after, "Provide incident history")
    assert police.page.get_by_label(NEW_LABEL).count() == 1
    police.open_task(before, "Provide incident history")
    assert police.page.get_by_label("Actions already taken").count() == 1
    assert police.page.get_by_label(NEW_LABEL).count() == 0

    # dmn-js 17's bundle carries Inferno's development build, which says so with console.error
    # when the bundle loads: a notice about the vendor file, not a fault of the page.
    site.findings.console_errors = [e for e in site.findings.console_errors
                                    if "development build of Inferno" not in e]
    site.findings.assert_clean()
