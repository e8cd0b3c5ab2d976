"""The pages a public service must have, and the service's contact details wherever the public
meets it: the start page, the apply confirmation (with the date the process itself sets), the
tracking pages, the footer's accessibility statement, privacy notice and cookies page, and every
letter (text and PDF) signed by the role that sends it, with dates written the GOV.UK way."""
from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from engine.config import Settings
from engine.letters import check_template, long_date, render
from engine.letter_documents import letter_pdf
from engine.models import Case, HumanTask, OutboxMessage, Timer
from engine.scenarios import Walker, application
from engine.studio import publish_bundle, validate_bundle
from engine.versions import shipped_files

from .conftest import START
from .test_letters_pdf import pdf_text
from .web_helpers import make_app, page, sign_in, text_of

TODAY = START.date()
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SERVICE = {"service_name": "Exampleshire ASB case review", "service_phone": "01632 960 555",
           "service_email": "casereviews@exampleshire.example", "service_address": "The Coordinator, "
           "Exampleshire OPCC, 4 Market Square, Exampleton, EX9 9XX"}


@pytest.fixture
def settings(database_url, tmp_path):
    return Settings(database_url=database_url, outbox_dir=tmp_path / "outbox", demo_password="test-password",
                    retention_years=3, **SERVICE)


@pytest.fixture
def client(service):
    return make_app(service).test_client()


def shows_contact_details(text: str) -> bool:
    return all(part in text for part in ("01632 960 555", "casereviews@exampleshire.example", "4 Market Square",
                                         "EX9 9XX"))


def apply_as(service, client, **kwargs) -> str:
    """A case sent from /apply: the confirmation page reads the reference from the session."""
    reference = service.apply(application(TODAY, **kwargs))["reference"]
    with client.session_transaction() as session:
        session["apply_reference"] = reference
    return reference


# ----- the start page and the footer -------------------------------------------------------------

@sqlite_only
def test_the_home_page_leads_to_apply_and_track_with_staff_sign_in_secondary(client):
    home = client.get("/")
    shown = page(home)
    start = shown.cssselect("a.govuk-button--start")
    assert [a.get("href") for a in start] == ["/apply"] and "Apply" in start[0].text_content()
    track = [a for a in shown.cssselect("main a.govuk-button") if a.get("href") == "/track"]
    assert track and "Track your case" in track[0].text_content()
    # Staff sign in by a plain link, not a button.
    assert shown.cssselect('main a.govuk-link[href="/sign-in"]') and not shown.cssselect('a.govuk-button[href="/sign-in"]')
    body = text_of(home)
    assert "Exampleshire ASB case review" in shown.cssselect("h1")[0].text_content()
    assert shows_contact_details(body)
    assert "Exampleshire ASB case review" in shown.cssselect("title")[0].text_content()


@sqlite_only
def test_signed_in_staff_still_find_their_work_from_the_home_page(client):
    sign_in(client, "coordinator@demo.test")
    shown = page(client.get("/"))
    assert shown.cssselect('main a[href="/tasks"]')
    assert shown.cssselect('a.govuk-button--start[href="/apply"]')


@sqlite_only
@pytest.mark.parametrize("who", [None, "coordinator@demo.test", "fire@demo.test", "admin@demo.test"])
def test_the_footer_links_the_accessibility_statement_privacy_notice_and_cookies(client, who):
    if who:
        sign_in(client, who)
    for path in ("/", "/apply", "/track", "/cookies", "/tasks" if who and who != "admin@demo.test" else "/sign-in"):
        response = client.get(path)
        if response.status_code == 302:
            continue  # signed in: the sign-in page sends staff on
        links = {a.text_content().strip(): a.get("href") for a in page(response).cssselect("footer a")}
        assert links["Accessibility statement"] == "/accessibility-statement", path
        assert links["Privacy notice"] == "/privacy-notice", path
        assert links["Cookies"] == "/cookies", path


# ----- the pages the footer links to ---------------------------------------------------------------

