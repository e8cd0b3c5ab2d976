"""Letters as PDF: what the applicant reads in them, that the stored copy is the one served,
and who may download them. SQLite only (nothing here differs by database); few PDFs, since
each takes WeasyPrint a fifth of a second."""
from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from engine.letter_documents import LetterDocument, letter_pdf
from engine.models import AuditEvent, Case, OutboxMessage
from engine.scenarios import Walker, application

from .conftest import START
from .web_helpers import make_app, page, sign_in

TODAY = START.date()
ACTIONS = [{"description": "Joint visit to the street", "agency": "police", "owner": "PC Evans", "due": "2026-04-20"}]


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path / 'casereview.sqlite3'}"


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(p.extract_text() for p in reader.pages).split())


def applicant_letters(service, reference: str) -> dict[str, int]:
    with service.sessions() as db:
        rows = db.execute(select(OutboxMessage.template, OutboxMessage.id).join(Case, Case.id == OutboxMessage.case_id)
                          .where(Case.reference == reference, OutboxMessage.recipient_role == "applicant")).all()
    return dict(rows)


def start_case(service, **kwargs):
    app = application(TODAY, **kwargs)
    reference = service.apply(app)["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(app["incidents"])
    walker.confirm()
    return reference, walker


def test_each_decision_letter_says_what_was_decided_with_the_case_reference(service):
    met, walker = start_case(service)
    walker.schedule_panel(TODAY + timedelta(days=21))
    walker.panel_inputs()
    walker.outcome(ACTIONS)
    not_met, _ = start_case(service, incidents=1)

    expected = {
        (met, "acknowledgement"): ["Thank you for applying", f"Your case reference is {met}"],
        (met, "threshold_met"): ["the case meets the threshold",
                                 "three or more incidents on separate occasions reported in the 6 months"],
        (not_met, "threshold_not_met"): ["The case does not meet the threshold", "Why",
                                         "three or more incidents that happened on separate occasions",
                                         "at least one hate incident", "ask for an escalation within 20 working days"],
        (met, "outcome"): ["What the panel found", "Reports were handled separately", "The panel's recommendations",
                           "Joint visit", "Noise monitoring", "Joint visit to the street, Police, by 20 April 2026",
                           "ask for an escalation within 20 working days of the date of this letter"],
    }
    for (reference, template), phrases in expected.items():
        message_id = applicant_letters(service, reference)[template]
        with service.transaction() as db:
            pdf = letter_pdf(db, message_id)
        text = pdf_text(pdf)
        assert f"Case reference {reference}" in text, template
        assert "Alex Morgan" in text and "applicant@example.org" in text  # the recipient block
        assert "2 March 2026" in text
        for phrase in phrases:
            assert phrase in text, (template, phrase)
        if template == "threshold_not_met":
            assert "meets the threshold for an anti-social" not in text
        reader = PdfReader(io.BytesIO(pdf))  # tagged (PDF/UA-1) with a title and a language
        assert reader.trailer["/Root"]["/MarkInfo"]["/Marked"] and reader.trailer["/Root"]["/Lang"] == "en-GB"
        with service.sessions() as db:
            subject = db.get(OutboxMessage, message_id).subject
            stored = db.scalar(select(LetterDocument).where(LetterDocument.outbox_id == message_id))
        assert reader.metadata.title == subject
        assert stored.sha256 == hashlib.sha256(pdf).hexdigest() and stored.pdf == pdf

    with service.transaction() as db:  # the stored copy is returned, not a new rendering
        assert letter_pdf(db, message_id) == pdf
    with service.sessions() as db:
        assert db.scalar(select(func.count()).select_from(LetterDocument)) == len(expected)


def test_letter_downloads_follow_who_may_see_the_case(service):
    reference = service.apply(application(TODAY))["reference"]
    other = service.apply(application(TODAY, name="Robin Other"))["reference"]
    app = make_app(service)
    acknowledgement = applicant_letters(service, reference)["acknowledgement"]
    with service.sessions() as db:
        police_request = db.scalar(select(OutboxMessage.id).join(Case, Case.id == OutboxMessage.case_id).where(
            Case.reference == reference, OutboxMessage.recipient_role == "agency:police"))
    route = f"/cases/{reference}/letters/{acknowledgement}.pdf"

    anonymous = app.test_client().get(route)
    assert anonymous.status_code == 302 and "/sign-in" in anonymous.headers["Location"]

    coordinator = app.test_client()
    sign_in(coordinator, "coordinator@demo.test")
    case_page = page(coordinator.get(f"/cases/{reference}/letters"))
    links = {a.get("href") for a in case_page.cssselect("a") if a.text_content().startswith("Download PDF")}
    assert route in links and len(links) == len(applicant_letters(service, reference)) + 2  # + police, council
    response = coordinator.get(route)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert reference in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response.headers["Cache-Control"]
    assert f"Case reference {reference}" in pdf_text(response.data)
    assert coordinator.get(f"/cases/{other}/letters/{acknowledgement}.pdf").status_code == 404  # not that case's
    assert coordinator.get(f"/cases/{reference}/letters/999999.pdf").status_code == 404
    with service.sessions() as db:
        downloads = db.scalars(select(AuditEvent).where(AuditEvent.event == "letter_downloaded")).all()
    assert [(e.actor, e.detail["letter"]) for e in downloads] == [("coordinator@demo.test", acknowledgement)]

    housing = app.test_client()  # an agency not involved in the case: it does not exist for them
    sign_in(housing, "housing@demo.test")
    assert housing.get(route).status_code == 404
    police = app.test_client()  # involved, but the applicant's letters are not for partners
    sign_in(police, "police@demo.test")
    assert police.get(route).status_code == 403
    own = police.get(f"/cases/{reference}/letters/{police_request}.pdf")
    assert own.status_code == 200 and own.headers["Content-Disposition"].startswith("attachment;")
    admin = app.test_client()
    sign_in(admin, "admin@demo.test")
    assert admin.get(route).status_code == 403


def test_applicant_downloads_their_letters_through_the_tracking_link(service):
    from engine.applicant_links import TRACK, issue_link

    reference = service.apply(application(TODAY))["reference"]
    acknowledgement = applicant_letters(service, reference)["acknowledgement"]
    with service.transaction() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        token = issue_link(db, case, TRACK, service.now())
        agency_letter = db.scalar(select(OutboxMessage.id).where(OutboxMessage.case_id == case.id,
                                                                  OutboxMessage.recipient_role != "applicant"))
        letter_pdf(db, acknowledgement)  # already stored: the route serves the stored copy
    client = make_app(service).test_client()
    response = client.get(f"/track/{token}/letters/{acknowledgement}.pdf")
    assert response.status_code == 200 and response.headers["Content-Disposition"].startswith("attachment;")
    assert f"Case reference {reference}" in pdf_text(response.data)
    assert client.get(f"/track/{token}/letters/{agency_letter}.pdf").status_code == 404
    assert client.get(f"/track/{'x' * 43}/letters/{acknowledgement}.pdf").status_code == 404


def body_point_size(pdf: bytes, words: str) -> float:
    """The printed size, in points, of the first text run containing `words`."""
    found = []

    def visit(text, cm, tm, font, size):
        if words in text and not found:
            found.append(size * cm[0] * tm[0])

    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return round(found[0], 1)


def test_an_applicant_who_asked_for_large_print_gets_large_print_letters(service):
    standard = service.apply(application(START.date(), name="Robin Shaw"))["reference"]
    large = service.apply(application(START.date(), communication_needs=["large_print"]))["reference"]
    sizes = {}
    messages = {reference: applicant_letters(service, reference)["acknowledgement"] for reference in (standard, large)}
    with service.transaction() as db:
        for reference, message in messages.items():
            sizes[reference] = body_point_size(letter_pdf(db, message), "Thank you for applying")
    assert sizes == {standard: 11.0, large: 16.0}
