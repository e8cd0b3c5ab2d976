"""The victim's own consent to a third-party application (issue 10 §1).

Whoever applies for someone else must never be able to agree on their behalf: the consent
request and its private link go to the victim alone, the applicant is told without the link,
and no route open to the applicant (the tracking page and its task route, `casereview complete
--applicant`, the API) completes the victim's answer. Only the /consent link does. A victim
without email is asked by the coordinator, whose task the deadline still withdraws.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.cli import main
from engine.errors import InvalidData, NotAllowed
from engine.models import AuditEvent, Case, OutboxMessage
from engine.scenarios import Walker, application
from engine.accounts import require_user
from engine.service import APPLICANT, VICTIM, Actor

from .conftest import START
from .web_helpers import make_app, page, sign_in, text_of

TODAY = START.date()
LINK = re.compile(r"http://127\.0\.0\.1:5000(/(track|consent)/[A-Za-z0-9_-]+)")
DEADLINE = datetime(2026, 3, 16, 9, 0, tzinfo=timezone.utc)  # 10 working days after Monday 2 March 2026
BY_PHONE = {"phone": "01632 960111", "address": "2 Low Road, Exampleton", "preferred_contact": "phone"}


def start(service, **kwargs) -> tuple[str, Walker]:
    reference = service.apply(application(TODAY, third_party=True, **kwargs))["reference"]
    return reference, Walker(service, reference)


def letters(service, reference: str) -> list[OutboxMessage]:
    with service.sessions() as db:
        case_id = db.scalar(select(Case.id).where(Case.reference == reference))
        rows = list(db.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case_id)
                               .order_by(OutboxMessage.id)))
        db.expunge_all()
        return rows


def links(body: str, purpose: str) -> list[str]:
    return [m.group(1) for m in LINK.finditer(body) if m.group(2) == purpose]


def case_of(service, reference: str) -> Case:
    with service.sessions() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        db.expunge(case)
        return case


# ----- who gets which letter --------------------------------------------------------------------

def test_the_consent_request_and_its_link_go_only_to_the_victim(service):
    reference, walker = start(service)
    sent = letters(service, reference)
    request = [m for m in sent if m.template == "consent_request"]
    assert [(m.recipient_role, m.recipient) for m in request] == [("victim", "victim@example.org")]
    assert len(links(request[0].body, "consent")) == 1
    assert "Dear Alex Morgan" in request[0].body and "Sam Carer has applied" in request[0].body
    assert "by 16 March 2026" in request[0].body

    told = [m for m in sent if m.template == "consent_requested"]
    assert [(m.recipient_role, m.recipient) for m in told] == [("applicant", "applicant@example.org")]
    assert "We have asked them to tell us by 16 March 2026." in told[0].body
    for message in sent:
        if message.recipient_role != "victim":
            assert not links(message.body, "consent"), message.template  # never the applicant's to use
            assert "victim@example.org" not in message.body
    assert [t.role for t in walker.ready()] == ["victim"]


def test_a_victim_who_asked_for_post_gets_the_request_and_link_on_paper(service):
    reference, _walker = start(service, victim_contact={"email": "victim@example.org", "preferred_contact": "post",
                                                        "address": "2 Low Road, Exampleton"})
    [request] = [m for m in letters(service, reference) if m.template == "consent_request"]
    assert (request.recipient_role, request.recipient) == ("victim", "post:2 Low Road, Exampleton")
    assert len(links(request.body, "consent")) == 1


def test_a_victim_applying_for_themselves_is_not_asked_for_consent(service):
    reference = service.apply(application(TODAY))["reference"]
    assert not [m for m in letters(service, reference) if m.template.startswith("consent")]
    assert case_of(service, reference).stage == "incident_history"


# ----- the application must say how to reach the victim ----------------------------------------

def test_a_third_party_application_needs_a_way_to_reach_the_victim(service):
    app = application(TODAY, third_party=True, victim_contact={})
    with pytest.raises(InvalidData) as refused:
        service.apply(app)
    assert {e["field"] for e in refused.value.errors} == {"victim/email", "victim/phone", "victim/address"}
    for contact in ({"email": "v@example.org"}, {"phone": "01632 960111"}, {"address": "2 Low Road"}):
        assert service.apply(application(TODAY, third_party=True, victim_contact=contact))["reference"]
    with pytest.raises(InvalidData) as wrong:
        service.apply(application(TODAY, third_party=True, victim_contact={"email": "not an email"}))
    assert [e["field"] for e in wrong.value.errors] == ["victim/email"]
    with pytest.raises(InvalidData) as detail:
        service.apply(application(TODAY, third_party=True,
                                  victim_contact={"phone": "01632 960111", "preferred_contact": "post"}))
    assert [e["field"] for e in detail.value.errors] == ["victim/address"]


def test_the_error_for_a_missing_way_to_reach_the_victim_says_what_to_do(service):
    from web.formrender import error_summary

    from engine.versions import compiled, latest_version

    with pytest.raises(InvalidData) as refused:
        service.apply(application(TODAY, third_party=True, victim_contact={}))
    with service.sessions() as db:
        schema = compiled(db, latest_version(db).id).forms["application.json"]
    assert error_summary(refused.value.errors, schema) == [{
        "text": "Give at least one way to contact the victim: an email address, a phone number or a postal address",
        "href": "#victim-email"}]


# ----- no route of the applicant's answers the victim's question --------------------------------

def coordinator(service) -> Actor:
    with service.sessions() as db:
        user = require_user(db, "coordinator@demo.test")
        db.expunge(user)
    return Actor(user.email, user)


def test_the_engine_refuses_the_applicant_and_staff_on_the_victims_task(service):
    reference, walker = start(service)
    [task] = walker.ready("victim_consent")
    for actor in (APPLICANT, coordinator(service)):
        with pytest.raises(NotAllowed, match="victim"):
            service.complete(task.id, actor, {"consent": "given"})
    assert case_of(service, reference).stage == "consent"
    service.complete(task.id, VICTIM, {"consent": "given"})
    assert case_of(service, reference).stage == "incident_history"


def test_the_tracking_page_never_offers_or_takes_the_consent_answer(service):
    reference, walker = start(service)
    client = make_app(service).test_client()
    [ack] = [m for m in letters(service, reference) if m.template == "acknowledgement"]
    [track] = links(ack.body, "track")
    [task] = walker.ready("victim_consent")
    shown = client.get(track)
    assert shown.status_code == 200
    assert task.id not in shown.get_data(as_text=True)
    assert "Confirm the victim" not in text_of(shown)
    assert "waiting for the victim to tell us" in text_of(shown)  # what is happening, in plain words
    assert "by 16 March 2026" in text_of(shown)
    assert client.get(f"{track}/tasks/{task.id}").status_code == 404
    answered = client.post(f"{track}/tasks/{task.id}", data={"consent": "given"})
    assert answered.status_code == 404
    assert case_of(service, reference).stage == "consent"
    assert [t.name for t in walker.ready()] == ["victim_consent"]


def test_the_command_line_applicant_cannot_answer_for_the_victim(service, settings, monkeypatch):
    reference, walker = start(service)
    [task] = walker.ready("victim_consent")
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CASEREVIEW_CLOCK", START.isoformat())
    result = CliRunner().invoke(main, ["complete", task.id, "--applicant", "--data-file", "-"],
                                input=json.dumps({"consent": "given"}))
    assert result.exit_code == 3, (result.exit_code, result.stdout, result.stderr)
    assert "victim" in result.stderr and result.stdout == ""
    assert case_of(service, reference).stage == "consent"


def test_the_api_cannot_answer_for_the_victim(service, settings, monkeypatch):
    reference, walker = start(service)
    [task] = walker.ready("victim_consent")
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", settings.database_url)
    token = CliRunner().invoke(main, ["token", "create", "--user", "coordinator@demo.test"]).stdout.strip()
    client = make_app(service).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    response = client.post(f"/api/v1/tasks/{task.id}/complete", json={"consent": "given"}, headers=headers)
    assert response.status_code == 403
    assert "victim" in response.get_json()["error"]
    assert task.id not in {t["id"] for t in client.get("/api/v1/tasks", headers=headers).get_json()}
    assert case_of(service, reference).stage == "consent"


def test_only_the_link_in_the_victims_letter_answers_and_it_is_audited_as_the_victim(service):
    reference, walker = start(service)
    [request] = [m for m in letters(service, reference) if m.template == "consent_request"]
    [path] = links(request.body, "consent")
    client = make_app(service).test_client()
    assert client.post(path, data={"consent": "given"}).status_code == 302
    assert case_of(service, reference).stage == "incident_history"
    with service.sessions() as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.event == "task_completed")).all()
        assert [(e.actor, e.detail["task"], e.detail["role"]) for e in events] == [
            ("victim", "victim_consent", "victim")]


# ----- a victim without email: the coordinator asks -------------------------------------------

def test_without_email_the_coordinator_gets_the_victims_answer_by_phone_or_letter(service):
    reference, walker = start(service, victim_contact=BY_PHONE)
    [task] = walker.ready()
    assert (task.name, task.role, task.form) == ("obtain_consent", "coordinator", "obtain_consent.json")
    assert task.title == "Get the victim's consent by phone or letter"
    sent = letters(service, reference)
    [request] = [m for m in sent if m.template == "consent_request"]
    assert (request.recipient_role, request.recipient) == ("victim", "post:2 Low Road, Exampleton")
    assert not links(request.body, "consent") and "Please phone us or write to us" in request.body
    [told] = [m for m in sent if m.template == "consent_requested"]
    assert told.recipient_role == "applicant" and "16 March 2026" in told.body
    assert not any(links(m.body, "consent") for m in sent)

    with pytest.raises(NotAllowed):
        service.complete(task.id, APPLICANT, {"consent": "given", "consent_method": "phone",
                                              "consent_date": "2026-03-03"})
    with pytest.raises(InvalidData) as missing:
        walker.complete("obtain_consent", {"consent": "given"})
    assert {e["field"] for e in missing.value.errors} == {"consent_method", "consent_date"}
    walker.complete("obtain_consent", {"consent": "given", "consent_method": "phone", "consent_date": "2026-03-03",
                                       "consent_notes": "Spoke to Alex, who agrees."})
    assert case_of(service, reference).stage == "incident_history"


def test_a_victim_declining_by_phone_withdraws_the_application(service):
    reference, walker = start(service, victim_contact={"phone": "01632 960111"})
    assert not [m for m in letters(service, reference) if m.template == "consent_request"]  # nowhere to write
    walker.complete("obtain_consent", {"consent": "declined", "consent_method": "phone", "consent_date": "2026-03-04"})
    assert case_of(service, reference).status == "withdrawn"
    assert [m.recipient_role for m in letters(service, reference) if m.template == "consent_declined"] == ["applicant"]


def test_the_deadline_still_withdraws_when_the_coordinator_has_no_answer(service, clock):
    reference, walker = start(service, victim_contact=BY_PHONE)
    clock.set(DEADLINE.replace(minute=1))
    assert service.fire_due_timers() == 1
    case = case_of(service, reference)
    assert (case.status, case.stage) == ("withdrawn", "withdrawn")
    assert not walker.ready()
    assert [m.recipient_role for m in letters(service, reference) if m.template == "withdrawn_no_consent"] == [
        "applicant"]


def test_the_coordinators_task_page_shows_how_to_reach_the_victim(service):
    reference, walker = start(service, victim_contact=BY_PHONE)
    [task] = walker.ready("obtain_consent")
    client = make_app(service).test_client()
    sign_in(client, "coordinator@demo.test", "test-password")
    shown = client.get(f"/tasks/{task.id}")
    assert shown.status_code == 200
    body = text_of(shown)
    assert "01632 960111" in body and "2 Low Road, Exampleton" in body
    labels = [" ".join(label.text_content().split()) for label in page(shown).cssselect("label")]
    assert {"By phone", "By letter", "In person"} <= set(labels)
