"""Linked cases: other cases at the same address or postcode, or naming the same people, each
with why; shown to coordinators on the case page and to nobody else."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine import retention
from engine.linked import linked_cases
from engine.models import Case
from engine.scenarios import application

from .conftest import START
from .web_helpers import make_app, page, sign_in

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def apply(service, *, applicant: str, email: str, address: str, postcode: str, victim: str | None = None) -> str:
    app = application(START.date(), name=victim or applicant, postcode=postcode, third_party=victim is not None)
    app["applicant"].update(name=applicant, email=email, address=address)
    return service.apply(app)["reference"]


@pytest.fixture
def cases(service, clock):
    made = {
        "same_victim": apply(service, applicant="Alex Morgan", email="alex@example.org", address="1 Elm Road",
                             postcode="ZZ9 9ZZ"),
        "same_postcode": apply(service, applicant="Chris Patel", email="chris@example.org", address="3 High Street",
                               postcode="ab12cd"),
        "same_address": apply(service, applicant="Jo Bloggs", email="jo@example.org", address="5 Oak Lane, Exampleton",
                              postcode="AB1 2CD"),
        "same_applicant": apply(service, applicant="Sam  Carer", email="SAM@example.org", address="9 Far Away",
                                postcode="YY1 1YY", victim="Pat Doe"),
        "unrelated": apply(service, applicant="Kim Lee", email="kim@example.org", address="2 Other Street",
                           postcode="XY1 1XY"),
        "anonymised": apply(service, applicant="Alex Morgan", email="alex@example.org", address="5 Oak Lane, Exampleton",
                            postcode="AB1 2CD"),
    }
    service.withdraw(made["anonymised"])
    with service.transaction() as db:
        retention.anonymise_case(db, db.scalar(sa.select(Case).where(Case.reference == made["anonymised"])),
                                 service.now(), actor="test", event="case_anonymised", detail={})
    # The new application: Sam applies for Alex, who lives at 5 Oak Lane.
    made["new"] = apply(service, applicant="Sam Carer", email="sam@example.org", address="5 Oak Lane, Exampleton.",
                        postcode="AB1 2CD", victim="Alex Morgan")
    return made


def test_linked_cases_say_why_each_is_linked(service, cases):
    with service.sessions() as db:
        new = db.scalar(sa.select(Case).where(Case.reference == cases["new"]))
        found = {item.reference: item.reasons for item in linked_cases(db, new)}
    assert found == {
        cases["same_victim"]: ["the same victim's name"],
        cases["same_postcode"]: ["the same postcode"],
        cases["same_address"]: ["the same postal address"],
        cases["same_applicant"]: ["the same applicant's name", "the same applicant email address"],
    }


def test_only_coordinators_see_linked_cases_on_the_case_page(service, cases):
    app = make_app(service)
    coordinator = app.test_client()
    sign_in(coordinator, "coordinator@demo.test")
    shown = page(coordinator.get(f"/cases/{cases['new']}"))
    assert shown.cssselect("h2#linked-cases")
    rows = shown.cssselect("h2#linked-cases + .app-table-scroll table tbody tr")
    links = {row.cssselect("a")[0].text_content(): " ".join(row.text_content().split()) for row in rows}
    assert set(links) == {cases[k] for k in ("same_victim", "same_postcode", "same_address", "same_applicant")}
    assert "The same postal address" in links[cases["same_address"]]
    for email in ("chair@demo.test", "police@demo.test"):
        other = app.test_client()
        sign_in(other, email)
        response = other.get(f"/cases/{cases['new']}")
        assert response.status_code == 200 and not page(response).cssselect("#linked-cases")
