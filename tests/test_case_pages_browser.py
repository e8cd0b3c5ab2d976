"""The case page's sections, the case list, the confirmation and reassign pages, the reports and
the audit trail in a real browser: each page checked with axe-core and at 320 CSS pixels wide
(browser_support.py), and worked with the keyboard where it asks for something."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine.scenarios import Walker, application

from .browser_support import PASSWORD
from .conftest import START

pytestmark = pytest.mark.browser
TODAY = START.date()
SECTIONS = ["Summary", "Incidents and threshold", "Action plan", "Letters and documents", "Timeline", "Process"]


def delivering_case(service) -> str:
    reference = service.apply(application(TODAY, name="Jordan Lee", postcode="EX1 1AA"))["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(application(TODAY)["incidents"])
    walker.confirm()
    walker.schedule_panel(TODAY + timedelta(days=10))
    walker.panel_inputs()
    walker.outcome([{"description": "Joint visit to the neighbour", "agency": "police", "owner": "PC Evans",
                     "due": (TODAY + timedelta(days=28)).isoformat()},
                    {"description": "Noise monitoring for a month", "agency": "council", "owner": "Noise team",
                     "due": (TODAY + timedelta(days=35)).isoformat()}])
    return reference


def test_each_section_of_a_case_for_the_coordinator_and_a_partner(site):
    reference = delivering_case(site.service)
    for email in ("coordinator@demo.test", "police@demo.test"):
        person = site.signed_in(email)
        person.open(f"/cases/{reference}")
        for name in SECTIONS:
            shown = "Documents" if name == "Letters and documents" and email.startswith("police") else name
            link = person.page.locator("nav.moj-sub-navigation").get_by_role("link", name=shown, exact=True)
            person.navigates(link.click)  # checked: axe, and no sideways scrolling at 320px
            assert person.page.locator("nav.moj-sub-navigation [aria-current=page]").inner_text() == shown
            assert person.heading() == f"Case {reference} Open"
        person.open(f"/cases/{reference}/actions")
        assert ("Noise monitoring" in person.main_text()) == email.startswith("coordinator")  # council's action
    site.findings.assert_clean()


def test_withdrawing_by_keyboard_with_an_error_first(site):
    reference = delivering_case(site.service)
    coordinator = site.signed_in("coordinator@demo.test")
    coordinator.open(f"/cases/{reference}")
    coordinator.navigates(lambda: coordinator.page.get_by_role("link", name="Withdraw the case on the applicant's behalf").click())
    assert coordinator.heading() == "Withdraw the case on the applicant's behalf"
    coordinator.submit("Withdraw the case")
    summary = coordinator.page.locator(".govuk-error-summary")
    assert summary.inner_text().count("Enter why the applicant is withdrawing") == 1
    summary.get_by_role("link").click()
    assert coordinator.focused()["id"] == "reason"
    coordinator.page.keyboard.type("They have moved away.")
    coordinator.submit("Withdraw the case")
    assert coordinator.heading() == f"Case {reference} Withdrawn"
    assert f"{reference} has been withdrawn." in coordinator.main_text()
    site.findings.assert_clean()


def test_reassigning_and_the_case_list(site):
    service = site.service
    reference = delivering_case(service)
    other = service.apply(application(TODAY, name="Chris Patel", reported_to="housing"))["reference"]
    coordinator = site.signed_in("coordinator@demo.test")
    coordinator.open(f"/cases/{reference}")
    coordinator.navigates(lambda: coordinator.page.get_by_role("link", name="Reassign ‘Update the action’").first.click())
    coordinator.choose("assignee", "police@demo.test")
    coordinator.submit("Reassign the task")
    assert "is now with" in coordinator.main_text()

    coordinator.open("/cases")
    coordinator.select("stage", "incident_history")
    coordinator.submit("Apply filters")
    assert coordinator.page.get_by_role("link", name=other, exact=True).count() == 1
    assert coordinator.page.get_by_role("link", name=reference, exact=True).count() == 0
    coordinator.navigates(lambda: coordinator.page.get_by_role("link", name="Next due").click())
    coordinator.open("/cases?overdue=yes&agency=police&status=open")
    assert "No cases match these filters" in coordinator.main_text()
    coordinator.open(f"/cases/{reference}/escalate")
    site.findings.assert_clean()


def test_reports_audit_trail_and_cannot_see_pages(site):
    delivering_case(site.service)
    coordinator = site.signed_in("coordinator@demo.test")
    for path in ("/reports/statutory", "/reports/dashboard", "/reports/process", "/overdue"):
        coordinator.open(path)
    coordinator.open("/reports/statutory")
    assert "This financial year so far" in coordinator.main_text()
    coordinator.open("/admin/")
    assert coordinator.heading() == "You cannot see this page"
    admin = site.visitor()
    admin.open("/sign-in?next=/admin/audit")
    admin.page.get_by_label("Email address").fill("admin@demo.test")
    admin.page.get_by_label("Password").fill(PASSWORD)
    admin.navigates(lambda: admin.page.get_by_role("button", name="Sign in").click())
    assert admin.heading() == "Audit trail"
    assert "Task done" in admin.main_text()
    site.findings.assert_clean()
