"""Staff pages through Flask's test client: what each person sees, and what they may not."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.models import AuditEvent
from engine.scenarios import Walker, application

from .conftest import START
from .web_helpers import make_app, page, sign_in, text_of


@pytest.fixture
def app(service):
    return make_app(service)


@pytest.fixture
def cases(service):
    """One case waiting for partner histories (police, council) and one with housing involved."""
    first = service.apply(application(START.date(), name="Jordan Lee", postcode="EX1 1AA"))["reference"]
    second = service.apply(application(START.date(), name="Chris Patel", postcode="EX3 3CC", reported_to="housing"))["reference"]
    return first, second


def client_for(app, email):
    client = app.test_client()
    sign_in(client, email)
    return client


def test_a_wrong_password_says_so_and_points_at_the_field(app):
    client = app.test_client()
    response = client.post("/sign-in", data={"email": "police@demo.test", "password": "wrong"})
    assert response.status_code == 400
    assert "Enter a correct email address and password" in text_of(response)
    assert page(response).cssselect(".govuk-error-summary a[href='#email']")


def test_pages_need_sign_in_and_sign_out_works(app):
    client = app.test_client()
    assert client.get("/tasks").status_code == 302
    sign_in(client, "coordinator@demo.test")
    assert client.get("/tasks").status_code == 200
    client.post("/sign-out")
    assert client.get("/tasks").status_code == 302


def test_csrf_is_required_on_forms(service):
    client = make_app(service, WTF_CSRF_ENABLED=True).test_client()
    response = client.post("/sign-in", data={"email": "coordinator@demo.test", "password": "test-password"})
    assert response.status_code == 400
    form = page(client.get("/sign-in"))
    token = form.cssselect("input[name=csrf_token]")[0].get("value")
    ok = client.post("/sign-in", data={"email": "coordinator@demo.test", "password": "test-password",
                                       "csrf_token": token})
    assert ok.status_code == 302


def test_partner_inbox_shows_only_their_agency(app, cases):
    police = client_for(app, "police@demo.test")
    rows = page(police.get("/tasks")).cssselect("tbody tr")
    assert len(rows) == 2
    assert all("Provide incident history" in r.text_content() for r in rows)
    housing = client_for(app, "housing@demo.test")
    housing_rows = page(housing.get("/tasks")).cssselect("tbody tr")
    assert len(housing_rows) == 1 and cases[1] in housing_rows[0].text_content()
    fire = client_for(app, "fire@demo.test")
    response = fire.get("/tasks")
    assert "You have no tasks waiting" in text_of(response)
    assert cases[0] not in text_of(response)


def test_case_page_access_and_audit(app, service, cases):
    first, second = cases
    coordinator = client_for(app, "coordinator@demo.test")
    response = coordinator.get(f"/cases/{first}")
    assert response.status_code == 200
    body = text_of(response)
    assert "Jordan Lee" in body and "applicant@example.org" in body
    assert "Gathering incident history" in body
    # Partners: only cases their agency is involved in, without the applicant's contact details.
    housing = client_for(app, "housing@demo.test")
    assert housing.get(f"/cases/{first}").status_code == 404
    seen = housing.get(f"/cases/{second}")
    assert seen.status_code == 200 and "applicant@example.org" not in text_of(seen)
    assert client_for(app, "fire@demo.test").get(f"/cases/{second}/diagram.bpmn").status_code == 404
    with service.sessions() as db:
        views = db.scalars(select(AuditEvent).where(AuditEvent.event == "case_viewed")).all()
    assert sorted(v.actor for v in views) == ["coordinator@demo.test", "housing@demo.test"]


def test_owner_and_admin_do_not_see_cases(app, cases):
    for email in ("owner@demo.test", "admin@demo.test"):
        client = client_for(app, email)
        assert client.get("/tasks").status_code == 403
        assert client.get(f"/cases/{cases[0]}").status_code == 403


def test_completing_a_task_in_the_browser(app, service, cases):
    first, _ = cases
    police = client_for(app, "police@demo.test")
    task = next(t for t in Walker(service, first).ready("provide_incident_history") if t.agency == "police")
    form_page = police.get(f"/tasks/{task.id}")
    assert form_page.status_code == 200
    assert page(form_page).cssselect("h1")[0].text_content().strip() == "Provide incident history"
    bad = police.post(f"/tasks/{task.id}", data={"actions_taken": "x" * 20000})
    assert bad.status_code == 422
    assert page(bad).cssselect(".govuk-error-summary")
    assert "x" * 100 in bad.get_data(as_text=True)  # what was typed is kept
    done = police.post(f"/tasks/{task.id}", data={"actions_taken": "Warning letter sent."})
    assert done.status_code == 302
    again = police.post(f"/tasks/{task.id}", data={"actions_taken": "Warning letter sent."})
    assert again.status_code in (404, 409)
    council = client_for(app, "council@demo.test")
    other = next(t for t in Walker(service, first).ready("provide_incident_history") if t.agency == "council")
    assert police.get(f"/tasks/{other.id}").status_code == 403
    assert council.get(f"/tasks/{other.id}").status_code == 200


def test_diagram_state_marks_current_step(app, cases):
    coordinator = client_for(app, "coordinator@demo.test")
    state = coordinator.get(f"/cases/{cases[0]}/diagram-state.json").get_json()
    assert "provide_incident_history" in state["current"]
    assert "acknowledge" in state["completed"]
    xml = coordinator.get(f"/cases/{cases[0]}/diagram.bpmn")
    assert xml.mimetype == "application/xml" and b"case_review" in xml.data


def test_case_search(app, cases):
    coordinator = client_for(app, "coordinator@demo.test")
    found = text_of(coordinator.get("/cases?q=ex3 3cc"))
    assert cases[1] in found and cases[0] not in found
    police = client_for(app, "police@demo.test")
    assert cases[0] in text_of(police.get("/cases?q=Jordan"))
    assert cases[0] not in text_of(client_for(app, "fire@demo.test").get("/cases?q=Jordan"))


def test_coordinator_records_a_phone_application(app, service):
    coordinator = client_for(app, "coordinator@demo.test")
    form = coordinator.get("/cases/new")
    assert form.status_code == 200 and page(form).cssselect("input[name=applicant-name]")
    missing = coordinator.post("/cases/new", data={"applicant-name": "Pat Phone"})
    assert missing.status_code == 422
    assert page(missing).cssselect(".govuk-error-summary")
    assert 'value="Pat Phone"' in missing.get_data(as_text=True)
    data = {
        "applicant-name": "Pat Phone", "applicant-phone": "01632 960001", "applicant-relationship_to_victim": "self",
        "applicant-consent_confirmed": "yes", "victim-type": "individual", "victim-name": "Pat Phone",
        "incidents-0-occurred_on-day": "20", "incidents-0-occurred_on-month": "2", "incidents-0-occurred_on-year": "2026",
        "incidents-0-reported_on-day": "21", "incidents-0-reported_on-month": "2", "incidents-0-reported_on-year": "2026",
        "incidents-0-reported_to": "police", "incidents-0-description": "Shouting in the street", "incidents-0-hate": "no",
        "impact": "I am frightened.",
    }
    created = coordinator.post("/cases/new", data=data)
    assert created.status_code == 302, text_of(created)[:2000]
    reference = created.headers["Location"].rsplit("/", 1)[1]
    assert "Pat Phone" in text_of(coordinator.get(f"/cases/{reference}"))
    # For someone else: the victim's own contact details, at least one of them.
    assert page(form).cssselect("input[name=victim-email], input[name=victim-phone], textarea[name=victim-address]")
    for_someone = {**data, "applicant-relationship_to_victim": "family", "victim-name": "Vic Tim"}
    unreachable = coordinator.post("/cases/new", data=for_someone)
    assert unreachable.status_code == 422
    summary = [a.text_content().strip() for a in page(unreachable).cssselect(".govuk-error-summary a")]
    assert summary == ["Give at least one way to contact the victim: an email address, a phone number or a postal "
                       "address"]
    by_post = coordinator.post("/cases/new", data={**for_someone, "victim-preferred_contact": "post",
                                                   "victim-phone": "01632 960005"})
    assert by_post.status_code == 422
    assert "Enter the victim’s postal address: it is their preferred way to be contacted" in text_of(by_post)
    recorded = coordinator.post("/cases/new", data={**for_someone, "victim-phone": "01632 960005"})
    assert recorded.status_code == 302, text_of(recorded)[:2000]
    other = recorded.headers["Location"].rsplit("/", 1)[1]
    assert [t.name for t in Walker(service, other).ready()] == ["obtain_consent"]  # no email: the coordinator asks
    assert client_for(app, "police@demo.test").get("/cases/new").status_code == 403


def test_coordinator_withdraws_reassigns_and_sees_overdue(app, service, clock, cases):
    from datetime import timedelta

    first, second = cases
    coordinator = client_for(app, "coordinator@demo.test")
    task = next(t for t in Walker(service, second).ready() if t.agency == "housing")
    refused = coordinator.post(f"/tasks/{task.id}/assign", data={"assignee": "police@demo.test"})
    assert refused.status_code == 422
    assert "only an officer of" in text_of(refused)
    assert Walker(service, second).ready(task.name)[0].assignee is None
    given = coordinator.post(f"/tasks/{task.id}/assign", data={"assignee": "housing@demo.test"})
    assert given.status_code == 302
    assert next(t for t in Walker(service, second).ready() if t.id == task.id).assignee == "housing@demo.test"

    clock.set(clock.now() + timedelta(days=30))
    overdue = text_of(coordinator.get("/overdue"))
    assert first in overdue and "Exampleton Homes" in overdue
    empty = coordinator.post(f"/cases/{first}/withdraw", data={"reason": ""})
    assert empty.status_code == 422
    assert "Open" in text_of(coordinator.get(f"/cases/{first}"))
    assert coordinator.post(f"/cases/{first}/withdraw", data={"reason": "Moved away"}).status_code == 302
    assert "Withdrawn" in text_of(coordinator.get(f"/cases/{first}"))


def test_admin_manages_users_without_losing_history(app, service):
    admin = client_for(app, "admin@demo.test")
    assert admin.get("/admin/").status_code == 200
    bad = admin.post("/admin/users", data={"email": "not-an-email", "role": "partner"})
    assert bad.status_code == 422 and "not an email address" in text_of(bad)
    assert admin.post("/admin/users", data={"email": "new@fire.example", "role": "partner", "agency": "fire"}).status_code == 302
    from engine.models import User

    with service.sessions() as db:
        police = db.scalar(select(User).where(User.email == "police@demo.test"))
    admin.post(f"/admin/users/{police.id}/active", data={"active": "no"})
    assert app.test_client().post("/sign-in", data={"email": "police@demo.test",
                                                    "password": "test-password"}).status_code == 400
    with service.sessions() as db:
        assert db.scalar(select(User).where(User.email == "police@demo.test")).active is False
    assert client_for(app, "coordinator@demo.test").get("/admin/").status_code == 403


def test_case_page_explains_the_threshold(app, service):
    app_data = application(START.date(), incidents=2)
    old = {**app_data["incidents"][0], "occurred_on": "2025-06-01", "reported_on": "2025-06-02"}
    app_data["incidents"].append(old)
    reference = service.apply(app_data)["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(app_data["incidents"])
    walker.confirm()
    body = text_of(client_for(app, "coordinator@demo.test").get(f"/cases/{reference}/incidents"))
    assert "The threshold was not met" in body
    assert "No: reported more than 6 months before the application" in body
    assert ("What would have met it (any one of these): 1 more for “separate occasions reported in the 6 months "
            "before the application” (2 of 3)") in body
    assert "1 more for “hate incidents reported in the 6 months before the application” (0 of 1)" in body


def test_coordinator_filters_tasks_by_the_agency_involved(app, service, cases):
    first, second = cases
    for reference in cases:
        Walker(service, reference).provide_histories()  # both now wait for the coordinator to verify
    coordinator = client_for(app, "coordinator@demo.test")
    everything = page(coordinator.get("/tasks")).cssselect("tbody tr")
    assert sorted(r.cssselect("td a")[0].text for r in everything) == sorted(cases)
    housing_rows = page(coordinator.get("/tasks?agency=housing")).cssselect("tbody tr")
    assert [r.cssselect("td a")[0].text for r in housing_rows] == [second]
    assert "No tasks match these filters" in text_of(coordinator.get("/tasks?agency=fire"))


def test_a_long_inbox_is_counted_and_paged_up_to_a_cap(app, service, monkeypatch):
    from engine import queries

    for n in range(5):
        service.apply(application(START.date(), name=f"Person {n}"))
    police = client_for(app, "police@demo.test")
    caption = page(police.get("/tasks")).cssselect("caption")[0].text_content()
    assert "5 tasks" in caption
    monkeypatch.setattr(queries, "COUNT_CAP", 4)  # five police tasks, counted up to four
    caption = page(police.get("/tasks?page=99")).cssselect("caption")[0].text_content()
    assert "More than 4 tasks" in caption and "use the filters to narrow them" in caption


@pytest.mark.parametrize("email, home", [("coordinator@demo.test", "/tasks"), ("police@demo.test", "/tasks"),
                                         ("owner@demo.test", "/studio/"), ("admin@demo.test", "/admin/")])
def test_each_role_starts_on_its_own_page_after_signing_in(app, email, home):
    response = app.test_client().post("/sign-in", data={"email": email, "password": "test-password"})
    assert response.status_code == 302 and response.headers["Location"] == home


def test_the_chair_reads_the_victims_statement_and_agency_summaries_beside_the_outcome_form(app, service):
    received = START.date()
    incidents = application(received)["incidents"]
    reference = service.apply(application(received, name="Jordan Lee"))["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(incidents)
    walker.confirm()
    walker.schedule_panel(received + timedelta(days=14))
    walker.complete("case_summary", {"summary": "Two visits; a warning letter.", "incidents_held": 2,
                                     "actions_taken": "Warning letter."})
    walker.complete("impact_statement", {"statement": "I dread coming home.", "wishes_to_attend": True})
    task = walker.ready("panel_outcome")[0]
    body = page(client_for(app, "chair@demo.test").get(f"/tasks/{task.id}"))
    beside = body.cssselect("section[aria-labelledby=task-context-heading]")[0].text_content()
    assert "The victim's statement" in beside and "I dread coming home." in beside
    assert "Wishes to attend" in beside and "Yes" in beside
    assert "Agency case summaries" in beside and "Two visits; a warning letter." in beside
    assert "Exampleshire Police" in beside and "Exampleton District Council" in beside  # agencies by name


def test_the_coordinator_sees_earlier_cases_at_the_same_address_while_verifying(app, service):
    first = service.apply(application(START.date(), name="Jordan Lee", postcode="EX1 1AA"))["reference"]
    second = service.apply(application(START.date(), name="Casey Moore", postcode="EX1 1AA"))["reference"]
    Walker(service, second).provide_histories()
    task = Walker(service, second).ready("verify_incidents")[0]
    body = page(client_for(app, "coordinator@demo.test").get(f"/tasks/{task.id}"))
    linked = body.cssselect("#linked-cases + .app-table-scroll table")[0].text_content()
    assert first in linked
