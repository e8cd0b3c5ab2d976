"""The authorisation matrix: every role and agency against every case and task route."""
from __future__ import annotations

import pytest

from engine.scenarios import Walker, application

from .conftest import START
from .web_helpers import make_app, page, sign_in, text_of

ACCOUNTS = ["coordinator", "police", "council", "housing", "fire", "chair", "reviewer", "owner", "admin"]

# The case involves police and council only; its police task belongs to police officers.
EXPECTED = {
    #                 inbox case  diagram state police-task new-case overdue admin
    "coordinator": (200, 200, 200, 200, 403, 200, 200, 403),
    "police":      (200, 200, 200, 200, 200, 403, 403, 403),
    "council":     (200, 200, 200, 200, 403, 403, 403, 403),
    "housing":     (200, 404, 404, 404, 404, 403, 403, 403),
    "fire":        (200, 404, 404, 404, 404, 403, 403, 403),
    "chair":       (200, 200, 200, 200, 403, 403, 403, 403),
    "reviewer":    (200, 200, 200, 200, 403, 403, 403, 403),
    "owner":       (403, 403, 403, 403, 403, 403, 403, 403),
    "admin":       (403, 403, 403, 403, 403, 403, 403, 200),
}


@pytest.fixture
def world(service):
    reference = service.apply(application(START.date(), name="Jordan Lee"))["reference"]
    police_task = next(t for t in Walker(service, reference).ready() if t.agency == "police")
    return make_app(service), reference, police_task.id


@pytest.mark.parametrize("account", ACCOUNTS)
def test_routes_by_role_and_agency(world, account):
    app, reference, task_id = world
    client = app.test_client()
    sign_in(client, f"{account}@demo.test")
    routes = ["/tasks", f"/cases/{reference}", f"/cases/{reference}/diagram.bpmn",
              f"/cases/{reference}/diagram-state.json", f"/tasks/{task_id}", "/cases/new", "/overdue", "/admin/"]
    got = tuple(client.get(route).status_code for route in routes)
    assert got == EXPECTED[account], dict(zip(routes, got))


@pytest.mark.parametrize("account", ["housing", "fire"])
def test_nothing_leaks_to_uninvolved_agencies(world, account):
    app, reference, task_id = world
    client = app.test_client()
    sign_in(client, f"{account}@demo.test")
    for route in ("/tasks", "/cases", f"/cases?q={reference}", "/cases?q=Jordan"):
        listed = " ".join(cell.text_content() for cell in page(client.get(route)).cssselect("table td"))
        assert reference not in listed and "Jordan" not in listed
    assert "No cases match" in text_of(client.get(f"/cases?q={reference}"))
    assert client.post(f"/tasks/{task_id}", data={"actions_taken": "x"}).status_code == 404
    assert client.post(f"/tasks/{task_id}/claim").status_code == 404
    assert client.post(f"/cases/{reference}/withdraw", data={"reason": "x"}).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(world):
    app, reference, task_id = world
    client = app.test_client()
    for route in ("/tasks", f"/cases/{reference}", f"/tasks/{task_id}", "/cases/new", "/admin/"):
        response = client.get(route)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


# Later areas: the applicant's acknowledgement letter as PDF, reports, the audit trail, subject
# access and the process studio.
LATER = {
    #              letter statutory dashboard audit  sar  studio
    "coordinator": (200, 200, 200, 403, 403, 403),
    "police":      (403, 403, 403, 403, 403, 403),
    "council":     (403, 403, 403, 403, 403, 403),
    "housing":     (404, 403, 403, 403, 403, 403),
    "fire":        (404, 403, 403, 403, 403, 403),
    "chair":       (200, 403, 403, 403, 403, 403),
    "reviewer":    (200, 403, 403, 403, 403, 403),
    "owner":       (403, 403, 403, 403, 403, 200),
    "admin":       (403, 200, 403, 200, 200, 403),
}


@pytest.mark.parametrize("account", ACCOUNTS)
def test_later_routes_by_role_and_agency(world, service, account):
    from sqlalchemy import select

    from engine.models import OutboxMessage

    app, reference, _task_id = world
    with service.sessions() as db:
        letter = db.scalar(select(OutboxMessage.id).where(OutboxMessage.template == "acknowledgement"))
    client = app.test_client()
    sign_in(client, f"{account}@demo.test")
    routes = [f"/cases/{reference}/letters/{letter}.pdf", "/reports/statutory", "/reports/dashboard",
              "/admin/audit", "/admin/subject-access", "/studio/"]
    got = tuple(client.get(route).status_code for route in routes)
    assert got == LATER[account], dict(zip(routes, got))
