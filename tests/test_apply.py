"""The public application journey at /apply, page by page, on SQLite and PostgreSQL (the pages'
own validation messages on SQLite only: the database plays no part in them)."""
from __future__ import annotations

import copy
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from engine import application_drafts
from engine.application_drafts import ApplicationDraft
from engine.errors import InvalidData
from engine.models import Case, HumanTask
from engine.queries import case_view
from engine.scenarios import application
from engine.worker import run_pass
from web import apply as apply_journey

from .conftest import START
from .web_helpers import make_app, page, sign_in, text_of

TODAY = START.date()
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


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


NEEDS = {"communication_needs": ["interpreter", "large_print"], "interpreter_language": "Polish"}
VICTIM_CONTACT = {"email": "pat@example.org", "phone": "", "address": "3 Green Lane, Exampleton",
                  "preferred_contact": "email"}


def fill_in(client, *, third_party=False, incidents=3, hate=False, needs=None):
    """Answer every page; return the location after the last one (check your answers)."""
    assert post_ok(client, "/apply/who", {"relationship_to_victim": "family" if third_party else "self"}) \
        == "/apply/victim"
    if third_party:
        assert post_ok(client, "/apply/victim", {"type": "individual", "name": "Pat Victim",
                                                 "postcode": "EX1 1AA"}) == "/apply/victim-contact"
        assert post_ok(client, "/apply/victim-contact", VICTIM_CONTACT) == "/apply/contact"
    else:
        assert post_ok(client, "/apply/victim", {"type": "individual", "postcode": "EX1 1AA"}) == "/apply/contact"
    assert post_ok(client, "/apply/contact", {"name": "Robin Applicant", "email": "robin@example.org",
                                              "phone": "01632 960001", "address": "", "postcode": ""}) \
        == "/apply/preferred-contact"
    assert post_ok(client, "/apply/preferred-contact", {"preferred_contact": "email", "email": "robin@example.org",
                                                        "phone": "01632 960001", "address": ""}) \
        == "/apply/communication-needs"
    nxt = post_ok(client, "/apply/communication-needs", NEEDS if needs is None else needs)
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
    for name in ("who", "victim", "victim-contact", "contact", "preferred-contact", "communication-needs", "consent",
                 "incidents", "impact"):
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
    skipped = client.get("/apply/victim-contact")
    assert skipped.status_code == 302 and skipped.headers["Location"] == "/apply/contact"
    assert page(client.get("/apply/incidents")).cssselect("a.govuk-back-link")[0].get("href") == \
        "/apply/communication-needs"


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
    assert "How we contact you Email" in body and "Help to communicate An interpreter (Polish), Large print" in body
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
                 "relationship_to_victim": "family" if third_party else "self", "preferred_contact": "email",
                 "communication_needs": ["interpreter", "large_print"], "interpreter_language": "Polish"}
    if third_party:
        applicant["consent_confirmed"] = True
    victim = {"type": "individual", "postcode": "EX1 1AA"}
    if third_party:
        victim.update(name="Pat Victim", email="pat@example.org", address="3 Green Lane, Exampleton",
                      preferred_contact="email")
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
    for name in ("who", "victim", "contact", "preferred-contact", "communication-needs", "incidents", "impact"):
        assert f"/apply/{name}?change=1" in links
    change = client.get("/apply/contact?change=1")
    doc = page(change)
    assert doc.cssselect("a.govuk-back-link")[0].get("href") == "/apply/check-answers"
    assert doc.cssselect("input[name=name]")[0].get("value") == "Robin Applicant"
    location = post_ok(client, "/apply/contact?change=1", {"name": "Robin Changed", "email": "robin@example.org"})
    assert location == "/apply/check-answers"
    assert "Robin Changed" in text_of(client.get("/apply/check-answers"))
    # Becoming a third party asks how to reach the victim and for consent before returning.
    assert post_ok(client, "/apply/who?change=1", {"relationship_to_victim": "friend"}) == \
        "/apply/victim-contact?change=1"
    assert post_ok(client, "/apply/victim-contact?change=1", {"phone": "01632 960002"}) == "/apply/consent?change=1"
    assert post_ok(client, "/apply/consent?change=1", {"consent_confirmed": "true"}) == "/apply/check-answers"


