"""The evidence beside a decision in a real browser: the verification and threshold pages pass
axe-core (WCAG 2.2 AA) and do not scroll sideways at 320 CSS pixels (WCAG 1.4.10), their tables
scrolling inside their own containers. SQLite only, as the other browser tests."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.models import Case
from engine.scenarios import Walker, application

from .conftest import START

pytestmark = pytest.mark.browser
HISTORY = {"incidents": [{"occurred_on": "2026-02-03", "reported_on": "2026-02-04", "reference": "CAD-7781",
                          "description": "Officers attended: music from the flat above, and shouting in the "
                                         "stairwell until 3am.", "hate": False}],
           "actions_taken": "Community protection warning issued.", "risk_notes": ""}


def fits_320(visitor) -> None:
    visitor.page.set_viewport_size({"width": 320, "height": 800})
    width = visitor.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 320, f"the page scrolls sideways: {width} CSS pixels wide"
    visitor.page.set_viewport_size({"width": 1280, "height": 1000})


def test_the_coordinator_verifies_and_confirms_with_the_evidence_beside_the_form(site):
    service = site.service
    reference = service.apply(application(START.date()))["reference"]
    walker = Walker(service, reference)
    walker.complete("provide_incident_history", HISTORY)
    coordinator = site.signed_in("coordinator@demo.test")

    coordinator.open_task(reference, "Verify the incident history")
    beside = coordinator.page.locator(".app-task-context").inner_text()
    assert "Exampleshire Police" in beside and "Exampleton District Council" in beside
    assert coordinator.page.input_value("select[name='verified_incidents-2-reported_to']") == "police"
    fits_320(coordinator)
    coordinator.select("verified_incidents-0-reported_to", "housing")  # a correction, not retyping
    coordinator.submit("Confirm the verified incidents").completed("Verify the incident history")

    coordinator.open_task(reference, "Confirm the threshold decision")
    result = coordinator.page.locator(".app-threshold-result").inner_text().strip()
    assert result == "The threshold is met."
    rows = coordinator.page.locator(".app-threshold-incidents tbody tr")
    assert rows.count() == 3 and "to Exampleton Homes" in rows.nth(0).inner_text()
    fits_320(coordinator)
    coordinator.choose("decision", "confirm")
    coordinator.submit("Confirm the decision").completed("Confirm the threshold decision")
    with service.sessions() as db:
        assert db.scalar(select(Case.threshold).where(Case.reference == reference))["met"] is True
    site.findings.assert_clean()
