"""The public pages in a real browser, each checked with axe-core for WCAG 2.2 AA: the home
page's two ways in (apply, track your case), the footer's accessibility statement, privacy notice
and cookies page, the apply confirmation and the tracking pages with the service's contact
details. SQLite only, like the other browser tests."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.models import OutboxMessage
from engine.scenarios import application

from .browser_support import Visitor
from .conftest import START

pytestmark = pytest.mark.browser
TODAY = START.date()
FOOTER_PAGES = {"Accessibility statement": "Accessibility statement for ASB case review",
                "Privacy notice": "Privacy notice", "Cookies": "Cookies"}


def follow(person: Visitor, name: str, *, within: str = "main", role: str = "link") -> Visitor:
    return person.navigates(lambda: person.page.locator(within).get_by_role(role, name=name, exact=True).click())


def test_the_home_page_leads_to_apply_and_track_and_the_footer_pages_meet_wcag(site):
    person = site.visitor()
    person.open("/")
    assert person.heading() == "ASB case review"
    assert "Telephone: 01632 960 100" in person.main_text()  # the demo's contact details
    follow(person, "Apply for a case review", role="button")  # GOV.UK's start button: a link with role button
    assert person.heading() == "Apply for an ASB case review" and person.page.url.endswith("/apply")
    person.open("/")
    follow(person, "Track your case", role="button")
    assert person.heading() == "Get a new link to your case" and "01632 960 100" in person.main_text()

    for link, heading in FOOTER_PAGES.items():
        follow(person, link, within="footer")
        assert person.heading() == heading
    person.open("/privacy-notice")
    assert "for 6 years after it closed" in person.main_text()  # the default retention setting

    coordinator = site.signed_in("coordinator@demo.test")
    follow(coordinator, "Privacy notice", within="footer")  # staff pages have the footer too
    assert coordinator.heading() == "Privacy notice"
    site.findings.assert_clean()


def test_the_confirmation_and_tracking_pages_give_dates_and_contact_details(site):
    reference = site.service.apply(application(TODAY))["reference"]
    with site.service.sessions() as db:
        body = db.scalar(select(OutboxMessage.body).where(OutboxMessage.template == "acknowledgement"))
    path = re.search(r"https?://[^/\s]+(/track/[A-Za-z0-9_-]+)", body).group(1)
    person = site.visitor()
    person.open(path)
    text = person.main_text()
    assert reference in text and "Contact us" in text and "asb.casereview@example.org" in text
    person.open("/track/" + "A" * 43)
    assert person.heading() == "This link does not work" and "01632 960 100" in person.main_text()

    # The confirmation as the applicant sees it after sending (the session holds the reference).
    app = site.server.app
    cookie = app.session_interface.get_signing_serializer(app).dumps({"apply_reference": reference})
    applicant = site.visitor()
    applicant.context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": site.url}])
    applicant.open("/apply/confirmation")
    text = applicant.main_text()
    assert applicant.heading() == "Application sent" and reference in text
    assert "This should be done by 16 March 2026" in text and "01632 960 100" in text
    site.findings.assert_clean()