def test_engine_errors_link_to_the_page_to_fix(client, service):
    fill_in(client)
    change_draft(client, service, lambda answers: answers.pop("impact"))
    response = client.post("/apply/check-answers")
    assert response.status_code == 422
    links = page(response).cssselect(".govuk-error-summary a")
    assert [a.get("href") for a in links] == ["/apply/impact?change=1#impact"]
    assert count_cases(service) == 0


@sqlite_only
def test_a_missing_preferred_detail_leads_to_the_choice_and_messages_come_once_in_page_order(client, service):
    fill_in(client, incidents=1)

    def lose_details(answers):
        del answers["applicant"]["email"], answers["applicant"]["phone"], answers["applicant"]["name"]
    change_draft(client, service, lose_details)
    response = client.post("/apply/check-answers")
    assert response.status_code == 422
    links = [(a.get("href"), a.text_content()) for a in page(response).cssselect(".govuk-error-summary a")]
    assert links == [("/apply/contact?change=1#name", "Enter the full name"),
                     ("/apply/contact?change=1#phone", "Enter an email address, a phone number or a postal address"),
                     ("/apply/preferred-contact?change=1#email", "Enter your email address")]


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


# ----- answers kept in the database ----------------------------------------------------------

def draft_key(client) -> str:
    with client.session_transaction() as session:
        return session[apply_journey.DRAFT_KEY]


def change_draft(client, service, change) -> None:
    """Change the stored answers behind the browser's back (as a later code path or a bug might)."""
    with service.transaction() as db:
        draft = application_drafts.load(db, draft_key(client), service.now())
        answers = copy.deepcopy(draft.answers)
        change(answers)
        draft.answers = answers


def count_drafts(service) -> int:
    with service.sessions() as db:
        return db.scalar(select(func.count()).select_from(ApplicationDraft))


def session_cookie(app, client) -> tuple[str, dict]:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return cookie.value, app.session_interface.get_signing_serializer(app).loads(cookie.value)


def test_a_long_application_is_kept_in_the_database_and_the_cookie_holds_only_its_key(app, client, service):
    fill_in(client, incidents=1)
    long_incidents = {}
    for index in range(30):
        occurred = TODAY - timedelta(days=5 + 4 * index)
        text = f"Incident {index + 1}: " + "they shouted and banged on the door for hours. " * 50
        long_incidents.update(incident_fields(index, occurred, description=text[:1999] + "."))
    assert post_ok(client, "/apply/incidents?change=1", long_incidents) == "/apply/check-answers"
    value, content = session_cookie(app, client)
    assert set(content) <= {apply_journey.DRAFT_KEY, "csrf_token", "_fresh"} and len(value) < 300
    assert count_drafts(service) == 1

    check = page(client.get("/apply/check-answers"))
    headings = [h.text_content() for h in check.cssselect("h2.govuk-heading-m")]
    assert "Incident 30" in headings and "Incident 31" not in headings
    assert "Incident 30: they shouted" in check.text_content()
    assert client.post("/apply/check-answers").status_code == 302
    reference = page(client.get("/apply/confirmation")).cssselect(".govuk-panel strong")[0].text_content().strip()
    with service.sessions() as db:
        stored = db.scalar(select(Case).where(Case.reference == reference)).application
    assert len(stored["incidents"]) == 30
    assert all(len(i["description"]) == 2000 for i in stored["incidents"])
    assert stored["incidents"][29]["description"].startswith("Incident 30: ")
    assert count_drafts(service) == 0, "sending the application deletes its draft"