@sqlite_only
def test_the_privacy_notice_says_what_why_the_basis_who_how_long_and_how_to_ask_or_complain(client):
    response = client.get("/privacy-notice")
    assert response.status_code == 200
    body = text_of(response)
    headings = [h.text_content() for h in page(response).cssselect("main h2")]
    for heading in ("What we collect", "Why we need it", "Our lawful basis", "Who sees your information",
                    "How long we keep it", "Your rights", "How to complain"):
        assert heading in headings
    assert "Article 6(1)(e)" in body and "public task" in body
    assert "Article 9(2)(g)" in body and "Part 3 of the Data Protection Act 2018" in body
    # Retention from the setting (3 here, not the default 6).
    assert "for 3 years after it closed" in body and "6 years" not in body
    # The agencies of the reviews, from the database.
    for agency in ("Exampleshire Police", "Exampleton District Council", "Exampleton Homes",
                   "Exampleshire Fire and Rescue"):
        assert agency in body
    assert "subject access request" in body and "Information Commissioner" in body
    assert page(response).cssselect('a[href="https://ico.org.uk/make-a-complaint/"]')
    assert shows_contact_details(body)


@sqlite_only
def test_the_accessibility_statement_follows_the_model_and_says_how_to_get_help(client):
    response = client.get("/accessibility-statement")
    assert response.status_code == 200
    body = text_of(response)
    assert "Accessibility statement for Exampleshire ASB case review" in body
    assert "Web Content Accessibility Guidelines version 2.2 AA standard" in body
    assert "Enforcement procedure" in body and "Equality and Human Rights Commission" in body
    assert "Equality Advisory and Support Service" in body
    assert "Public Sector Bodies (Websites and Mobile Applications) (No. 2) Accessibility Regulations 2018" in body
    assert "This statement was prepared on" in body and shows_contact_details(body)


@sqlite_only
def test_the_cookies_page_lists_exactly_the_cookies_the_service_sets(service):
    app = make_app(service, WTF_CSRF_ENABLED=True)
    set_names: set[str] = set()
    deleted: set[str] = set()

    def visit(client, method, path, **kwargs):
        response = getattr(client, method)(path, **kwargs)
        for header in response.headers.getlist("Set-Cookie"):
            name = header.split("=", 1)[0]
            if "Max-Age=0" in header:  # an instruction to delete a cookie, which the page says
                deleted.add(name)
            else:
                set_names.add(name)
        return response

    public = app.test_client()
    for path in ("/", "/privacy-notice", "/accessibility-statement", "/cookies"):
        visit(public, "get", path)
    assert set_names == set(), "reading pages sets no cookie"
    form = page(visit(public, "get", "/apply/who"))
    token = form.cssselect('input[name="csrf_token"]')[0].get("value")
    visit(public, "post", "/apply/who", data={"csrf_token": token, "relationship_to_victim": "self"})
    visit(public, "get", "/track")
    staff = app.test_client()
    token = page(visit(staff, "get", "/sign-in")).cssselect('input[name="csrf_token"]')[0].get("value")
    signed = visit(staff, "post", "/sign-in", data={"csrf_token": token, "email": "coordinator@demo.test",
                                                    "password": "test-password"})
    assert signed.status_code == 302
    visit(staff, "get", "/tasks")
    assert set_names == {app.config["SESSION_COOKIE_NAME"]}

    listed = page(app.test_client().get("/cookies"))
    names = [cell.text_content().strip() for cell in listed.cssselect("main table tbody tr td:first-child")]
    assert names == sorted(set_names)
    body = " ".join(listed.text_content().split())
    assert "30 minutes" in body and "24 hours" in body  # the staff session's and the draft's lifetimes
    assert deleted <= {"remember_token"} and "remember_token" in body  # Flask-Login's: only ever deleted


# ----- contact details on the apply and tracking pages ---------------------------------------------

@sqlite_only
def test_the_apply_start_page_gives_the_phone_number_to_apply_by_phone(client):
    body = text_of(client.get("/apply"))
    assert "Other ways to apply" in body and shows_contact_details(body)


def test_the_confirmation_says_by_when_from_the_cases_own_tasks_and_timers(service, client):
    reference = apply_as(service, client)
    with service.sessions() as db:
        case_id = db.scalar(select(Case.id).where(Case.reference == reference))
        dues = {task.due for task in db.scalars(select(HumanTask).where(HumanTask.case_id == case_id))}
    assert len(dues) == 1  # every agency's history is due the same day
    due = dues.pop()
    response = client.get("/apply/confirmation")
    body = text_of(response)
    assert reference in body
    assert f"This should be done by {due.day} {due:%B %Y}" in body
    assert "telling us what reports they hold" in body
    assert "get a new link to track your case" in body and page(response).cssselect('main a[href="/track"]')
    assert shows_contact_details(body) and f"Quote your case reference {reference}" in body


