"""Applicants' private links: the letters carry them, /track/<token> follows the case, /consent/<token>
answers a third-party application, /track sends a new link. Through Flask's test client, pages
parsed; SQLite (PostgreSQL where the table itself is exercised)."""
from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from engine import applicant_links
from engine.applicant_links import ApplicantLink
from engine.models import Agency, AuditEvent, Case, OutboxMessage, WorkflowInstance
from engine.scenarios import Walker, application
from engine.versions import compiled

from .conftest import START
from .web_helpers import make_app, page, sign_in, text_of

TODAY = START.date()
LINK = re.compile(r"http://127\.0\.0\.1:5000(/(track|consent)/([A-Za-z0-9_-]+))")


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path):
    """SQLite unless a test asks for PostgreSQL too."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'casereview.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def app(service):
    return make_app(service)


@pytest.fixture
def client(app):
    return app.test_client()


# ----- helpers ----------------------------------------------------------------------------------

def start(service, **kwargs) -> tuple[str, dict, Walker]:
    app = application(TODAY, **kwargs)
    reference = service.apply(app)["reference"]
    return reference, app, Walker(service, reference)


def messages(service, reference: str, template: str | None = None) -> list[OutboxMessage]:
    with service.sessions() as db:
        case_id = db.scalar(select(Case.id).where(Case.reference == reference))
        query = select(OutboxMessage).where(OutboxMessage.case_id == case_id).order_by(OutboxMessage.id)
        if template:
            query = query.where(OutboxMessage.template == template)
        rows = list(db.scalars(query))
        db.expunge_all()
        return rows


def link_in(body: str, purpose: str = "track") -> str:
    """The path of the (only) link of that purpose in a letter."""
    found = [m.group(1) for m in LINK.finditer(body) if m.group(2) == purpose]
    assert len(found) == 1, body
    return found[0]


def track_path(service, reference: str, template: str = "acknowledgement") -> str:
    return link_in(messages(service, reference, template)[-1].body)


def case_of(service, reference: str) -> Case:
    with service.sessions() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        db.expunge(case)
        return case


def audit_of(service, reference: str, event: str | None = None) -> list[AuditEvent]:
    with service.sessions() as db:
        query = (select(AuditEvent).join(Case, Case.id == AuditEvent.case_id)
                 .where(Case.reference == reference).order_by(AuditEvent.id))
        if event:
            query = query.where(AuditEvent.event == event)
        rows = list(db.scalars(query))
        db.expunge_all()
        return rows


def headings(response) -> list[str]:
    return [" ".join(h.text_content().split()) for h in page(response).cssselect("h1, h2")]


def assert_private(response) -> None:
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


def assert_controls_labelled(response) -> None:
    """Every field has a label, every action is a real link or button with text."""
    doc = page(response)
    for field in doc.cssselect("input, textarea, select"):
        if field.get("type") in ("hidden",) or field.get("aria-hidden") == "true":
            continue
        assert doc.cssselect(f'label[for="{field.get("id")}"]'), f"no label for {field.get('name')}"
    for control in doc.cssselect("main button, main a"):
        assert " ".join(control.text_content().split()), "a control without text"


def letter_rows(response) -> list[tuple[str, str, str]]:
    """(date, subject, href) of the letters table."""
    rows = []
    for row in page(response).cssselect("#letters tbody tr"):
        cells = row.cssselect("td")
        anchor = cells[1].cssselect("a")[0]
        rows.append((cells[0].text_content().strip(), " ".join(anchor.text_content().split()), anchor.get("href")))
    return rows


def things_to_do(response) -> dict[str, str]:
    section = page(response).cssselect("#things-you-can-do")
    if not section:
        return {}
    items = section[0].getnext().cssselect("a")
    return {" ".join(a.text_content().split()): a.get("href") for a in items}


def to_panel(walker: Walker, app: dict) -> None:
    walker.provide_histories()
    walker.verify(app["incidents"])
    walker.confirm()
    walker.schedule_panel(TODAY + timedelta(days=21))


# ----- the links in letters ---------------------------------------------------------------------

@pytest.mark.parametrize("database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_the_acknowledgement_carries_a_working_private_link(service, client):
    reference, _app, _walker = start(service)
    acknowledgement = messages(service, reference, "acknowledgement")[0]
    path = link_in(acknowledgement.body)
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 43 and "works until 31 May 2026" in acknowledgement.body  # 90 days by default

    response = client.get(path)
    assert response.status_code == 200
    assert_private(response)
    assert "Your ASB case review" in headings(response)
    body = text_of(response)
    assert reference in body and "Asking the agencies what reports they hold" in body

    # Only the hash is kept, and the token is nowhere but in the letter.
    with service.sessions() as db:
        links = list(db.scalars(select(ApplicantLink)))
        assert [link.token_hash for link in links] == [hashlib.sha256(token.encode()).hexdigest()]
        assert links[0].purpose == "track" and links[0].sent_to == "applicant@example.org"
        states = " ".join(db.scalars(select(WorkflowInstance.state)))
        details = json.dumps([e.detail for e in db.scalars(select(AuditEvent))])
    assert token not in states and token not in details
    viewed = audit_of(service, reference, "case_viewed")
    assert [(e.actor, e.detail["page"]) for e in viewed] == [("applicant", "track")]


def test_the_track_page_follows_the_case_in_plain_words(service, client, clock):
    reference, app, walker = start(service)
    path = track_path(service, reference)
    first = client.get(path)
    steps = [" ".join(li.text_content().split()) for li in page(first).cssselect("#next + ul li")]
    assert steps == ["The agencies involved are telling us what reports they hold and what they have already "
                     "done. Expected by 16 March 2026."]
    assert [row[1] for row in letter_rows(first)] == [
        f"We have received your ASB case review application (reference {reference})"]

    to_panel(walker, app)
    panel_date = TODAY + timedelta(days=21)
    latest = link_in(messages(service, reference, "panel_invitation")[0].body)  # each letter has its own link
    response = client.get(latest)
    assert response.status_code == 200
    body = text_of(response)
    assert "Arranging the case review panel" in body
    assert f"The panel meets on {panel_date.day} March 2026." in body
    assert [row[1].split(" (")[0] for row in letter_rows(response)] == [
        "We have received your ASB case review application", "Your ASB case review will go ahead",
        "Your ASB case review panel"]
    assert "Tell the panel how the behaviour affects you" in things_to_do(response)
    # The letters the applicant got, and nothing of anyone else's: no agency letters, no staff.
    for hidden in ("provide_incident_history", "incident_history", "police@demo.test", "Pat Chair",
                   "coordinator@demo.test", "Checked.", "Warning letter sent"):
        assert hidden not in body
    assert_controls_labelled(response)

    # A letter opens as a readable page.
    _date, subject, href = letter_rows(response)[1]
    letter = client.get(href)
    assert letter.status_code == 200
    assert_private(letter)
    assert subject in headings(letter)
    paragraphs = [" ".join(p.text_content().split()) for p in page(letter).cssselect("main p.govuk-body")]
    assert any(p.startswith("Dear Alex Morgan") for p in paragraphs)
    assert any("meets the threshold" in p for p in paragraphs)


def test_wrong_expired_and_revoked_links_say_so_plainly(service, client, clock):
    reference, _app, _walker = start(service)
    path = track_path(service, reference)
    token = path.rsplit("/", 1)[1]

    for wrong in ("/track/" + "A" * 43, "/track/short", path[:-1] + ("x" if path[-1] != "x" else "y")):
        response = client.get(wrong)
        assert response.status_code == 404
        assert_private(response)
        assert headings(response) == ["This link does not work", "Contact us"]
        assert reference not in text_of(response)
        assert page(response).cssselect('a[href="/track"]')  # how to get a new link

    with service.transaction() as db:
        assert applicant_links.revoke(db, service.now(), token=token) == 1
    assert client.get(path).status_code == 404

    second, _app, _walker = start(service)
    fresh = track_path(service, second)
    clock.set(START + timedelta(days=90))
    expired = client.get(fresh)
    assert expired.status_code == 404
    assert headings(expired) == ["This link has expired", "Contact us"]
    with service.sessions() as db:
        assert applicant_links.case_for_token(db, fresh.rsplit("/", 1)[1], START + timedelta(days=89)).reference == second
        assert applicant_links.case_for_token(db, fresh.rsplit("/", 1)[1], service.now()) is None


def test_only_the_applicants_own_letters_open(service, client):
    mine, _app, _walker = start(service, third_party=True)
    theirs, _app2, _walker2 = start(service, name="Chris Patel")
    path = track_path(service, mine)
    own = messages(service, mine, "acknowledgement")[0]
    assert client.get(f"{path}/letters/{own.id}").status_code == 200

    other = messages(service, theirs, "acknowledgement")[0]
    consent_letter = messages(service, mine, "consent_request")[0]  # addressed to the victim
    for message in (other, consent_letter):
        response = client.get(f"{path}/letters/{message.id}")
        assert response.status_code == 404
        assert "Chris Patel" not in text_of(response) and "/consent/" not in text_of(response)
    assert client.get(f"{path}/letters/999999").status_code == 404
    told = messages(service, mine, "consent_requested")[0]  # the applicant's: the victim has been asked
    assert "/consent/" not in text_of(client.get(f"{path}/letters/{told.id}"))
    listed = [row[2] for row in letter_rows(client.get(path))]
    assert listed == [f"{path}/letters/{own.id}", f"{path}/letters/{told.id}"]


# ----- consent by link --------------------------------------------------------------------------

def consent_path(service, reference: str) -> str:
    letter = messages(service, reference, "consent_request")[0]
    assert "/track/" not in letter.body  # the victim's letter carries only their own link
    return link_in(letter.body, "consent")


def test_the_victim_agrees_through_the_link(service, client):
    reference, _app, walker = start(service, third_party=True)
    path = consent_path(service, reference)
    form = client.get(path)
    assert form.status_code == 200
    assert_private(form)
    body = text_of(form)
    assert "Sam Carer has applied" in body and "your carer" in body
    assert "3 reports of anti-social behaviour made to the police and the council" in body
    assert "Please answer by 16 March 2026" in body
    for private in ("applicant@example.org", "01632 960000", "1 High Street", "Loud music"):
        assert private not in body  # no contact details, no descriptions
    assert_controls_labelled(form)
    labels = [" ".join(l.text_content().split()) for l in page(form).cssselect("label")]
    assert "Yes, I agree" in labels and "No, I do not agree" in labels
    assert "Anything you would like to tell us (optional)" in labels

    missing = client.post(path, data={"consent_notes": "Call after 6pm"})
    assert missing.status_code == 422
    summary = page(missing).cssselect(".govuk-error-summary a")
    assert summary and summary[0].get("href") == "#consent"
    assert summary[0].text_content().strip() == "Select yes if you agree to the case review, or no if you do not"
    assert page(missing).cssselect("#consent_notes")[0].text_content() == "Call after 6pm"
    assert case_of(service, reference).stage == "consent"

    done = client.post(path, data={"consent": "given", "consent_notes": "Call after 6pm"})
    assert done.status_code == 302 and done.headers["Location"] == "/consent/answered"
    assert "You told us you agree" in text_of(client.get("/consent/answered"))
    assert case_of(service, reference).stage == "incident_history"
    assert sorted({t.name for t in walker.ready()}) == ["provide_incident_history"]
    completed = audit_of(service, reference, "task_completed")
    assert [(e.actor, e.detail["task"]) for e in completed] == [("victim", "victim_consent")]  # never "applicant"

    used = client.get(path)
    assert used.status_code == 410
    assert headings(used) == ["You have already answered", "Contact us"]
    assert client.post(path, data={"consent": "declined"}).status_code == 410
    assert case_of(service, reference).status == "open"


def test_the_victim_declines_and_the_application_is_withdrawn(service, client):
    reference, _app, _walker = start(service, third_party=True)
    response = client.post(consent_path(service, reference), data={"consent": "declined"})
    assert response.status_code == 302
    assert "we have withdrawn the application" in text_of(client.get("/consent/answered"))
    case = case_of(service, reference)
    assert (case.status, case.stage) == ("withdrawn", "withdrawn")
    declined = messages(service, reference, "consent_declined")
    assert declined and declined[0].recipient_role == "applicant"
    tracked = client.get(track_path(service, reference))  # the applicant's link still shows what happened
    assert "Your application has been withdrawn" in text_of(tracked)
    assert any("has been withdrawn" in row[1] for row in letter_rows(tracked))
    assert "Withdraw your application" not in things_to_do(tracked)


def test_no_answer_in_time_withdraws_the_application(service, client, clock):
    reference, _app, _walker = start(service, third_party=True)
    path = consent_path(service, reference)
    with service.sessions() as db:
        link = db.scalar(select(ApplicantLink).where(ApplicantLink.purpose == "consent"))
        assert link.expires_at == datetime(2026, 3, 16, 9, 0, tzinfo=timezone.utc)  # the consent deadline
    clock.set(datetime(2026, 3, 16, 9, 1, tzinfo=timezone.utc))
    assert service.fire_due_timers() == 1
    assert case_of(service, reference).status == "withdrawn"
    assert [m.recipient_role for m in messages(service, reference, "withdrawn_no_consent")] == ["applicant"]
    late = client.get(path)
    assert late.status_code == 410
    assert headings(late) == ["This link has expired", "Contact us"]


# ----- the applicant's forms --------------------------------------------------------------------

def test_impact_statement_and_wish_to_attend_reach_the_panel(service, app, client):
    reference, application_data, walker = start(service)
    to_panel(walker, application_data)
    path = track_path(service, reference, "panel_invitation")
    href = things_to_do(client.get(path))["Tell the panel how the behaviour affects you"]

    form = client.get(href)
    assert form.status_code == 200
    assert_private(form)
    assert_controls_labelled(form)
    assert {f.get("name") for f in page(form).cssselect("textarea, input[type=radio]")} >= {
        "statement", "wishes_to_attend", "support_needs"}

    empty = client.post(href, data={"statement": "", "wishes_to_attend": "true", "support_needs": "Step-free access"})
    assert empty.status_code == 422
    assert [a.get("href") for a in page(empty).cssselect(".govuk-error-summary a")] == ["#statement"]
    assert page(empty).cssselect("#support_needs")[0].text_content() == "Step-free access"

    sent = client.post(href, data={"statement": "We have not slept properly for a year.", "wishes_to_attend": "true",
                                   "support_needs": "Step-free access"})
    assert sent.status_code == 302
    after = client.get(sent.headers["Location"])
    assert "is sent" in text_of(after)
    assert "Tell the panel how the behaviour affects you" not in things_to_do(after)
    assert client.get(href).status_code == 404  # done: the form is gone

    # Staff see it: on the case timeline, and the panel chair's task carries the statement.
    staff = app.test_client()
    sign_in(staff, "coordinator@demo.test")
    timeline = [" ".join(li.text_content().split()) for li in page(staff.get(f"/cases/{reference}/timeline")).cssselect(
        ".moj-timeline__item")]
    assert any("Tell the panel how the behaviour affects you" in item and "by the applicant" in item for item in timeline)
    walker.complete("case_summary", {"summary": "Three reports.", "incidents_held": 3, "actions_taken": "Visits."})
    outcome = walker.ready("panel_outcome")[0]
    version_id = case_of(service, reference).process_version_id
    with service.sessions() as db:
        row = db.get(WorkflowInstance, outcome.instance_id)
        workflow = compiled(db, version_id).serializer.loads(row.state, None)
    statement = next(t for t in workflow.get_tasks() if str(t.id) == outcome.id).data["victim_statement"]
    assert statement == {"statement": "We have not slept properly for a year.", "wishes_to_attend": True,
                         "support_needs": "Step-free access"}

    # After the panel: the action plan, without the officers' names, and when we will be in touch.
    walker.outcome([{"description": "Joint visit", "agency": "police", "owner": "PC Evans", "due": "2026-04-20"}])
    with service.sessions() as db:
        police = db.scalar(select(Agency.name).where(Agency.code == "police"))
    plan = client.get(path)
    rows = [[" ".join(td.text_content().split()) for td in tr.cssselect("td")]
            for tr in page(plan).cssselect("table:not(#letters) tbody tr")]
    assert rows == [["Joint visit", police, "20 April 2026", "Open"]]
    body = text_of(plan)
    assert "PC Evans" not in body and "Reports were handled separately" not in body  # findings are in the letter
    assert "The agencies are carrying out the action plan" in body
    assert re.search(r"We will contact you around \d+ \w+ 2026 to see how things are", body)


def test_withdrawing_from_the_page(service, client):
    reference, _app, _walker = start(service)
    path = track_path(service, reference)
    href = things_to_do(client.get(path))["Withdraw your application"]
    confirm = client.get(href)
    assert headings(confirm) == ["Are you sure you want to withdraw your application?", "Contact us"]
    assert_controls_labelled(confirm)
    assert page(confirm).cssselect("button.govuk-button--warning")
    assert page(confirm).cssselect(f'a[href="{path}"]')  # "No, go back"

    too_long = client.post(href, data={"reason": "x" * 5001})
    assert too_long.status_code == 422
    assert page(too_long).cssselect(".govuk-error-summary a")[0].get("href") == "#reason"
    assert case_of(service, reference).status == "open"

    done = client.post(href, data={"reason": "Things are better now."})
    assert done.status_code == 302
    assert case_of(service, reference).status == "withdrawn"
    assert [e.actor for e in audit_of(service, reference, "withdrawal_requested")] == ["applicant"]
    assert "You told us: Things are better now." in messages(service, reference, "withdrawal")[0].body
    after = client.get(path)
    assert "We have withdrawn your application" in text_of(after)
    assert any("has been withdrawn" in row[1] for row in letter_rows(after))
    assert things_to_do(after) == {}


def test_asking_for_an_escalation_once_there_is_a_decision(service, client):
    reference, application_data, walker = start(service)
    path = track_path(service, reference)
    assert "Ask for an escalation" not in things_to_do(client.get(path))
    assert client.get(f"{path}/escalate").status_code == 302  # not yet possible: back to the case

    walker.provide_histories()
    walker.verify(application_data["incidents"])
    walker.confirm()
    href = things_to_do(client.get(path))["Ask for an escalation"]
    empty = client.post(href, data={"reason": "  "})
    assert empty.status_code == 422
    assert page(empty).cssselect(".govuk-error-summary a")[0].get("href") == "#reason"

    assert client.post(href, data={"reason": "The council's reports were missed."}).status_code == 302
    assert [e.actor for e in audit_of(service, reference, "escalation_requested")] == ["applicant"]
    assert messages(service, reference, "escalation_received")
    after = client.get(path)
    body = text_of(after)
    assert "You have asked for an escalation" in body
    assert "Someone who was not involved in your case is looking at your escalation" in body
    assert "Ask for an escalation" not in things_to_do(after)


# ----- a new link by email ----------------------------------------------------------------------

def test_a_new_link_is_sent_only_to_the_address_on_file_and_the_answer_never_tells(service, client):
    reference, _app, _walker = start(service)
    form = client.get("/track")
    assert form.status_code == 200
    assert_controls_labelled(form)

    answers = []
    for details in ({"reference": reference.lower(), "email": "APPLICANT@example.org"},
                    {"reference": reference, "email": "someone.else@example.org"},
                    {"reference": "ASB-2026-99999", "email": "applicant@example.org"}):
        response = client.post("/track", data=details)
        answers.append((response.status_code, response.headers["Location"]))
    assert answers == [(302, "/track/sent")] * 3
    assert headings(client.get("/track/sent")) == ["Check your email", "Contact us"]

    emails = messages(service, reference, "track_link")
    assert [m.recipient for m in emails] == ["applicant@example.org"]
    assert client.get(link_in(emails[0].body)).status_code == 200
    sent = audit_of(service, reference, "applicant_link_sent")
    assert [(e.actor, e.detail) for e in sent] == [("applicant", {"purpose": "track", "link": sent[0].detail["link"]})]

    invalid = client.post("/track", data={"reference": "", "email": "not-an-email"})
    assert invalid.status_code == 422
    assert [a.get("href") for a in page(invalid).cssselect(".govuk-error-summary a")] == ["#reference", "#email"]
    assert page(invalid).cssselect("#email")[0].get("value") == "not-an-email"

    for _ in range(2):  # the /apply limiter: five a window per address
        assert client.post("/track", data={"reference": reference, "email": "x@example.org"}).status_code == 302
    assert client.post("/track", data={"reference": reference, "email": "x@example.org"}).status_code == 429


# ----- protections ------------------------------------------------------------------------------

def test_forms_need_the_csrf_token(service):
    reference, _app, _walker = start(service, third_party=True)
    client = make_app(service, WTF_CSRF_ENABLED=True).test_client()
    track, consent = track_path(service, reference), consent_path(service, reference)
    for url, data in ((f"{track}/withdraw", {}), (consent, {"consent": "given"}),
                      ("/track", {"reference": reference, "email": "applicant@example.org"})):
        assert client.post(url, data=data).status_code == 400
    assert case_of(service, reference).stage == "consent" and not messages(service, reference, "track_link")

    token = page(client.get(f"{track}/withdraw")).cssselect("input[name=csrf_token]")[0].get("value")
    assert client.post(f"{track}/withdraw", data={"csrf_token": token}).status_code == 302
    assert case_of(service, reference).status == "withdrawn"


def test_link_tokens_are_kept_out_of_log_lines(service, app, caplog):
    reference, _app, _walker = start(service)
    path = track_path(service, reference)
    token = path.rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO):
        logging.getLogger("werkzeug").info('%s - - [%s] "%s" %s', "127.0.0.1", "now", f"GET {path}/letters/1 HTTP/1.1",
                                           200)
        app.logger.error("Exception on %s [GET]", f"/consent/{token}")
    assert token not in caplog.text
    assert "/track/[private link]/letters/1" in caplog.text and "/consent/[private link]" in caplog.text
