"""The public application journey at /apply, page by page, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from engine.models import Case
from engine.queries import case_view

from .conftest import START
from .web_helpers import make_app, page, text_of

TODAY = START.date()


@pytest.fixture
def app(service):
    return make_app(service)


@pytest.fixture
def client(app):
    return app.test_client()


def date_fields(prefix: str, day: date) -> dict:
    return {f"{prefix}-day": str(day.day), f"{prefix}-month": str(day.month), f"{prefix}-year": str(day.year)}


def incident_fields(index: int, occurred: date, *, reported_to="police", hate=False, description=None) -> dict:
    return {
        **date_fields(f"incidents-{index}-occurred_on", occurred),
        **date_fields(f"incidents-{index}-reported_on", occurred + timedelta(days=1)),
        f"incidents-{index}-reported_to": reported_to,
        f"incidents-{index}-reference": f"REF-{index + 1}",
        f"incidents-{index}-description": description or f"Shouting and banging at night ({index + 1}).",
        f"incidents-{index}-hate": "true" if hate else "false",
    }


def post_ok(client, url, data):
    response = client.post(url, data=data)
    assert response.status_code == 302, text_of(response)[:1500]
    return response.headers["Location"]


def count_cases(service) -> int:
    with service.sessions() as db:
        return db.scalar(select(func.count()).select_from(Case))


def fill_in(client, *, third_party=False, incidents=3, hate=False):
    """Answer every page; return the location after the last one (check your answers)."""
    assert post_ok(client, "/apply/who", {"relationship_to_victim": "family" if third_party else "self"}) \
        == "/apply/victim"
    assert post_ok(client, "/apply/victim", {"type": "individual", "name": "Pat Victim" if third_party else "",
                                             "postcode": "EX1 1AA"}) == "/apply/contact"
    nxt = post_ok(client, "/apply/contact", {"name": "Robin Applicant", "email": "robin@example.org",
                                            "phone": "01632 960001", "address": "", "postcode": ""})
    if third_party:
        assert nxt == "/apply/consent"
        nxt = post_ok(client, "/apply/consent", {"consent_confirmed": "true"})
    assert nxt == "/apply/incidents"
    fields = {}
    for index in range(incidents):
        occurred = TODAY - timedelta(days=7 + 20 * (incidents - 1 - index))
        fields.update(incident_fields(index, occurred, hate=hate and index == incidents - 1,
                                      reported_to="housing" if index == 1 else "police"))
    assert post_ok(client, "/apply/incidents", fields) == "/apply/impact"
    return post_ok(client, "/apply/impact", {"impact": "We cannot sleep and are afraid to go out."})


def test_every_page_renders(client):
    start = client.get("/apply")
    assert start.status_code == 200
    body = text_of(start)
    assert "Apply for an ASB case review" in body and "with their agreement" in body
    button = page(start).cssselect("a.govuk-button--start")
    assert button and button[0].get("href") == "/apply/who"
    client.post("/apply/who", data={"relationship_to_victim": "friend"})
    for name in ("who", "victim", "contact", "consent", "incidents", "impact"):
        response = client.get(f"/apply/{name}")
        assert response.status_code == 200, name
        doc = page(response)
        assert doc.cssselect("a.govuk-back-link"), name
        assert doc.cssselect("form input[name=website]"), name
        assert doc.cssselect("div.govuk-visually-hidden[aria-hidden=true] input[tabindex='-1']"), name
    assert "received_on" not in client.get("/apply/contact").get_data(as_text=True)
    check = client.get("/apply/check-answers")
    assert check.status_code == 200 and page(check).cssselect(".govuk-summary-list")
    assert client.get("/apply/nonsense").status_code == 404


def test_consent_page_is_skipped_for_victims(client):
    client.post("/apply/who", data={"relationship_to_victim": "self"})
    response = client.get("/apply/consent")
    assert response.status_code == 302 and response.headers["Location"] == "/apply/incidents"
    assert page(client.get("/apply/incidents")).cssselect("a.govuk-back-link")[0].get("href") == "/apply/contact"


@pytest.mark.parametrize("name, data, message, typed", [
    ("who", {}, "Select who you are applying for", None),
    ("victim", {"postcode": "!!not a postcode"}, "Select", "!!not a postcode"),
    ("contact", {"name": "", "email": "not-an-email"}, "Enter", "not-an-email"),
    ("contact", {"name": "Robin"}, "email", "Robin"),
    ("consent", {"consent_confirmed": "false"}, "only apply for someone else if they agree", None),
    ("impact", {"impact": ""}, "Enter", None),
])
def test_validation_errors_show_in_a_summary_and_keep_values(client, name, data, message, typed):
    client.post("/apply/who", data={"relationship_to_victim": "carer"})
    response = client.post(f"/apply/{name}", data=data)
    assert response.status_code == 422
    doc = page(response)
    summary = doc.cssselect(".govuk-error-summary")
    assert summary and message in summary[0].text_content()
    for link in summary[0].cssselect("a"):
        target = link.get("href").lstrip("#")
        assert doc.get_element_by_id(target) is not None
    assert doc.cssselect(".govuk-error-message")
    if typed:
        assert typed in response.get_data(as_text=True)


def test_incident_errors_keep_typed_values_and_add_another(client):
    fields = incident_fields(0, TODAY - timedelta(days=3), description="Broke the fence")
    fields["incidents-0-reported_on-day"] = "31"
    fields["incidents-0-reported_on-month"] = "2"  # 31 February
    response = client.post("/apply/incidents", data=fields)
    assert response.status_code == 422
    doc = page(response)
    assert doc.cssselect(".govuk-error-summary a[href^='#incidents-0-reported_on']")
    assert doc.cssselect("input[name='incidents-0-reported_on-day']")[0].get("value") == "31"
    assert "Broke the fence" in response.get_data(as_text=True)
    # Reported after it happened: the engine's date rules, shown on this page against incident 1.
    later = {**incident_fields(0, TODAY - timedelta(days=3)), **date_fields("incidents-0-reported_on", TODAY + timedelta(days=2))}
    future = client.post("/apply/incidents", data=later)
    assert future.status_code == 422
    assert page(future).cssselect(".govuk-error-summary a[href^='#incidents-0-reported_on']")
    # Add another keeps the first incident and shows a second, without errors.
    added = client.post("/apply/incidents", data={**incident_fields(0, TODAY - timedelta(days=3)),
                                                  "form-action": "add:incidents"})
    assert added.status_code == 200
    doc = page(added)
    assert not doc.cssselect(".govuk-error-summary")
    assert doc.cssselect("textarea[name='incidents-1-description']")
    assert "Shouting and banging at night (1)." in added.get_data(as_text=True)


def test_victim_journey_creates_the_case(client, service):
    assert fill_in(client) == "/apply/check-answers"
    check = client.get("/apply/check-answers")
    body = text_of(check)
    assert "Robin Applicant" in body and "robin@example.org" in body and "Housing provider" in body
    assert "appear to meet the threshold" in body and "do not appear" not in body
    done = client.post("/apply/check-answers")
    assert done.status_code == 302 and done.headers["Location"] == "/apply/confirmation"
    confirmation = client.get("/apply/confirmation")
    panel = page(confirmation).cssselect(".govuk-panel")
    assert panel
    reference = panel[0].cssselect("strong")[0].text_content().strip()
    with service.sessions() as db:
        view = case_view(db, reference)
        stored = db.scalar(select(Case).where(Case.reference == reference))
        assert stored.applicant_name == "Robin Applicant" and stored.victim_name == "Robin Applicant"
        assert stored.application == expected_application(third_party=False, incidents=3)
    assert view["route"] == "victim" and view["status"] == "open"
    assert {"police", "council", "housing"} <= set(view["agencies"])
    assert view["received_on"] == TODAY.isoformat()
    assert view["history"][0]["event"] == "application_received" and view["history"][0]["actor"] == "applicant"
    # The answers are gone from the session once sent.
    again = text_of(client.get("/apply/check-answers"))
    assert "Robin Applicant" not in again


def test_third_party_journey_creates_the_case(client, service):
    fill_in(client, third_party=True, incidents=1, hate=True)
    body = text_of(client.get("/apply/check-answers"))
    assert "A family member" in body and "The victim agrees Yes" in body and "Pat Victim" in body
    assert "appear to meet the threshold" in body  # one hate incident meets it
    client.post("/apply/check-answers")
    reference = page(client.get("/apply/confirmation")).cssselect(".govuk-panel strong")[0].text_content().strip()
    with service.sessions() as db:
        view = case_view(db, reference)
        stored = db.scalar(select(Case).where(Case.reference == reference))
        assert stored.application == expected_application(third_party=True, incidents=1, hate=True)
        assert stored.victim_name == "Pat Victim"
    assert view["route"] == "third_party" and view["status"] == "open"
    assert {"police", "council"} <= set(view["agencies"])


def expected_application(*, third_party: bool, incidents: int, hate: bool = False) -> dict:
    """What fill_in typed, as application.json data."""
    items = []
    for index in range(incidents):
        occurred = TODAY - timedelta(days=7 + 20 * (incidents - 1 - index))
        items.append({"occurred_on": occurred.isoformat(), "reported_on": (occurred + timedelta(days=1)).isoformat(),
                      "reported_to": "housing" if index == 1 else "police", "reference": f"REF-{index + 1}",
                      "description": f"Shouting and banging at night ({index + 1}).",
                      "hate": hate and index == incidents - 1})
    applicant = {"name": "Robin Applicant", "email": "robin@example.org", "phone": "01632 960001",
                 "relationship_to_victim": "family" if third_party else "self"}
    if third_party:
        applicant["consent_confirmed"] = True
    victim = {"type": "individual", "postcode": "EX1 1AA"}
    if third_party:
        victim["name"] = "Pat Victim"
    return {"applicant": applicant, "victim": victim, "incidents": items,
            "impact": "We cannot sleep and are afraid to go out."}


def test_threshold_hint_not_met_is_not_a_dead_end(client, service):
    fill_in(client, incidents=2)
    check = client.get("/apply/check-answers")
    hint = page(check).get_element_by_id("threshold-hint").text_content()
    assert "do not appear to meet the threshold" in hint
    assert "still" in hint and "look at" in hint
    assert page(check).cssselect("form button.govuk-button")  # they can still send it
    assert client.post("/apply/check-answers").status_code == 302
    assert count_cases(service) == 1


def test_change_links_go_back_to_the_page_and_return(client):
    fill_in(client)
    doc = page(client.get("/apply/check-answers"))
    links = {a.get("href") for a in doc.cssselect(".govuk-summary-list__actions a")}
    for name in ("who", "victim", "contact", "incidents", "impact"):
        assert f"/apply/{name}?change=1" in links
    change = client.get("/apply/contact?change=1")
    doc = page(change)
    assert doc.cssselect("a.govuk-back-link")[0].get("href") == "/apply/check-answers"
    assert doc.cssselect("input[name=name]")[0].get("value") == "Robin Applicant"
    location = post_ok(client, "/apply/contact?change=1", {"name": "Robin Changed", "email": "robin@example.org"})
    assert location == "/apply/check-answers"
    assert "Robin Changed" in text_of(client.get("/apply/check-answers"))
    # Becoming a third party asks for consent before returning.
    assert post_ok(client, "/apply/who?change=1", {"relationship_to_victim": "friend"}) == "/apply/consent?change=1"
    assert post_ok(client, "/apply/consent?change=1", {"consent_confirmed": "true"}) == "/apply/check-answers"


def test_engine_errors_link_to_the_page_to_fix(client, service):
    fill_in(client)
    with client.session_transaction() as session:
        answers = session["apply"]
        del answers["impact"]
        session["apply"] = answers
    response = client.post("/apply/check-answers")
    assert response.status_code == 422
    links = page(response).cssselect(".govuk-error-summary a")
    assert [a.get("href") for a in links] == ["/apply/impact?change=1#impact"]
    assert count_cases(service) == 0


def test_honeypot_submissions_create_no_case(client, service):
    fill_in(client)
    response = client.post("/apply/check-answers", data={"website": "http://spam.example"})
    assert response.status_code == 302 and response.headers["Location"] == "/apply/confirmation"
    confirmation = client.get("/apply/confirmation")
    assert confirmation.status_code == 200 and not page(confirmation).cssselect(".govuk-panel strong")
    assert count_cases(service) == 0
    # A robot that filled the hidden field on an earlier page is dropped at the end too.
    client.post("/apply/who", data={"relationship_to_victim": "self", "website": "x"})
    fill_in(client)
    client.post("/apply/check-answers")
    assert count_cases(service) == 0


def test_final_submissions_are_rate_limited(app, service):
    for attempt in range(6):
        client = app.test_client()
        fill_in(client, incidents=1)
        response = client.post("/apply/check-answers")
        if attempt < 5:
            assert response.status_code == 302
        else:
            assert response.status_code == 429
    assert count_cases(service) == 5


def test_csrf_is_required(service):
    client = make_app(service, WTF_CSRF_ENABLED=True).test_client()
    assert client.post("/apply/who", data={"relationship_to_victim": "self"}).status_code == 400
    token = page(client.get("/apply/who")).cssselect("input[name=csrf_token]")[0].get("value")
    assert client.post("/apply/who", data={"relationship_to_victim": "self", "csrf_token": token}).status_code == 302