def test_a_third_party_confirmation_gives_the_consent_deadline_from_the_timer(service, client):
    reference = apply_as(service, client, third_party=True)
    with service.sessions() as db:
        case_id = db.scalar(select(Case.id).where(Case.reference == reference))
        deadline = db.scalar(select(Timer.due_at).where(Timer.case_id == case_id, Timer.name == "consent_deadline"))
    body = text_of(client.get("/apply/confirmation"))
    assert f"If the victim has not told us by {deadline.day} {deadline:%B %Y} that they agree" in body


@sqlite_only
def test_the_confirmation_follows_the_due_date_the_diagram_sets(service, client):
    before = apply_as(service, client)
    shipped_body = text_of(client.get("/apply/confirmation"))
    files = shipped_files()
    rule = "add_working_days(history_requested_on, 10)"
    assert rule in files["processes/case_review.bpmn"]
    files["processes/case_review.bpmn"] = files["processes/case_review.bpmn"].replace(
        rule, "add_working_days(history_requested_on, 3)")
    publish_bundle(service, files, note="Histories within 3 working days", by="owner@demo.test")
    apply_as(service, client)
    changed_body = text_of(client.get("/apply/confirmation"))
    # START is Monday 2 March 2026: 10 working days is 16 March, 3 working days is 5 March.
    assert before and "This should be done by 16 March 2026" in shipped_body
    assert "This should be done by 5 March 2026" in changed_body


@sqlite_only
def test_the_tracking_pages_give_the_contact_details(service, client):
    reference = service.apply(application(TODAY))["reference"]
    with service.sessions() as db:
        body = db.scalar(select(OutboxMessage.body).where(OutboxMessage.template == "acknowledgement"))
    path = re.search(r"https?://[^/\s]+(/track/[A-Za-z0-9_-]+)", body).group(1)
    case_page = text_of(client.get(path))
    assert shows_contact_details(case_page) and f"Quote your case reference {reference}" in case_page
    assert shows_contact_details(text_of(client.get("/track")))
    sent = client.post("/track", data={"reference": reference, "email": "nobody@example.org"})
    assert shows_contact_details(text_of(client.get(sent.headers["Location"])))
    assert shows_contact_details(text_of(client.get("/track/" + "A" * 43)))


# ----- letters ------------------------------------------------------------------------------------

SIGNATORIES = {"outcome": "Pat Chair, chair of the ASB case review panel",
               "escalation_upheld": "Escalation reviewer, Exampleshire ASB case review",
               "escalation_not_upheld": "Escalation reviewer, Exampleshire ASB case review",
               # to the coordinator, from the service itself
               "action_overdue": "This message was sent automatically by Exampleshire ASB case review.",
               "history_overdue": "This message was sent automatically by Exampleshire ASB case review."}
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def letter_context(settings: Settings) -> dict:
    """Task data as the diagrams leave it when each letter is sent: dates as ISO strings."""
    return {
        "reference": "ASB-2026-00042", "case": {"reference": "ASB-2026-00042", "stage": "panel"},
        "applicant": {"name": "Alex Morgan"}, "victim": {"name": "Pat Victim"}, "third_party": True,
        "received_on": "2026-12-02", "history_requested_on": "2026-12-03", "escalation_requested_on": "2027-01-04",
        "panel_date": "2027-01-15", "panel_time": "10:00", "chair_name": "Pat Chair",
        "action": {"description": "Joint visit", "agency": "police", "owner": "PC Evans", "due": "2027-02-01"},
        "actions": [{"description": "Joint visit", "agency": "police", "owner": "PC Evans", "due": "2027-02-01"}],
        "recommendations": ["Joint visit"], "findings": "Handled separately.", "agencies": ["police", "council"],
        "threshold": {"reasons": ["ASB_THREE_IN_SIX_MONTHS"]}, "reasons": "Because.", "response": "We will.",
        "summary": "Agreed actions.", "further_actions": [], "withdrawal_reason": "Moved house.",
        "track_url": "http://127.0.0.1:5000/track/abc", "consent_url": "http://127.0.0.1:5000/consent/abc",
        "link_expires_on": "2 March 2027", "service": settings.service,
    }