@sqlite_only
def test_nothing_typed_is_lost_going_back_and_forth_or_on_an_error(client):
    fill_in(client, incidents=1)
    typed = incident_fields(0, TODAY - timedelta(days=3), description="Broke the fence")
    typed["incidents-0-reported_on-day"] = "31"
    typed["incidents-0-reported_on-month"] = "2"  # 31 February
    assert client.post("/apply/incidents", data=typed).status_code == 422
    client.get("/apply/communication-needs")  # back a page, then forward again
    again = page(client.get("/apply/incidents"))
    assert again.cssselect("input[name='incidents-0-reported_on-day']")[0].get("value") == "31"
    assert again.cssselect("textarea[name='incidents-0-description']")[0].text_content() == "Broke the fence"
    assert not again.cssselect(".govuk-error-summary"), "the errors show when the page is sent, not on return"
    # "Add another" keeps both the first incident and the new, empty one.
    added = client.post("/apply/incidents", data={**incident_fields(0, TODAY - timedelta(days=3)),
                                                  "form-action": "add:incidents"})
    assert added.status_code == 200
    revisited = page(client.get("/apply/incidents"))
    assert revisited.cssselect("textarea[name='incidents-1-description']")
    assert revisited.cssselect("textarea[name='incidents-0-description']")[0].text_content() == \
        "Shouting and banging at night (1)."
    # The check page sends the person back to fix what is wrong, with nothing lost.
    response = client.post("/apply/check-answers")
    assert response.status_code == 422
    links = [a.get("href") for a in page(response).cssselect(".govuk-error-summary a")]
    assert links and all(link.startswith("/apply/incidents?change=1#incidents-1-") for link in links)


@sqlite_only
def test_drafts_expire_a_day_after_their_last_change(app, service, clock):
    early, late = app.test_client(), app.test_client()
    post_ok(early, "/apply/who", {"relationship_to_victim": "self"})
    clock.set(START + timedelta(hours=23))
    post_ok(late, "/apply/who", {"relationship_to_victim": "friend"})
    clock.set(START + timedelta(hours=24, minutes=1))
    assert run_pass(service)["drafts_deleted"] == 1  # the worker deletes the one left for a day
    assert count_drafts(service) == 1
    gone = page(early.get("/apply/who"))
    assert not gone.cssselect("input[name=relationship_to_victim][checked]")
    assert "Your answers were deleted because nothing had changed for 24 hours" in \
        gone.cssselect(".govuk-notification-banner")[0].text_content()
    kept = page(late.get("/apply/who"))
    assert kept.cssselect("input[name=relationship_to_victim][checked]")[0].get("value") == "friend"
    clock.set(START + timedelta(hours=48))
    assert not page(late.get("/apply/who")).cssselect("input[checked]")
    assert count_drafts(service) == 0, "an expired draft is deleted when it is next asked for"


@sqlite_only
def test_new_drafts_are_limited_per_address(app, service, monkeypatch):
    monkeypatch.setattr(apply_journey, "DRAFTS_PER_WINDOW", 2)
    first = app.test_client()
    for client in (first, app.test_client()):
        post_ok(client, "/apply/who", {"relationship_to_victim": "self"})
    assert app.test_client().post("/apply/who", data={"relationship_to_victim": "self"}).status_code == 429
    post_ok(first, "/apply/victim", {"type": "individual"})  # a person with a draft carries on
    assert count_drafts(service) == 2


# ----- how we contact the applicant, and the help they need -----------------------------------

def assert_errors_lead_to_fields(response, message: str) -> None:
    assert response.status_code == 422
    doc = page(response)
    summary = doc.cssselect(".govuk-error-summary")
    assert summary and message in summary[0].text_content(), summary[0].text_content() if summary else "none"
    for link in summary[0].cssselect("a"):
        assert doc.get_element_by_id(link.get("href").lstrip("#")) is not None
    assert message in " ".join(e.text_content() for e in doc.cssselect(".govuk-error-message"))


@sqlite_only
@pytest.mark.parametrize("data, message, kept", [
    ({}, "Select how you would like us to contact you", None),
    ({"preferred_contact": "email"}, "Enter your email address", None),
    ({"preferred_contact": "email", "email": "robin.example.org"}, "Enter the email address in the correct format",
     "robin.example.org"),
    ({"preferred_contact": "phone"}, "Enter your phone number", None),
    ({"preferred_contact": "phone", "phone": "call me"}, "Enter the phone number in the correct format", "call me"),
    ({"preferred_contact": "post", "address": ""}, "Enter your postal address", None),
    ({"preferred_contact": "pigeon"}, "Choose one of the options", None),
])
def test_preferred_contact_messages(client, data, message, kept):
    post_ok(client, "/apply/contact", {"name": "Robin", "phone": "01632 960001"})
    response = client.post("/apply/preferred-contact", data=data)
    assert_errors_lead_to_fields(response, message)
    doc = page(response)
    if kept:
        assert kept in [i.get("value") for i in doc.cssselect("input")]
    chosen = data.get("preferred_contact")
    if chosen in ("email", "phone", "post"):
        radio = doc.cssselect(f"input[name=preferred_contact][value={chosen}]")[0]
        assert radio.get("checked") is not None
        revealed = doc.get_element_by_id(radio.get("data-aria-controls"))
        detail = {"email": "email", "phone": "phone", "post": "address"}[chosen]
        assert revealed.cssselect(f"#{detail}") and revealed.cssselect(".govuk-error-message"), \
            "the detail asked for is shown under the choice, with its message"


@sqlite_only
def test_preferred_contact_uses_and_keeps_the_contact_details(client):
    post_ok(client, "/apply/contact", {"name": "Robin", "email": "robin@example.org"})
    doc = page(client.get("/apply/preferred-contact"))
    assert doc.cssselect("input#email")[0].get("value") == "robin@example.org", "filled in from the last page"
    assert [r.get("value") for r in doc.cssselect("input[name=preferred_contact]")] == ["email", "phone", "post"]
    post_ok(client, "/apply/preferred-contact", {"preferred_contact": "post", "email": "robin@example.org",
                                                 "address": "1 High Street, Exampleton"})
    contact = page(client.get("/apply/contact"))
    assert contact.cssselect("input#address")[0].get("value") == "1 High Street, Exampleton"
    assert contact.cssselect("input#email")[0].get("autocomplete") == "email"
    # Taking the address away again is refused while post is the chosen way.
    response = client.post("/apply/contact", data={"name": "Robin", "email": "robin@example.org"})
    assert_errors_lead_to_fields(response, "Enter your postal address – you asked us to contact you by post")


@sqlite_only
@pytest.mark.parametrize("data, message", [
    ({}, "Select the help you need, or select ‘No, I do not need help’"),
    ({"communication_needs": ["interpreter"]}, "Enter the language you need an interpreter for"),
    ({"communication_needs": ["interpreter"], "interpreter_language": "x" * 101},
     "The language must be 100 characters or fewer"),
    ({"communication_needs": ["other", "bsl"]}, "Describe the help you need"),
    ({"communication_needs": ["other"], "other_communication_needs": "y" * 1001},
     "Describe the help you need in 1,000 characters or fewer"),
    ({"communication_needs": ["none", "easy_read"]},
     "Select the help you need or ‘No, I do not need help’, not both"),
    ({"communication_needs": ["telepathy"]}, "Choose one of the options"),
])
def test_communication_needs_messages(client, data, message):
    response = client.post("/apply/communication-needs", data=data)
    assert_errors_lead_to_fields(response, message)
    doc = page(response)
    ticked = [box.get("value") for box in doc.cssselect("input[name=communication_needs][checked]")]
    assert ticked == [v for v in data.get("communication_needs", []) if v != "telepathy"] or \
        set(ticked) == set(data.get("communication_needs", [])) - {"telepathy"}
    for name in ("interpreter_language", "other_communication_needs"):
        if name in data:
            field = doc.get_element_by_id(name)
            assert (field.get("value") or field.text_content()) == data[name], "what was typed is kept"


@sqlite_only
def test_communication_needs_page_reveals_details_and_offers_no(client):
    doc = page(client.get("/apply/communication-needs"))
    boxes = doc.cssselect("input[name=communication_needs]")
    assert [b.get("value") for b in boxes] == ["interpreter", "large_print", "easy_read", "bsl", "other", "none"]
    assert boxes[-1].get("data-behaviour") == "exclusive"
    for value, field in (("interpreter", "interpreter_language"), ("other", "other_communication_needs")):
        box = doc.cssselect(f"input[name=communication_needs][value={value}]")[0]
        assert doc.get_element_by_id(box.get("data-aria-controls")).cssselect(f"#{field}")


@sqlite_only
def test_no_help_and_unticked_needs_are_not_sent(client, service):
    fill_in(client, incidents=1, needs={"communication_needs": ["none"]})
    assert "Help to communicate None" in text_of(client.get("/apply/check-answers"))
    # An interpreter ticked and then unticked: the language, still posted from the hidden field, is dropped.
    post_ok(client, "/apply/communication-needs?change=1",
            {"communication_needs": ["interpreter"], "interpreter_language": "Welsh"})
    post_ok(client, "/apply/communication-needs?change=1",
            {"communication_needs": ["easy_read"], "interpreter_language": "Welsh"})
    body = text_of(client.get("/apply/check-answers"))
    assert "Help to communicate Easy read" in body and "Welsh" not in body
    client.post("/apply/check-answers")
    with service.sessions() as db:
        applicant = db.scalars(select(Case)).one().application["applicant"]
    assert applicant["communication_needs"] == ["easy_read"] and "interpreter_language" not in applicant
    assert applicant["preferred_contact"] == "email"