@sqlite_only
def test_every_shipped_letter_carries_the_contact_details_a_signatory_and_govuk_dates(settings):
    letters = {name[len("processes/letters/"):-4]: text for name, text in shipped_files().items()
               if name.startswith("processes/letters/")}
    assert len(letters) >= 20
    context = letter_context(settings)
    for name in letters:
        letter = render(letters, name, context)
        text = f"{letter.subject}\n{letter.body}"
        assert shows_contact_details(text), name
        assert "Exampleshire ASB case review" in text, name
        last_lines = letter.body.split("Contact us")[0].strip().splitlines()
        assert last_lines[-1] == SIGNATORIES.get(name, "ASB case review coordinator"), name
        assert not ISO_DATE.search(text), (name, ISO_DATE.findall(text))
    dated = {"acknowledgement": "2 December 2026", "history_overdue": "3 December 2026",
             "escalation_received": "4 January 2027", "outcome": "1 February 2027",
             "panel_invitation": "15 January 2027", "panel_invitation_agency": "15 January 2027",
             "action_reminder": "1 February 2027", "action_overdue": "1 February 2027"}
    for name, day in dated.items():
        assert day in render(letters, name, context).body, name


def test_letters_written_by_a_case_use_the_settings_and_the_senders_role(service, settings):
    reference = service.apply(application(TODAY))["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(application(TODAY)["incidents"])
    walker.confirm()
    walker.schedule_panel(date(2026, 3, 30))
    walker.panel_inputs()
    walker.outcome([{"description": "Joint visit", "agency": "police", "owner": "PC Evans", "due": "2026-04-20"}])
    with service.sessions() as db:
        sent = {m.template: m for m in db.scalars(select(OutboxMessage).order_by(OutboxMessage.id))}
    assert {"acknowledgement", "history_request", "threshold_met", "panel_invitation", "outcome"} <= set(sent)
    for message in sent.values():
        assert shows_contact_details(message.body), message.template
    assert "receiving your application on 2 March 2026" in sent["acknowledgement"].body
    assert "Yours sincerely,\n\nASB case review coordinator\n" in sent["acknowledgement"].body
    assert "Pat Chair, chair of the ASB case review panel" in sent["outcome"].body
    assert "met on 30 March 2026" in sent["outcome"].body and "by 20 April 2026" in sent["outcome"].body
    with service.transaction() as db:
        pdf = pdf_text(letter_pdf(db, sent["outcome"].id, service=settings.service))
    assert "Exampleshire ASB case review" in pdf and "01632 960 555" in pdf
    assert "casereviews@exampleshire.example" in pdf


@sqlite_only
def test_a_new_link_email_carries_the_contact_details(service, client):
    reference = service.apply(application(TODAY))["reference"]
    client.post("/track", data={"reference": reference, "email": "applicant@example.org"})
    with service.sessions() as db:
        body = db.scalar(select(OutboxMessage.body).where(OutboxMessage.template == "track_link"))
    assert shows_contact_details(body) and body.rstrip().endswith("EX9 9XX")


def test_letter_dates_and_the_letter_check():
    assert long_date("2026-12-02") == "2 December 2026"
    assert long_date("2026-03-16T09:00:00+00:00") == "16 March 2026"
    assert long_date(date(2027, 1, 5)) == "5 January 2027"
    assert long_date("a date we will confirm") == "a date we will confirm" and long_date(None) == ""
    assert check_template("{{ panel_date|long_date }} {{ service.phone }}") is None
    assert "no filter named 'shout'" in check_template("{% if x %}{{ panel_date|shout }}{% endif %}")


def test_the_studio_check_accepts_the_letter_variables_and_filters_and_refuses_unknown_filters():
    files = shipped_files()
    name = "processes/letters/closure.txt"
    files[name] = files[name].replace("Yours sincerely,", "Written on {{ received_on|long_date }}.\n\nYours sincerely,")
    assert [p for p in validate_bundle(files, dry_run=False) if p.rule == "letter-template"] == []
    files[name] = files[name].replace("|long_date", "|govuk_date")
    problems = [p for p in validate_bundle(files, dry_run=False) if p.rule == "letter-template"]
    assert [(p.file, "govuk_date" in p.message) for p in problems] == [(name, True)]


def test_settings_come_from_the_environment(monkeypatch):
    for key, value in (("NAME", "Northshire ASB case review"), ("PHONE", "0300 000 0000"),
                       ("EMAIL", "asb@northshire.example"), ("ADDRESS", "1 Road, Town, NN1 1NN")):
        monkeypatch.setenv(f"CASEREVIEW_SERVICE_{key}", value)
    assert Settings.from_env().service == {"name": "Northshire ASB case review", "phone": "0300 000 0000",
                                           "email": "asb@northshire.example", "address": "1 Road, Town, NN1 1NN"}
    for key in ("NAME", "PHONE", "EMAIL", "ADDRESS"):
        monkeypatch.delenv(f"CASEREVIEW_SERVICE_{key}")
    defaults = Settings.from_env().service
    assert all(defaults.values()) and defaults["name"] == "ASB case review"