@sqlite_only
def test_the_phone_form_asks_the_same_questions_and_the_case_page_shows_them(app, service):
    coordinator = app.test_client()
    sign_in(coordinator, "coordinator@demo.test")
    form = page(coordinator.get("/cases/new"))
    assert [r.get("value") for r in form.cssselect("input[name=applicant-preferred_contact]")] == \
        ["email", "phone", "post"]
    assert len(form.cssselect("input[name=applicant-communication_needs]")) == 5
    assert form.cssselect("input#applicant-interpreter_language") and form.cssselect("#applicant-phone")
    data = {
        "applicant-name": "Pat Phone", "applicant-phone": "01632 960001", "applicant-relationship_to_victim": "self",
        "applicant-preferred_contact": "post", "applicant-communication_needs": ["interpreter", "easy_read"],
        "victim-type": "individual", **incident_fields(0, TODAY - timedelta(days=9)), "impact": "I am frightened.",
    }
    refused = coordinator.post("/cases/new", data=data)
    assert_errors_lead_to_fields(refused, "Enter the applicant’s postal address: it is their preferred way")
    assert "Enter the language for the interpreter" in text_of(refused)
    data.update({"applicant-address": "2 Low Road, Exampleton", "applicant-interpreter_language": "Urdu"})
    created = coordinator.post("/cases/new", data=data)
    assert created.status_code == 302, text_of(created)[:2000]
    reference = created.headers["Location"].rsplit("/", 1)[1]
    summary = text_of(coordinator.get(f"/cases/{reference}"))
    assert "Preferred contact Post" in summary
    assert "Communication needs Interpreter (Urdu), Easy read" in summary
    police = app.test_client()
    sign_in(police, "police@demo.test")
    seen_by_partner = text_of(police.get(f"/cases/{reference}"))
    assert reference in seen_by_partner and "Urdu" not in seen_by_partner and "Preferred contact" not in seen_by_partner


@sqlite_only
def test_sample_applications_can_carry_contact_preference_and_needs(service):
    reference = service.apply(application(TODAY, preferred_contact="phone", communication_needs=["bsl", "other"],
                                          other_communication_needs="A carer reads letters to me."))["reference"]
    with service.sessions() as db:
        applicant = db.scalar(select(Case).where(Case.reference == reference)).application["applicant"]
    assert applicant["preferred_contact"] == "phone" and applicant["communication_needs"] == ["bsl", "other"]
    assert "preferred_contact" not in application(TODAY)["applicant"], "left out unless asked for"
    with pytest.raises(InvalidData) as refused:
        service.apply(application(TODAY, communication_needs=["interpreter"]))
    assert {"field": "applicant/interpreter_language", "message": "is required"} in refused.value.errors


# ----- the victim's own contact details, and pages for people applying for themselves -----------

def h1(response) -> str:
    [heading] = page(response).cssselect("h1")
    return " ".join(heading.text_content().split())


def test_each_question_page_has_the_question_as_its_heading(client):
    client.post("/apply/who", data={"relationship_to_victim": "friend"})
    for name, question, one_question in (
            ("who", "Who are you applying for?", True),
            ("victim", "Who is the victim?", True),
            ("victim-contact", "How can we contact the victim?", False),
            ("contact", "What are your name and contact details?", False),
            ("preferred-contact", "How would you like us to contact you?", True),
            ("communication-needs", "Do you need any help to communicate with us?", True),
            ("consent", "Has the victim agreed to this application?", True),
            ("impact", "How is the behaviour affecting the victim?", True)):
        response = client.get(f"/apply/{name}")
        assert h1(response) == question, name
        assert page(response).cssselect("title")[0].text_content().startswith(question), name
        if one_question:  # the legend or label is the heading, not a second copy of it
            heading = page(response).cssselect("h1")[0]
            assert heading.getparent().tag in ("legend", "label") or heading.cssselect("label"), name


def test_myself_is_never_asked_about_the_victim(client, service):
    assert fill_in(client) == "/apply/check-answers"
    victim_page = client.get("/apply/victim")
    assert h1(victim_page) == "Are you applying as a person, or for a business or group?"
    assert "About the victim" not in text_of(victim_page)
    assert not page(victim_page).cssselect("input[name=name]")  # your own name is on the contact page
    assert h1(client.get("/apply/impact")) == "How is the behaviour affecting you?"
    check = client.get("/apply/check-answers")
    headings = [h.text_content() for h in page(check).cssselect("h2.govuk-heading-m")]
    assert "About the victim" not in headings
    assert "Applying as A person" in text_of(check) and "Victim’s email" not in text_of(check)


def test_a_third_party_must_say_how_to_reach_the_victim_and_nothing_typed_is_lost(client):
    client.post("/apply/who", data={"relationship_to_victim": "carer"})
    empty = client.post("/apply/victim-contact", data={"email": "", "phone": "", "address": ""})
    assert empty.status_code == 422
    summary = [(a.text_content().strip(), a.get("href")) for a in page(empty).cssselect(".govuk-error-summary a")]
    assert summary == [("Give at least one way to contact the victim: an email address, a phone number or a postal "
                        "address", "#email")]
    wrong = client.post("/apply/victim-contact", data={"email": "pat at example", "phone": "01632 960002",
                                                      "preferred_contact": "post"})
    assert wrong.status_code == 422
    texts = [a.text_content().strip() for a in page(wrong).cssselect(".govuk-error-summary a")]
    assert "Enter the victim’s postal address" in texts and any("correct format" in t for t in texts)
    assert page(client.get("/apply/victim-contact")).cssselect("input[name=email]")[0].get("value") == "pat at example"
    assert page(client.get("/apply/victim-contact")).cssselect("input[name=phone]")[0].get("value") == "01632 960002"
    fine = client.post("/apply/victim-contact", data={"phone": "01632 960002", "preferred_contact": "phone"})
    assert fine.status_code == 302 and fine.headers["Location"] == "/apply/contact"


def test_check_answers_shows_the_victims_contact_details_with_change_links(client, service):
    fill_in(client, third_party=True, incidents=1, hate=True)
    check = client.get("/apply/check-answers")
    rows = {" ".join(r.cssselect("dt")[0].text_content().split()): r for r in page(check).cssselect(".govuk-summary-list__row")}
    assert rows["Victim’s email address"].cssselect("dd")[0].text_content().strip() == "pat@example.org"
    assert rows["Victim’s postal address"].cssselect("dd")[0].text_content().strip() == "3 Green Lane, Exampleton"
    assert rows["How we contact the victim"].cssselect("dd")[0].text_content().strip() == "Email"
    for key in ("Victim’s email address", "Victim’s phone number", "Victim’s postal address", "How we contact the victim"):
        assert rows[key].cssselect("a")[0].get("href") == "/apply/victim-contact?change=1"
    changed = client.post("/apply/victim-contact?change=1", data={"phone": "01632 960003", "preferred_contact": "phone"})
    assert changed.headers["Location"] == "/apply/check-answers"
    client.post("/apply/check-answers")
    reference = page(client.get("/apply/confirmation")).cssselect(".govuk-panel strong")[0].text_content().strip()
    with service.sessions() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        assert case.application["victim"] == {"type": "individual", "name": "Pat Victim", "postcode": "EX1 1AA",
                                              "phone": "01632 960003", "preferred_contact": "phone"}
        # no email for the victim: the coordinator asks them by phone
        assert [t.name for t in db.scalars(select(HumanTask).where(HumanTask.case_id == case.id))] == [
            "obtain_consent"]


def test_changing_to_someone_else_asks_how_to_reach_the_victim(client):
    fill_in(client)
    moved = client.post("/apply/who?change=1", data={"relationship_to_victim": "friend"})
    assert moved.headers["Location"] == "/apply/victim-contact?change=1"
    after = client.post("/apply/victim-contact?change=1", data={"email": "pat@example.org"})
    assert after.headers["Location"] == "/apply/consent?change=1"
    done = client.post("/apply/consent?change=1", data={"consent_confirmed": "true"})
    assert done.headers["Location"] == "/apply/check-answers"
